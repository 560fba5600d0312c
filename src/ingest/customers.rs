//! The customer pipeline after parsing: field validation, duplicates in the
//! upload, agents, the campaign's existing customers and the other campaigns
//! (one lookup each per batch), the options' decision for every row, and the
//! request's one transaction.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::access::GroupAccess;
use crate::domain::canonical_enum;
use crate::domain::customer::{
    CustomerInput, CustomerOptions, CustomerRules, DEFAULT_DATE_FORMAT, DateFormat, DateRule,
    UniqueMode, ValidCustomer, validate_customer,
};
use crate::domain::{Region, TimeZoneName};
use crate::error::{ApiError, ErrorCode, FieldError, excerpt};
use crate::ids::{CustomerId, GroupId, IntegrationId};
use crate::ingest::Services;
use crate::ingest::cases::fingerprint;
use crate::ingest::engine::{
    self, BatchWriter, Batching, Commits, Counted, Kind, Prepared, Resource, RowOutcome, RowResult,
    RowSource, RunOptions, Shape, Summary,
};
use crate::store::customers::{CustomerRow, CustomerWriter, UpsertPolicy, WriteOutcome};
use crate::store::imports::Checkpoint;
use crate::store::models::Campaign;
use crate::store::{Store, StoreError};

/// Customers per batch: one lookup of each kind, one write.
const BATCH: usize = 10_000;

/// Rows validated between two yields to other tasks of the request.
const YIELD_EVERY: usize = 256;

/// What happened to one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CustomerOutcome {
    Created,
    Updated,
    Skipped,
    Failed,
}

/// One row's outcome.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"row": 2, "outcome": "skipped", "customer_id": "019a8c20-1111-7000-8000-000000000010", "reason": "already_exists"}))]
pub struct CustomerResult {
    /// 1-based index in `customers` (the NDJSON line count, or the CSV line).
    pub row: u64,
    pub outcome: CustomerOutcome,
    /// The customer created or updated (or the existing one, when skipped
    /// because it already exists in this campaign).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub customer_id: Option<CustomerId>,
    /// Why a row was skipped: `already_exists` or `exists_in_other_campaign`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ErrorCode>,
    /// Why a row failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Counts (they add up to the rows sent) and the rows' outcomes.
#[derive(Debug, Default, Serialize, ToSchema)]
#[schema(example = json!({"created": 1, "updated": 1, "skipped": 1, "failed": 0, "results": [
    {"row": 1, "outcome": "created", "customer_id": "019a8c20-1111-7000-8000-000000000010"},
    {"row": 2, "outcome": "updated", "customer_id": "019a8c20-1111-7000-8000-000000000011"},
    {"row": 3, "outcome": "skipped", "reason": "exists_in_other_campaign"}
]}))]
pub struct CustomersSummary {
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
    /// JSON and CSV: one per row, in order. NDJSON: the rows skipped or
    /// failed (the first 1,000).
    pub results: Vec<CustomerResult>,
    /// Results beyond those listed (NDJSON).
    #[serde(skip_serializing_if = "is_zero")]
    pub results_not_listed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What an upload asks for besides its rows.
#[derive(Clone, Debug, Default)]
pub struct UploadSpec {
    pub status: Option<String>,
    pub options: CustomerOptions,
    pub atomic: bool,
    /// Dates as spreadsheets write them (`date_format` in `timezone`).
    pub spreadsheet_dates: bool,
    /// How option fields are named in errors (`options.` in JSON bodies).
    pub option_prefix: &'static str,
}

/// Checks an upload's status and options against its campaign; every
/// problem answers 422 before any row is read.
fn upload_rules(
    campaign: &Campaign,
    spec: &UploadSpec,
) -> Result<(String, DateRule, phonenumber::country::Id), ApiError> {
    let prefix = spec.option_prefix;
    let mut errors = Vec::new();
    let status = match spec
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => campaign
            .statuses
            .0
            .first()
            .cloned()
            .unwrap_or_else(|| "new".into()),
        Some(raw) => {
            let wanted = canonical_enum(raw);
            match campaign.statuses.0.iter().find(|s| **s == wanted) {
                Some(found) => found.clone(),
                None => {
                    errors.push(FieldError::field(
                        "status",
                        ErrorCode::InvalidStatus,
                        format!(
                            "{:?} is not a status of this campaign; expected one of: {}",
                            excerpt(raw),
                            campaign.statuses.0.join(", ")
                        ),
                    ));
                    String::new()
                }
            }
        }
    };
    let options = &spec.options;
    let mut dates = DateRule::Rfc3339;
    if spec.spreadsheet_dates {
        let format = DateFormat::parse(
            options
                .date_format
                .as_deref()
                .unwrap_or(DEFAULT_DATE_FORMAT),
        )
        .map_err(|message| {
            FieldError::field(
                format!("{prefix}date_format"),
                ErrorCode::InvalidDateFormat,
                message,
            )
        });
        let tz = TimeZoneName::parse(options.timezone.as_deref().unwrap_or(&campaign.timezone))
            .map_err(|message| {
                FieldError::field(
                    format!("{prefix}timezone"),
                    ErrorCode::InvalidTimezone,
                    message,
                )
            });
        match (format, tz) {
            (Ok(format), Ok(tz)) => {
                dates = DateRule::Local {
                    format,
                    tz: tz.tz(),
                }
            }
            (format, tz) => errors.extend(format.err().into_iter().chain(tz.err())),
        }
    } else {
        for (name, given) in [
            ("date_format", options.date_format.is_some()),
            ("timezone", options.timezone.is_some()),
        ] {
            if given {
                errors.push(FieldError::field(
                    format!("{prefix}{name}"),
                    ErrorCode::ValidationFailed,
                    format!("{name} applies to CSV uploads only; JSON dates are RFC 3339 and carry their offset"),
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(ErrorCode::ValidationFailed, errors));
    }
    let region = Region::parse(&campaign.default_region)
        .ok()
        .and_then(|r| r.as_str().parse().ok())
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("campaign with an invalid region")))?;
    Ok((status, dates, region))
}

/// A batch validated and decided, ready to write.
#[derive(Debug, Default)]
pub struct PreparedCustomers {
    pub rows: Vec<CustomerRow>,
    pub results: Vec<CustomerResult>,
    /// Problems, each with its row.
    pub errors: Vec<FieldError>,
    pub failed_rows: u64,
}

/// Request-wide state carried from batch to batch.
pub struct CustomerIngest<'a> {
    store: &'a Store,
    campaign: &'a Campaign,
    groups: &'a [GroupId],
    options: CustomerOptions,
    pub status: String,
    dates: DateRule,
    region: phonenumber::country::Id,
    /// Active agents of the campaign's group: exact name → Staff IDs.
    agents: HashMap<String, Vec<String>>,
    /// Hashes of the E.164 phones seen so far in the request.
    seen: HashSet<u64>,
    /// Take the campaign's lock when writing (see [`UpsertPolicy::exclusive`]).
    exclusive: bool,
    /// The integration the upload is for (its rows are counted under it).
    integration_id: IntegrationId,
}

impl<'a> CustomerIngest<'a> {
    pub async fn new(
        store: &'a Store,
        access: &'a GroupAccess,
        campaign: &'a Campaign,
        spec: &UploadSpec,
    ) -> Result<Self, ApiError> {
        let (status, dates, region) = upload_rules(campaign, spec)?;
        let mut agents: HashMap<String, Vec<String>> = HashMap::new();
        for (name, staff_id) in store.active_agents(campaign.group_id).await? {
            agents.entry(name).or_default().push(staff_id);
        }
        Ok(Self {
            store,
            campaign,
            groups: access.groups(),
            options: spec.options.clone(),
            status,
            dates,
            region,
            agents,
            seen: HashSet::new(),
            exclusive: true,
            integration_id: access.integration_id,
        })
    }

    /// An upload of one customer (`unique_mode: allow`): written without
    /// the campaign's lock, so that it never waits behind a long upload.
    /// (`move` and `skip_if_elsewhere` take the locks of the campaigns they
    /// look at, whatever the size.)
    pub fn single_row(mut self) -> Self {
        self.exclusive = self.options.unique_mode != UniqueMode::Allow;
        self
    }

    /// The write policy of this upload.
    pub fn policy(&self) -> UpsertPolicy {
        UpsertPolicy {
            campaign_id: self.campaign.id,
            status: self.status.clone(),
            override_existing: self.options.override_existing,
            reset_status: self.options.reset_status,
            update_contact_allowed: self.options.update_contact_allowed,
            move_from_groups: (self.options.unique_mode == UniqueMode::Move)
                .then(|| self.groups.to_vec()),
            skip_if_elsewhere_in: (self.options.unique_mode == UniqueMode::SkipIfElsewhere)
                .then(|| self.groups.to_vec()),
            exclusive: self.exclusive,
        }
    }

    /// The agent named exactly `name` (trimmed), or the row's error.
    fn agent(&self, name: &str) -> Result<String, FieldError> {
        match self.agents.get(name).map(Vec::as_slice) {
            Some([one]) => Ok(one.clone()),
            Some([_, _, ..]) => Err(FieldError::field(
                "agent",
                ErrorCode::AmbiguousAgent,
                format!(
                    "several active agents of the campaign's group are named {:?}",
                    excerpt(name)
                ),
            )),
            _ => Err(FieldError::field(
                "agent",
                ErrorCode::UnknownAgent,
                format!(
                    "no active agent of the campaign's group is named {:?} (names match exactly, letter case included)",
                    excerpt(name)
                ),
            )),
        }
    }

    /// Validates one batch of `(row, input)` and decides each row's outcome.
    async fn prepare_batch(
        &mut self,
        rows: Vec<(u64, CustomerInput)>,
    ) -> Result<PreparedCustomers, ApiError> {
        let rules = CustomerRules {
            region: self.region,
            international_format: self.options.international_format,
            dates: &self.dates,
        };
        let mut batch = PreparedCustomers::default();
        let mut valid: Vec<(u64, ValidCustomer, Option<String>)> = Vec::with_capacity(rows.len());
        for (i, (row, input)) in rows.into_iter().enumerate() {
            if i % YIELD_EVERY == YIELD_EVERY - 1 {
                tokio::task::yield_now().await;
            }
            let customer = match validate_customer(&input, &rules) {
                Ok(customer) => customer,
                Err(errors) => {
                    batch.fail(row, errors);
                    continue;
                }
            };
            let agent = match customer.agent.as_deref().map(|name| self.agent(name)) {
                None => None,
                Some(Ok(staff_id)) => Some(staff_id),
                Some(Err(error)) => {
                    batch.fail(row, vec![error]);
                    continue;
                }
            };
            if !self.seen.insert(fingerprint(&customer.phone)) {
                batch.fail(
                    row,
                    vec![FieldError::field(
                        "phone",
                        ErrorCode::DuplicateInFile,
                        format!(
                            "the phone {} appears earlier in this upload",
                            customer.phone
                        ),
                    )],
                );
                continue;
            }
            valid.push((row, customer, agent));
        }

        let phones: Vec<&str> = valid.iter().map(|(_, c, _)| c.phone.as_str()).collect();
        let existing = self
            .store
            .customers_with_phones(self.campaign.id, &phones)
            .await?;
        // (`move` needs no lookup: the writer removes the phones from the
        // other campaigns as they are when it writes.)
        let elsewhere = if self.options.unique_mode != UniqueMode::SkipIfElsewhere {
            HashSet::new()
        } else {
            self.store
                .phones_in_other_campaigns(self.campaign.id, self.groups, &phones)
                .await?
        };
        drop(phones);

        let mode = self.options.unique_mode;
        for (row, customer, agent_staff_id) in valid {
            let in_other = elsewhere.contains(&customer.phone);
            let (outcome, id, reason) = match existing.get(&customer.phone) {
                // Each of these acts on an existing customer by itself.
                Some(id)
                    if self.options.override_existing
                        || self.options.reset_status
                        || self.options.update_contact_allowed =>
                {
                    (CustomerOutcome::Updated, *id, None)
                }
                Some(id) => (
                    CustomerOutcome::Skipped,
                    *id,
                    Some(ErrorCode::AlreadyExists),
                ),
                None if in_other && mode == UniqueMode::SkipIfElsewhere => {
                    batch.results.push(CustomerResult {
                        row,
                        outcome: CustomerOutcome::Skipped,
                        customer_id: None,
                        reason: Some(ErrorCode::ExistsInOtherCampaign),
                        errors: Vec::new(),
                    });
                    continue;
                }
                None => (CustomerOutcome::Created, CustomerId::new(), None),
            };
            batch.results.push(CustomerResult {
                row,
                outcome,
                customer_id: Some(id),
                reason,
                errors: Vec::new(),
            });
            if outcome == CustomerOutcome::Skipped {
                continue;
            }
            batch.rows.push(CustomerRow {
                id,
                name: customer.name,
                phone: customer.phone,
                phone_raw: customer.phone_raw,
                agent_staff_id,
                follow_up_at: customer.follow_up_at,
                source_created_at: customer.source_created_at,
                do_not_call: customer.do_not_call,
                fields: customer.fields,
            });
        }
        batch.results.sort_by_key(|r| r.row);
        Ok(batch)
    }
}

impl PreparedCustomers {
    fn fail(&mut self, row: u64, errors: Vec<FieldError>) {
        self.failed_rows += 1;
        self.errors
            .extend(errors.into_iter().map(|e| e.at_row(row)));
    }
}

impl RowResult for CustomerResult {
    fn row(&self) -> u64 {
        self.row
    }

    fn outcome(&self) -> RowOutcome {
        match self.outcome {
            CustomerOutcome::Created => RowOutcome::Created,
            CustomerOutcome::Updated => RowOutcome::Updated,
            CustomerOutcome::Skipped => RowOutcome::Skipped,
            CustomerOutcome::Failed => RowOutcome::Failed,
        }
    }
}

/// A batch of customers to write, and an import job's checkpoint to
/// commit with it.
#[derive(Debug, Default)]
pub struct CustomerBatch {
    pub rows: Vec<CustomerRow>,
    pub checkpoint: Option<Checkpoint>,
}

impl Resource for CustomerIngest<'_> {
    type Input = CustomerInput;
    type Batch = CustomerBatch;
    type Row = CustomerResult;
    type Writer = CustomerBatchWriter;

    const KIND: Kind = Kind::Customers;

    async fn prepare(
        &mut self,
        rows: Vec<(u64, CustomerInput)>,
    ) -> Result<Prepared<CustomerBatch, CustomerResult>, ApiError> {
        let batch = self.prepare_batch(rows).await?;
        Ok(Prepared {
            batch: CustomerBatch {
                rows: batch.rows,
                checkpoint: None,
            },
            results: batch.results,
            errors: batch.errors,
            warnings: Vec::new(),
            failed_rows: batch.failed_rows,
        })
    }

    /// A failed customer gets its result, with its problems.
    fn failed(&self, row: u64, errors: Vec<FieldError>) -> Option<CustomerResult> {
        Some(CustomerResult {
            row,
            outcome: CustomerOutcome::Failed,
            customer_id: None,
            reason: None,
            errors,
        })
    }

    fn batching(&self, _total: Option<usize>) -> Batching {
        Batching::fixed(BATCH)
    }

    /// A request's customers are written in one transaction; an import
    /// job's ([`Commits::EachBatch`]) in one a batch.
    fn writer(&self, commits: Commits, _shape: Shape) -> CustomerBatchWriter {
        CustomerBatchWriter {
            store: self.store.clone(),
            policy: self.policy(),
            commits,
            writer: None,
        }
    }
}

/// The writer of one run's customers: it opens the transaction (and takes
/// the campaign's lock) at the first batch with something to write, and
/// with [`Commits::EachBatch`] commits it (and lets the lock go) after
/// each batch. The outcomes it answers are those the write reported, not
/// those expected from the lookups.
pub struct CustomerBatchWriter {
    store: Store,
    policy: UpsertPolicy,
    commits: Commits,
    writer: Option<CustomerWriter>,
}

impl BatchWriter for CustomerBatchWriter {
    type Batch = CustomerBatch;
    type Row = CustomerResult;

    #[tracing::instrument(name = "write_customers", skip_all, fields(rows = batch.rows.len()))]
    async fn write(
        &mut self,
        batch: CustomerBatch,
        mut results: Vec<CustomerResult>,
    ) -> Result<Vec<CustomerResult>, StoreError> {
        let CustomerBatch { rows, checkpoint } = batch;
        if rows.is_empty() && checkpoint.is_none() {
            return Ok(results);
        }
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => self
                .writer
                .insert(self.store.customer_writer(self.policy.clone()).await?),
        };
        let WriteOutcome { written, elsewhere } = if rows.is_empty() {
            WriteOutcome::default()
        } else {
            writer.write(&rows).await?
        };
        let sent: HashMap<CustomerId, &str> =
            rows.iter().map(|r| (r.id, r.phone.as_str())).collect();
        for result in &mut results {
            let sent_phone = result.customer_id.and_then(|id| sent.get(&id).copied());
            let (Some(phone), CustomerOutcome::Created | CustomerOutcome::Updated) =
                (sent_phone, result.outcome)
            else {
                continue;
            };
            if elsewhere.contains(phone) {
                // Another campaign took the phone after the lookups.
                result.outcome = CustomerOutcome::Skipped;
                result.reason = Some(ErrorCode::ExistsInOtherCampaign);
                result.customer_id = None;
                continue;
            }
            match written.get(phone) {
                Some(w) => {
                    result.customer_id = Some(w.id);
                    result.outcome = if w.created {
                        CustomerOutcome::Created
                    } else {
                        CustomerOutcome::Updated
                    };
                }
                // With none of the options that act on existing customers, a customer a concurrent
                // request created first is left as it is.
                None => {
                    result.outcome = CustomerOutcome::Skipped;
                    result.reason = Some(ErrorCode::AlreadyExists);
                    result.customer_id = None;
                }
            }
        }
        if let Some(mut checkpoint) = checkpoint {
            // The counts as written, not as the lookups expected them.
            let count = |outcomes: &[CustomerOutcome]| {
                results
                    .iter()
                    .filter(|r| outcomes.contains(&r.outcome))
                    .count() as u64
            };
            checkpoint.succeeded = count(&[CustomerOutcome::Created, CustomerOutcome::Updated]);
            checkpoint.skipped = count(&[CustomerOutcome::Skipped]);
            writer.checkpoint(&checkpoint).await?;
        }
        if self.commits == Commits::EachBatch
            && let Some(writer) = self.writer.take()
        {
            writer.commit().await?;
        }
        Ok(results)
    }

    fn carry(batch: &mut CustomerBatch, checkpoint: Checkpoint) -> Result<(), StoreError> {
        batch.checkpoint = Some(checkpoint);
        Ok(())
    }

    async fn commit(self) -> Result<(), StoreError> {
        match self.writer {
            Some(writer) => writer.commit().await,
            None => Ok(()),
        }
    }
}

/// Ingests the customers of `source` into the campaign `ingest` was made
/// for (its status and options already checked).
#[tracing::instrument(name = "ingest_customers", skip_all, fields(campaign = %ingest.campaign.id, path))]
pub async fn ingest_customers<S>(
    services: Services<'_>,
    mut ingest: CustomerIngest<'_>,
    source: &mut S,
    options: RunOptions,
    path: &'static str,
) -> Result<Summary<CustomerResult>, ApiError>
where
    S: RowSource<Input = CustomerInput>,
{
    let integration = ingest.integration_id.to_string();
    let counted = Counted {
        metrics: services.metrics,
        integration: &integration,
        path,
    };
    engine::run(&mut ingest, source, options, Some(counted)).await
}
