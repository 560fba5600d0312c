//! The customer pipeline after parsing: field validation, duplicates in the
//! upload, agents, the campaign's existing customers and the other campaigns
//! (one lookup each per batch), the options' decision for every row, and the
//! request's one transaction.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::access::GroupAccess;
use crate::domain::canonical_enum;
use crate::domain::customer::{
    CustomerInput, CustomerOptions, CustomerRules, DEFAULT_DATE_FORMAT, DateFormat, DateRule,
    UniqueMode, ValidCustomer, validate_customer,
};
use crate::domain::{Region, TimeZoneName};
use crate::error::{ApiError, ErrorCode, FieldError, excerpt};
use crate::ingest::cases::fingerprint;
use crate::ingest::{MAX_REPORTED_ERRORS, RowErrors};
use crate::store::customers::{CustomerRow, CustomerWriter, UpsertPolicy};
use crate::store::models::Campaign;
use crate::store::{Store, StoreError};

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
    pub customer_id: Option<Uuid>,
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

/// Which results an answer lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// Every row (a request of bounded size).
    All,
    /// Skipped and failed rows, the first [`MAX_REPORTED_ERRORS`] (streams).
    Exceptions,
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
}

/// Request-wide state carried from batch to batch.
pub struct CustomerIngest<'a> {
    store: &'a Store,
    campaign: &'a Campaign,
    groups: &'a [Uuid],
    options: CustomerOptions,
    pub status: String,
    dates: DateRule,
    region: phonenumber::country::Id,
    /// Active agents of the campaign's group: exact name → Staff IDs.
    agents: HashMap<String, Vec<String>>,
    /// Hashes of the E.164 phones seen so far in the request.
    seen: HashSet<u64>,
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
        })
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
            exclusive: true,
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
    pub async fn prepare(
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
                Some(id) if self.options.override_existing => (CustomerOutcome::Updated, *id, None),
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
                None => (CustomerOutcome::Created, Uuid::now_v7(), None),
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
                fields: customer.fields,
            });
        }
        batch.results.sort_by_key(|r| r.row);
        Ok(batch)
    }
}

impl PreparedCustomers {
    fn fail(&mut self, row: u64, errors: Vec<FieldError>) {
        self.results.push(CustomerResult {
            row,
            outcome: CustomerOutcome::Failed,
            customer_id: None,
            reason: None,
            errors: errors.into_iter().map(|e| e.at_row(row)).collect(),
        });
    }
}

/// The write of a batch failed because of a concurrent change.
pub fn write_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Duplicate(_) | StoreError::Reference(_) | StoreError::Contended(_) => {
            ApiError::new(
                ErrorCode::ConcurrentWrite,
                "Another request changed some of these customers (or their agents) at the same time; nothing of this request was written. Retry.",
            )
        }
        other => other.into(),
    }
}

/// A batch ready to write, with the outcomes its rows will have unless a
/// concurrent request changes them first.
#[derive(Debug, Default)]
struct Ready {
    rows: Vec<CustomerRow>,
    results: Vec<CustomerResult>,
}

/// One upload from its first batch to its answer: every batch goes into the
/// request's one transaction (none with `dry_run`); an atomic upload with a
/// failed row writes nothing and answers 422 with every problem. A batch is
/// written while the next one is validated (validation yields now and then,
/// so the database is kept busy meanwhile). The outcomes answered are those
/// the write reported, not those expected from the lookups.
pub struct CustomerUpsert<'a> {
    pub ingest: CustomerIngest<'a>,
    store: &'a Store,
    policy: UpsertPolicy,
    writer: Option<CustomerWriter>,
    /// The last validated batch, written while the next is validated.
    ready: Option<Ready>,
    dry_run: bool,
    atomic: bool,
    listing: Listing,
    summary: CustomersSummary,
    errors: RowErrors,
}

/// Writes a validated batch into the request's transaction (opened at the
/// first batch with something to write) and answers its results as
/// written.
async fn write_ready(
    writer: &mut Option<CustomerWriter>,
    store: &Store,
    policy: &UpsertPolicy,
    ready: Option<Ready>,
) -> Result<Vec<CustomerResult>, ApiError> {
    let Some(mut ready) = ready else {
        return Ok(Vec::new());
    };
    if ready.rows.is_empty() {
        return Ok(ready.results);
    }
    if writer.is_none() {
        *writer = Some(
            store
                .customer_writer(policy.clone())
                .await
                .map_err(write_error)?,
        );
    }
    let Some(writer) = writer.as_mut() else {
        return Ok(ready.results);
    };
    let written = writer.write(&ready.rows).await.map_err(write_error)?;
    let sent: HashMap<Uuid, &str> = ready
        .rows
        .iter()
        .map(|r| (r.id, r.phone.as_str()))
        .collect();
    for result in &mut ready.results {
        let sent_phone = result.customer_id.and_then(|id| sent.get(&id).copied());
        let (Some(phone), CustomerOutcome::Created | CustomerOutcome::Updated) =
            (sent_phone, result.outcome)
        else {
            continue;
        };
        match written.get(phone) {
            Some(w) => {
                result.customer_id = Some(w.id);
                result.outcome = if w.created {
                    CustomerOutcome::Created
                } else {
                    CustomerOutcome::Updated
                };
            }
            // Without `override_existing`, a customer a concurrent
            // request created first is left as it is.
            None => {
                result.outcome = CustomerOutcome::Skipped;
                result.reason = Some(ErrorCode::AlreadyExists);
                result.customer_id = None;
            }
        }
    }
    Ok(ready.results)
}

impl<'a> CustomerUpsert<'a> {
    pub fn new(ingest: CustomerIngest<'a>, atomic: bool, dry_run: bool, listing: Listing) -> Self {
        Self {
            store: ingest.store,
            policy: ingest.policy(),
            ingest,
            writer: None,
            ready: None,
            dry_run,
            atomic,
            listing,
            summary: CustomersSummary::default(),
            errors: RowErrors::default(),
        }
    }

    /// An upload of one customer (not `move`): written without the
    /// campaign's lock, so that it never waits behind a long upload.
    pub fn single_row(mut self) -> Self {
        if self.policy.move_from_groups.is_none() {
            self.policy.exclusive = false;
        }
        self
    }

    /// Rows seen so far (written or waiting to be).
    pub fn rows(&self) -> u64 {
        let s = &self.summary;
        let pending = self.ready.as_ref().map_or(0, |r| r.results.len() as u64);
        s.created + s.updated + s.skipped + s.failed + pending
    }

    /// Validates and decides one batch while the previous one is written.
    /// `broken` are rows that could not even be read (NDJSON lines that are
    /// not JSON).
    pub async fn feed(
        &mut self,
        rows: Vec<(u64, CustomerInput)>,
        broken: Vec<FieldError>,
    ) -> Result<(), ApiError> {
        let ready = self.ready.take();
        let (written, prepared) = tokio::join!(
            write_ready(&mut self.writer, self.store, &self.policy, ready),
            self.ingest.prepare(rows)
        );
        self.tally(written?);
        let mut batch = prepared?;
        for error in broken {
            let row = error.row.unwrap_or_default();
            batch.results.push(CustomerResult {
                row,
                outcome: CustomerOutcome::Failed,
                customer_id: None,
                reason: None,
                errors: vec![error],
            });
        }
        batch.results.sort_by_key(|r| r.row);
        let mut failed_errors = Vec::new();
        let mut failed_rows = 0;
        for result in &batch.results {
            if result.outcome == CustomerOutcome::Failed {
                failed_rows += 1;
                failed_errors.extend(result.errors.iter().cloned());
            }
        }
        self.errors.add(failed_errors, failed_rows);
        if self.dry_run || (self.atomic && !self.errors.is_empty()) {
            // Nothing will be written: roll back what was.
            self.writer = None;
            self.tally(batch.results);
            return Ok(());
        }
        self.ready = Some(Ready {
            rows: batch.rows,
            results: batch.results,
        });
        Ok(())
    }

    /// Counts and lists the results of a batch (written, or never to be).
    fn tally(&mut self, results: Vec<CustomerResult>) {
        for result in results {
            match result.outcome {
                CustomerOutcome::Created => self.summary.created += 1,
                CustomerOutcome::Updated => self.summary.updated += 1,
                CustomerOutcome::Skipped => self.summary.skipped += 1,
                CustomerOutcome::Failed => self.summary.failed += 1,
            }
            let exception = matches!(
                result.outcome,
                CustomerOutcome::Skipped | CustomerOutcome::Failed
            );
            match self.listing {
                Listing::All => self.summary.results.push(result),
                Listing::Exceptions if exception => {
                    if self.summary.results.len() < MAX_REPORTED_ERRORS {
                        self.summary.results.push(result);
                    } else {
                        self.summary.results_not_listed += 1;
                    }
                }
                Listing::Exceptions => {}
            }
        }
    }

    /// Writes the last batch and commits, or answers the atomic upload's 422.
    pub async fn finish(mut self) -> Result<CustomersSummary, ApiError> {
        if self.atomic && !self.errors.is_empty() {
            return Err(self.errors.into_rejection(ErrorCode::ValidationFailed));
        }
        let ready = self.ready.take();
        let written = write_ready(&mut self.writer, self.store, &self.policy, ready).await?;
        self.tally(written);
        if let Some(writer) = self.writer {
            writer.commit().await.map_err(write_error)?;
        }
        Ok(self.summary)
    }
}
