//! The case pipeline after parsing: field validation, duplicates in the
//! request, staff resolution against the integration's groups (one lookup per
//! batch), the `on_conflict` policy, and rows ready for the bulk writer.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::StaffRole;
use crate::domain::access::GroupAccess;
use crate::domain::case::{CaseInput, CaseRules, CaseStatus, ValidCase, validate_case};
use crate::error::{ApiError, ErrorCode, FieldError, excerpt};
use crate::ids::{CaseId, GroupId, IntegrationId, ListId, TeamId};
use crate::ingest::Services;
use crate::ingest::engine::{
    self, BatchWriter, Batching, Commits, Counted, Kind, Prepared, Resource, RowOutcome, RowResult,
    RowSource, RunOptions, Shape, Summary,
};
use crate::ingest::staff::{ExternalIdDrift, StaffCache, StaffDirectory};
use crate::store::cases::{CaseBatch, CaseRow, CaseWriter, NewCaseList};
use crate::store::imports::Checkpoint;
use crate::store::{Store, StoreError};

/// The first batch of a run: nothing is written while it is validated, so
/// it is small.
pub const FIRST_BATCH: usize = 100;

/// The smallest batch a run of known length is cut into after the first:
/// smaller ones cost more lookups than they overlap.
const MIN_BATCH: usize = 250;

/// The largest batch of a run of known length (written while the next is
/// validated).
const MAX_BATCH: usize = 10_000;

/// Cases per batch of a stream (one staff and one Case ID lookup each).
const STREAM_BATCH: usize = 5_000;

/// Rows validated between two yields to other tasks of the request.
const YIELD_EVERY: usize = 256;

/// What to do with a case whose `external_id` the integration already sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// The case is invalid (`duplicate_external_id`).
    #[default]
    Error,
    /// The stored case stays; the row is `skipped`.
    Skip,
    /// The stored case takes the values the input carries (and the new
    /// list, if any); the others stay, and `data` is merged key by key.
    Update,
}

/// Who may score a new list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentKind {
    Group,
    Team,
    Evaluator,
}

impl AssignmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentKind::Group => "group",
            AssignmentKind::Team => "team",
            AssignmentKind::Evaluator => "evaluator",
        }
    }
}

/// The list the cases of a request go into.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "November calls", "assignment": {"kind": "evaluator", "id": "DEMO-E1"}}))]
pub struct ListSpec {
    /// 1 to 255 characters.
    pub name: String,
    pub assignment: AssignmentSpec,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentSpec {
    pub kind: AssignmentKind,
    /// The group's or team's id, or the evaluator's Staff ID.
    pub id: String,
}

/// What happened to one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    Skipped,
}

/// A row that passed: its case id and what was done.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub row: u64,
    pub id: CaseId,
    pub external_id: String,
    pub outcome: Outcome,
}

/// A batch ready to write, with every row's fate.
#[derive(Debug, Default)]
pub struct PreparedBatch {
    pub inserts: Vec<CaseRow>,
    pub updates: Vec<CaseRow>,
    pub accepted: Vec<Accepted>,
    /// Problems, each with its row.
    pub errors: Vec<FieldError>,
    /// Warnings of rows that pass (`staff_id_mismatch`), each with its row.
    pub warnings: Vec<FieldError>,
    pub failed_rows: u64,
}

/// Request-wide state carried from batch to batch (NDJSON streams).
pub struct CaseIngest<'a> {
    store: &'a Store,
    access: &'a GroupAccess,
    categories: std::sync::Arc<Vec<String>>,
    on_conflict: OnConflict,
    /// Hashes of the Case IDs seen so far in the request: 8 bytes each, so a
    /// stream of millions of cases stays small (a collision, about one in
    /// 10^19 per pair, would report a false `duplicate_in_request`).
    seen: HashSet<u64>,
    rules_dates: crate::domain::case::DateInput,
    /// The Case IDs are not looked up: every valid case is new (the write
    /// is refused, `duplicate_external_id`, if one is not).
    assume_new: bool,
    /// The integration's groups' whole staff directory, from the cache.
    staff: Option<std::sync::Arc<StaffDirectory>>,
    /// The new list the cases go into.
    list: Option<NewCaseList>,
    /// Or a list that exists already (an import job's).
    existing_list: Option<ListId>,
    /// What an External Staff ID not the one stored gets.
    drift: ExternalIdDrift,
}

impl<'a> CaseIngest<'a> {
    /// `categories`: the configured category names (see
    /// [`crate::auth::access::AccessControl::categories`]).
    pub async fn new(
        store: &'a Store,
        access: &'a GroupAccess,
        categories: &crate::auth::access::AccessControl,
        on_conflict: OnConflict,
        dates: crate::domain::case::DateInput,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            store,
            access,
            categories: categories.categories().await?,
            on_conflict,
            seen: HashSet::new(),
            rules_dates: dates,
            assume_new: false,
            staff: None,
            list: None,
            existing_list: None,
            drift: ExternalIdDrift::Refused,
        })
    }

    /// The cases go into a list that exists already (an import job's,
    /// created when it was confirmed).
    pub fn into_existing_list(mut self, list: Option<ListId>) -> Self {
        self.existing_list = list;
        self
    }

    /// An External Staff ID not the one stored for its Staff ID is a
    /// warning, not an error (the spreadsheet uploader's rule).
    pub fn with_external_id_drift(mut self, drift: ExternalIdDrift) -> Self {
        self.drift = drift;
        self
    }

    /// The cases go into this new list (created by the run's writer).
    pub fn into_list(mut self, list: Option<NewCaseList>) -> Self {
        self.list = list;
        self
    }

    /// Resolves staff from the cached directory of the integration's
    /// groups (where the request's access knows the directory's generation
    /// and the groups are small enough), not by a lookup per batch: for
    /// small requests, whose one lookup is a good part of their cost.
    pub async fn with_cached_staff(mut self, cache: &StaffCache) -> Result<Self, ApiError> {
        if let Some(generation) = self.access.staff_generation {
            self.staff = cache
                .directory(self.store, self.access.groups(), generation)
                .await?;
        }
        Ok(self)
    }

    /// Skips the lookup of the Case IDs: for a small request of the default
    /// `on_conflict: error` whose writer's refusal of a known Case ID is
    /// answered by running it again without this.
    pub fn assuming_new_case_ids(mut self) -> Self {
        self.assume_new = true;
        self
    }

    pub fn integration_id(&self) -> IntegrationId {
        self.access.integration_id
    }

    /// Validates and resolves one batch of `(row, input)`.
    async fn prepare_batch(
        &mut self,
        rows: Vec<(u64, CaseInput)>,
    ) -> Result<PreparedBatch, ApiError> {
        let rules = CaseRules {
            categories: &self.categories,
            dates: self.rules_dates,
        };
        let mut batch = PreparedBatch::default();
        let mut valid: Vec<(u64, ValidCase)> = Vec::with_capacity(rows.len());
        for (i, (row, input)) in rows.into_iter().enumerate() {
            if i % YIELD_EVERY == YIELD_EVERY - 1 {
                // Let a write in flight feed the database meanwhile.
                tokio::task::yield_now().await;
            }
            match validate_case(&input, &rules) {
                Ok(case) => {
                    if self.seen.insert(fingerprint(&case.external_id)) {
                        valid.push((row, case));
                    } else {
                        batch.fail(
                            row,
                            vec![FieldError::field(
                                "external_id",
                                ErrorCode::DuplicateInRequest,
                                format!(
                                    "the Case ID {:?} appears earlier in this request",
                                    excerpt(&case.external_id)
                                ),
                            )],
                        );
                    }
                }
                Err(errors) => batch.fail(row, errors),
            }
        }

        // Staff: the cached directory, or one lookup for the whole batch.
        let directory = match &self.staff {
            Some(directory) => directory.clone(),
            None => {
                let staff_ids: Vec<&str> = unique(
                    valid
                        .iter()
                        .filter_map(|(_, c)| c.staff.staff_id.as_deref()),
                );
                let external_ids: Vec<&str> = unique(
                    valid
                        .iter()
                        .filter_map(|(_, c)| c.staff.external_staff_id.as_deref()),
                );
                let matches = self
                    .store
                    .staff_matching(self.access.groups(), &staff_ids, &external_ids)
                    .await?;
                std::sync::Arc::new(StaffDirectory::new(matches))
            }
        };

        let mut resolved: Vec<(u64, ValidCase, GroupId, String)> = Vec::with_capacity(valid.len());
        for (row, case) in valid {
            match directory.resolve(&case.staff, self.drift) {
                Ok((staff, warning)) => {
                    let (group, staff_id) = (staff.group_id, staff.staff_id.clone());
                    batch
                        .warnings
                        .extend(warning.map(|warning| warning.at_row(row)));
                    resolved.push((row, case, group, staff_id));
                }
                Err(error) => batch.fail(row, vec![error]),
            }
        }

        // Cases the integration sent before.
        let keys: Vec<&str> = resolved
            .iter()
            .map(|(_, c, _, _)| c.external_id.as_str())
            .collect();
        let existing = if self.assume_new {
            HashMap::new()
        } else {
            self.store
                .existing_cases(self.access.integration_id, &keys)
                .await?
        };
        for (row, case, group_id, staff_id) in resolved {
            let previous = existing.get(&case.external_id).copied();
            let refused = match previous {
                // A case the integration sent while it still had that
                // group: not skipped (its id would show) nor updated (moved
                // out of a group the integration no longer sees).
                Some((_, stored_group)) if !self.access.contains(stored_group) => {
                    Some(", for a case outside its groups now: it cannot be skipped or updated")
                }
                Some(_) if self.on_conflict == OnConflict::Error => Some(" (on_conflict: error)"),
                _ => None,
            };
            if let Some(why) = refused {
                batch.fail(
                    row,
                    vec![FieldError::field(
                        "external_id",
                        ErrorCode::DuplicateExternalId,
                        format!(
                            "the Case ID {:?} was already sent by this integration{why}",
                            excerpt(&case.external_id)
                        ),
                    )],
                );
                continue;
            }
            let (id, outcome) = match (previous, self.on_conflict) {
                (None, _) => (CaseId::new(), Outcome::Created),
                (Some((id, _)), OnConflict::Skip) => (id, Outcome::Skipped),
                (Some((id, _)), _) => (id, Outcome::Updated),
            };
            batch.accepted.push(Accepted {
                row,
                id,
                external_id: case.external_id.clone(),
                outcome,
            });
            let row = CaseRow {
                id,
                external_id: case.external_id,
                staff_id,
                external_staff_id: case.staff.external_staff_id,
                group_id,
                channel: case.channel.map(|c| c.as_str()),
                // An update without a status keeps the stored one ("").
                status: match (case.status, outcome) {
                    (Some(status), _) => status.as_str(),
                    (None, Outcome::Updated) => "",
                    (None, _) => CaseStatus::Open.as_str(),
                },
                priority: case.priority.map(|p| p.as_str()),
                category: case.category,
                occurred_at: case.occurred_at,
                data: case.data,
            };
            match outcome {
                Outcome::Created => batch.inserts.push(row),
                Outcome::Updated => batch.updates.push(row),
                Outcome::Skipped => {}
            }
        }
        Ok(batch)
    }
}

impl RowResult for Accepted {
    fn row(&self) -> u64 {
        self.row
    }

    fn outcome(&self) -> RowOutcome {
        match self.outcome {
            Outcome::Created => RowOutcome::Created,
            Outcome::Updated => RowOutcome::Updated,
            Outcome::Skipped => RowOutcome::Skipped,
        }
    }
}

impl Resource for CaseIngest<'_> {
    type Input = CaseInput;
    type Batch = CaseBatch;
    type Row = Accepted;
    type Writer = CaseWriter;

    const KIND: Kind = Kind::Cases;

    async fn prepare(
        &mut self,
        rows: Vec<(u64, CaseInput)>,
    ) -> Result<Prepared<CaseBatch, Accepted>, ApiError> {
        let batch = self.prepare_batch(rows).await?;
        Ok(Prepared {
            batch: CaseBatch {
                inserts: batch.inserts,
                updates: batch.updates,
                checkpoint: None,
            },
            results: batch.accepted,
            errors: batch.errors,
            warnings: batch.warnings,
            failed_rows: batch.failed_rows,
        })
    }

    /// A failed case is answered by its problems.
    fn failed(&self, _row: u64, _errors: Vec<FieldError>) -> Option<Accepted> {
        None
    }

    fn batching(&self, total: Option<usize>) -> Batching {
        match total {
            Some(total) => Batching::eighths(total, FIRST_BATCH, MIN_BATCH, MAX_BATCH),
            None => Batching {
                first: FIRST_BATCH,
                then: STREAM_BATCH,
            },
        }
    }

    fn writer(&self, commits: Commits, shape: Shape) -> CaseWriter {
        let writer = self.store.case_writer(
            self.access.integration_id,
            self.list.as_ref(),
            commits,
            shape,
        );
        match self.existing_list {
            Some(list) => writer.into_existing_list(list),
            None => writer,
        }
    }
}

impl BatchWriter for CaseWriter {
    type Batch = CaseBatch;
    type Row = Accepted;

    async fn write(
        &mut self,
        batch: CaseBatch,
        results: Vec<Accepted>,
    ) -> Result<Vec<Accepted>, StoreError> {
        CaseWriter::write(self, batch).await?;
        Ok(results)
    }

    async fn commit(self) -> Result<(), StoreError> {
        CaseWriter::commit(self).await
    }

    fn carry(batch: &mut CaseBatch, checkpoint: Checkpoint) -> Result<(), StoreError> {
        CaseWriter::checkpoint(batch, checkpoint);
        Ok(())
    }
}

impl PreparedBatch {
    fn fail(&mut self, row: u64, errors: Vec<FieldError>) {
        self.failed_rows += 1;
        self.errors
            .extend(errors.into_iter().map(|e| e.at_row(row)));
    }
}

/// The key of a request-wide duplicate check: 8 bytes instead of the value.
pub(crate) fn fingerprint(external_id: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(external_id)
}

fn unique<'s>(values: impl Iterator<Item = &'s str>) -> Vec<&'s str> {
    let mut seen = HashSet::new();
    values.filter(|v| seen.insert(*v)).collect()
}

/// Where a request names its list, for the fields of its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFields {
    /// A JSON body's `list` object: `list.name`, `list.assignment.id`.
    Body,
    /// Query or form parameters: `list_name`, `assign_group` (team, evaluator).
    Parameters,
}

impl ListFields {
    fn name(self) -> &'static str {
        match self {
            ListFields::Body => "list.name",
            ListFields::Parameters => "list_name",
        }
    }

    fn assignment(self, kind: AssignmentKind) -> &'static str {
        match (self, kind) {
            (ListFields::Body, _) => "list.assignment.id",
            (ListFields::Parameters, AssignmentKind::Group) => "assign_group",
            (ListFields::Parameters, AssignmentKind::Team) => "assign_team",
            (ListFields::Parameters, AssignmentKind::Evaluator) => "assign_evaluator",
        }
    }
}

/// Resolves a list's assignment against the caller's groups. Anything
/// outside them is `unknown_assignment`, as if it did not exist.
pub async fn resolve_list(
    store: &Store,
    access: &GroupAccess,
    spec: &ListSpec,
    source: &'static str,
    fields: ListFields,
) -> Result<NewCaseList, ApiError> {
    let name = spec.name.trim();
    if let Some(c) = crate::domain::control_character(name, false) {
        return Err(ApiError::validation(
            ErrorCode::ControlCharacter,
            vec![FieldError::field(
                fields.name(),
                ErrorCode::ControlCharacter,
                crate::domain::control_message(fields.name(), c),
            )],
        ));
    }
    if name.is_empty() || name.chars().count() > 255 {
        return Err(ApiError::validation(
            ErrorCode::ValidationFailed,
            vec![FieldError::field(
                fields.name(),
                if name.is_empty() {
                    ErrorCode::Required
                } else {
                    ErrorCode::TooLong
                },
                "a list name has 1 to 255 characters",
            )],
        ));
    }
    let id = spec.assignment.id.trim();
    let unknown = || {
        ApiError::validation(
            ErrorCode::UnknownAssignment,
            vec![FieldError::field(
                fields.assignment(spec.assignment.kind),
                ErrorCode::UnknownAssignment,
                format!(
                    "no {} {:?} is in your groups",
                    spec.assignment.kind.as_str(),
                    excerpt(id)
                ),
            )],
        )
    };
    let group_id = match spec.assignment.kind {
        AssignmentKind::Group => id
            .parse::<GroupId>()
            .ok()
            .filter(|g| access.contains(*g))
            .ok_or_else(unknown)?,
        AssignmentKind::Team => {
            let team_id: TeamId = id.parse().map_err(|_| unknown())?;
            access
                .visible(store.get_team(team_id).await?)
                .ok_or_else(unknown)?
                .group_id
        }
        AssignmentKind::Evaluator => {
            let staff = access
                .visible(store.get_staff(id).await?)
                .ok_or_else(unknown)?;
            if staff.role != StaffRole::Evaluator || !staff.active {
                return Err(ApiError::validation(
                    ErrorCode::UnknownAssignment,
                    vec![FieldError::field(
                        fields.assignment(spec.assignment.kind),
                        ErrorCode::UnknownAssignment,
                        format!("{:?} is not an active evaluator", excerpt(id)),
                    )],
                ));
            }
            staff.group_id
        }
    };
    Ok(NewCaseList {
        id: ListId::new(),
        name: name.to_string(),
        integration_id: access.integration_id,
        group_id,
        assignment_kind: spec.assignment.kind.as_str(),
        assignment_id: match spec.assignment.kind {
            AssignmentKind::Evaluator => id.to_string(),
            _ => canonical_uuid(id),
        },
        source,
    })
}

fn canonical_uuid(id: &str) -> String {
    Uuid::parse_str(id)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| id.to_string())
}

/// What a run of cases is asked to do besides its rows.
pub struct CaseRun<'a> {
    pub access: &'a GroupAccess,
    /// A new list for the cases, and where the request named it.
    pub list: Option<&'a ListSpec>,
    pub list_fields: ListFields,
    /// The list's `source` (`api`, `csv`).
    pub list_source: &'static str,
    pub on_conflict: OnConflict,
    pub dates: crate::domain::case::DateInput,
    /// What an External Staff ID not the one stored gets.
    pub drift: ExternalIdDrift,
    pub options: RunOptions,
    /// The input's name in `/metrics` (`json`, `ndjson`, `csv`).
    pub path: &'static str,
}

/// A run's summary and the list it created.
pub struct CasesIngested {
    pub summary: Summary<Accepted>,
    pub list: Option<NewCaseList>,
}

/// Ingests the cases of `source`.
pub async fn ingest_cases<S>(
    services: Services<'_>,
    run: &CaseRun<'_>,
    source: &mut S,
) -> Result<CasesIngested, ApiError>
where
    S: RowSource<Input = CaseInput>,
{
    run_cases(services, run, source, CaseIds::LookedUp).await
}

/// Ingests the cases of a source that can be read again (a body). A few
/// new cases (the default `on_conflict: error`, no list) are written on the
/// assumption that their Case IDs are new, without looking them up first;
/// if one is not, the database refuses the insert and the run starts again
/// with the lookup, to answer exactly as it would have (422 naming the row).
pub async fn ingest_cases_optimistically<S>(
    services: Services<'_>,
    run: &CaseRun<'_>,
    mut source: S,
) -> Result<CasesIngested, ApiError>
where
    S: RowSource<Input = CaseInput> + Clone,
{
    let small = source.total().is_some_and(|n| n <= FIRST_BATCH);
    if small && run.on_conflict == OnConflict::Error && run.list.is_none() {
        match run_cases(services, run, &mut source.clone(), CaseIds::AssumedNew).await {
            Err(e) if e.code == ErrorCode::DuplicateExternalId => {}
            answer => return answer,
        }
    }
    run_cases(services, run, &mut source, CaseIds::LookedUp).await
}

/// Whether a run looks up its Case IDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CaseIds {
    LookedUp,
    AssumedNew,
}

#[tracing::instrument(name = "ingest_cases", skip_all, fields(integration = %run.access.integration_id, path = run.path))]
async fn run_cases<S>(
    services: Services<'_>,
    run: &CaseRun<'_>,
    source: &mut S,
    ids: CaseIds,
) -> Result<CasesIngested, ApiError>
where
    S: RowSource<Input = CaseInput>,
{
    // The list's checks and the validators' categories, side by side.
    let (list, ingest) = tokio::try_join!(
        async {
            match run.list {
                Some(spec) => resolve_list(
                    services.store,
                    run.access,
                    spec,
                    run.list_source,
                    run.list_fields,
                )
                .await
                .map(Some),
                None => Ok(None),
            }
        },
        CaseIngest::new(
            services.store,
            run.access,
            services.control,
            run.on_conflict,
            run.dates
        ),
    )?;
    let mut ingest = ingest.into_list(list).with_external_id_drift(run.drift);
    if ids == CaseIds::AssumedNew {
        ingest = ingest.assuming_new_case_ids();
    }
    if source.total().is_some_and(|n| n <= FIRST_BATCH) {
        ingest = ingest.with_cached_staff(services.staff).await?;
    }
    let integration = run.access.integration_id.to_string();
    let counted = Counted {
        metrics: services.metrics,
        integration: &integration,
        path: run.path,
    };
    let summary = engine::run(&mut ingest, source, run.options, Some(counted)).await?;
    Ok(CasesIngested {
        summary,
        list: ingest.list.take(),
    })
}
