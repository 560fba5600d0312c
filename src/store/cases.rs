//! Cases and case lists: the answer types, batched lookups, read queries
//! and the bulk writer's façade.
//!
//! The writer takes a request's validated batches and writes them in one
//! transaction (see [`Store::case_writer`]); each backend's statements live
//! in its own module: `postgres::cases` (`COPY … FROM STDIN (FORMAT
//! binary)` into `cases`, one COPY kept open across batches, or into a
//! temporary staging table joined by one `UPDATE`) and `sqlite::cases`
//! (prepared multi-row `INSERT`s). The SQL both backends share (the
//! multi-row `INSERT` of cases, the new list) is here.

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use utoipa::ToSchema;

use super::imports::{Checkpoint, write_checkpoint};
use super::writer::{WriterTx, begin, commit};
use super::{Commits, Pool, Shape, Store, StoreError, group_clause, now, with_pool};
use crate::ids::{CaseId, GroupId, IntegrationId, ListId};

/// How many values one batched lookup binds (well under both databases' limits).
const LOOKUP_CHUNK: usize = 2_000;

/// A staff member as a case sees it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StaffMatch {
    pub staff_id: String,
    pub external_id: Option<String>,
    pub group_id: GroupId,
    pub active: bool,
    pub role: String,
}

/// A case ready to be written.
#[derive(Clone, Debug)]
pub struct CaseRow {
    pub id: CaseId,
    pub external_id: String,
    pub staff_id: String,
    pub external_staff_id: Option<String>,
    pub group_id: GroupId,
    pub channel: Option<&'static str>,
    pub status: &'static str,
    pub priority: Option<&'static str>,
    pub category: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    /// JSON object text.
    pub data: String,
}

/// A new case list.
#[derive(Clone, Debug)]
pub struct NewCaseList {
    pub id: ListId,
    pub name: String,
    pub integration_id: IntegrationId,
    pub group_id: GroupId,
    pub assignment_kind: &'static str,
    pub assignment_id: String,
    pub source: &'static str,
}

/// A stored case.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({
    "id": "019a8c12-4444-7000-8000-000000000005", "external_id": "T-1", "staff_id": "DEMO-A1", "external_staff_id": "crm-DEMO-A1",
    "list_id": "019a8c12-5555-7000-8000-000000000006", "integration_id": "019a8c10-2222-7000-8000-000000000003",
    "group_id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa", "channel": "live_hotline", "status": "open", "priority": "high",
    "category": "General", "occurred_at": "2026-11-20T14:05:00Z", "data": {"Duration": 312},
    "created_at": "2026-11-22T09:00:00Z", "updated_at": "2026-11-22T09:00:00Z"
}))]
pub struct Case {
    #[schema(value_type = uuid::Uuid)]
    pub id: CaseId,
    pub external_id: String,
    pub staff_id: String,
    pub external_staff_id: Option<String>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub list_id: Option<ListId>,
    #[schema(value_type = uuid::Uuid)]
    pub integration_id: IntegrationId,
    #[schema(value_type = uuid::Uuid)]
    pub group_id: GroupId,
    pub channel: Option<String>,
    pub status: String,
    pub priority: Option<String>,
    pub category: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    /// The custom columns, in the order sent.
    #[schema(value_type = Object)]
    pub data: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Who may score a list.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ListAssignment {
    /// `group`, `team` or `evaluator`.
    pub kind: String,
    /// The group's or team's id, or the evaluator's Staff ID.
    pub id: String,
}

/// A named batch of cases.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019a8c12-5555-7000-8000-000000000006", "name": "November calls", "integration_id": "019a8c10-2222-7000-8000-000000000003",
    "group_id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa", "assignment": {"kind": "team", "id": "019a8c0e-9f10-7b0e-8c6d-51a0e1f2c3d4"},
    "source": "api", "case_count": 2, "created_at": "2026-11-22T09:00:00Z"
}))]
pub struct CaseList {
    #[schema(value_type = uuid::Uuid)]
    pub id: ListId,
    pub name: String,
    /// The destination integration.
    #[schema(value_type = uuid::Uuid)]
    pub integration_id: IntegrationId,
    /// The group of the assignment.
    #[schema(value_type = uuid::Uuid)]
    pub group_id: GroupId,
    pub assignment: ListAssignment,
    /// `api`, `csv` or `import`.
    pub source: String,
    pub case_count: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct CaseListRow {
    id: ListId,
    name: String,
    integration_id: IntegrationId,
    group_id: GroupId,
    assignment_kind: String,
    assignment_id: String,
    source: String,
    case_count: i64,
    created_at: DateTime<Utc>,
}

impl From<CaseListRow> for CaseList {
    fn from(row: CaseListRow) -> Self {
        CaseList {
            id: row.id,
            name: row.name,
            integration_id: row.integration_id,
            group_id: row.group_id,
            assignment: ListAssignment {
                kind: row.assignment_kind,
                id: row.assignment_id,
            },
            source: row.source,
            case_count: row.case_count,
            created_at: row.created_at,
        }
    }
}

/// Filters of `GET /v1/cases`.
#[derive(Clone, Debug, Default)]
pub struct CaseFilter {
    pub list_id: Option<ListId>,
    pub staff_id: Option<String>,
    pub external_id: Option<String>,
}

const CASE_COLUMNS: &str = "id, external_id, staff_id, external_staff_id, list_id, integration_id, group_id, \
     channel, status, priority, category, occurred_at, data, created_at, updated_at";

const LIST_COLUMNS: &str = "l.id, l.name, l.integration_id, l.group_id, l.assignment_kind, l.assignment_id, \
     l.source, (SELECT COUNT(*) FROM cases c WHERE c.list_id = l.id) AS case_count, l.created_at";

pub(super) const INSERT_LIST: &str = "INSERT INTO case_lists (id, name, integration_id, group_id, assignment_kind, \
     assignment_id, source, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Inserts a [`NewCaseList`] in the transaction `$tx` (either backend).
macro_rules! insert_list {
    ($tx:expr, $list:expr, $at:expr) => {
        sqlx::query(INSERT_LIST)
            .bind($list.id)
            .bind(&$list.name)
            .bind($list.integration_id)
            .bind($list.group_id)
            .bind($list.assignment_kind)
            .bind(&$list.assignment_id)
            .bind($list.source)
            .bind($at)
            .execute(&mut *$tx)
            .await?
    };
}

/// Binds the 15 values of each case row, in the column order of
/// [`insert_cases_sql`], to `$query` (either backend).
macro_rules! bind_case_rows {
    ($query:expr, $rows:expr, $list_id:expr, $at:expr) => {{
        let mut query = $query;
        for (row, integration_id) in $rows {
            query = query
                .bind(row.id)
                .bind(&row.external_id)
                .bind(&row.staff_id)
                .bind(&row.external_staff_id)
                .bind($list_id)
                .bind(integration_id)
                .bind(row.group_id)
                .bind(row.channel)
                .bind(row.status)
                .bind(row.priority)
                .bind(&row.category)
                .bind(row.occurred_at)
                .bind(&row.data)
                .bind($at)
                .bind($at);
        }
        query
    }};
}
pub(super) use bind_case_rows;
pub(super) use insert_list;

/// Columns of a case row, in the order of the `COPY` statement (and of
/// [`insert_cases_sql`]).
pub(super) const COPY_COLUMNS: i16 = 15;

/// A multi-row `INSERT INTO cases` of `rows` rows. PostgreSQL: numbered
/// placeholders, `data` cast from text. SQLite: anonymous `?` placeholders
/// (SQLite finds a numbered parameter's name by a linear scan, which made
/// binding 7,500 `$N` parameters quadratic).
pub(super) fn insert_cases_sql(postgres: bool, rows: usize) -> String {
    let columns = COPY_COLUMNS as usize;
    let values: Vec<String> = (0..rows)
        .map(|i| {
            let marks: Vec<String> = (1..=columns)
                .map(|c| match (postgres, c) {
                    (true, 13) => format!("${}::json", i * columns + c),
                    (true, _) => format!("${}", i * columns + c),
                    (false, _) => "?".to_string(),
                })
                .collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO cases (id, external_id, staff_id, external_staff_id, list_id, integration_id, \
         group_id, channel, status, priority, category, occurred_at, data, created_at, updated_at) VALUES {}",
        values.join(", ")
    )
}

/// One case, inserted only if its staff member, group and integration exist,
/// each locked `FOR KEY SHARE` until the statement commits (as a foreign key
/// would), and marked as checked for the rest of its transaction (PostgreSQL
/// only): the statement trigger of migration 0011 then skips its own check.
/// For the one-row statements of client systems the join costs the
/// database less than the trigger's queries over its transition table. No
/// row inserted means a reference is missing (or was deleted meanwhile).
const INSERT_ONE_CHECKED_CASE: &str = "INSERT INTO cases (id, external_id, staff_id, external_staff_id, list_id, \
     integration_id, group_id, channel, status, priority, category, occurred_at, data, created_at, updated_at) \
     SELECT v.* FROM (VALUES ($1::uuid, $2::text, $3::text, $4::text, $5::uuid, $6::uuid, $7::uuid, $8::text, \
     $9::text, $10::text, $11::text, $12::timestamptz, $13::json, $14::timestamptz, $15::timestamptz)) \
     AS v (id, external_id, staff_id, external_staff_id, list_id, integration_id, group_id, channel, status, \
     priority, category, occurred_at, data, created_at, updated_at) \
     JOIN staff s ON s.staff_id = v.staff_id \
     JOIN groups g ON g.id = v.group_id \
     JOIN integrations i ON i.id = v.integration_id \
     WHERE set_config('intake.references_checked', 'on', true) IS NOT NULL \
     FOR KEY SHARE OF s, g, i";

fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// The configured category names.
    pub async fn category_names(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT name FROM categories ORDER BY name")
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    /// Staff of `groups` named by any of `staff_ids` (Staff ID) or
    /// `external_ids` (External Staff ID): a few queries per batch, never one
    /// per row.
    pub async fn staff_matching(
        &self,
        groups: &[GroupId],
        staff_ids: &[&str],
        external_ids: &[&str],
    ) -> Result<Vec<StaffMatch>, StoreError> {
        let mut found = Vec::new();
        if groups.is_empty() {
            return Ok(found);
        }
        for (column, values) in [("staff_id", staff_ids), ("external_id", external_ids)] {
            for chunk in values.chunks(LOOKUP_CHUNK) {
                let sql = format!(
                    "SELECT staff_id, external_id, group_id, active, role FROM staff WHERE {column} IN ({}) AND {}",
                    placeholders(1, chunk.len()),
                    group_clause("group_id", Some(groups), chunk.len() + 1)
                );
                let rows: Vec<StaffMatch> = with_pool!(self, |pool| {
                    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()));
                    for value in chunk {
                        query = query.bind(*value);
                    }
                    for group in groups {
                        query = query.bind(*group);
                    }
                    query.fetch_all(pool).await?
                });
                found.extend(rows);
            }
        }
        Ok(found)
    }

    /// Every staff member of `groups`, up to `limit` (the staff directory
    /// of an integration, for the cache of small requests).
    pub async fn staff_of_groups(
        &self,
        groups: &[GroupId],
        limit: usize,
    ) -> Result<Vec<StaffMatch>, StoreError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT staff_id, external_id, group_id, active, role FROM staff WHERE {} LIMIT {limit}",
            group_clause("group_id", Some(groups), 1)
        );
        Ok(with_pool!(self, |pool| {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()));
            for group in groups {
                query = query.bind(*group);
            }
            query.fetch_all(pool).await?
        }))
    }

    /// Up to `limit` active staff of `groups`, agents first, then by Staff
    /// ID (the example rows of an import template).
    pub async fn active_staff_of_groups(
        &self,
        groups: &[GroupId],
        limit: usize,
    ) -> Result<Vec<StaffMatch>, StoreError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT staff_id, external_id, group_id, active, role FROM staff WHERE active AND {} \
             ORDER BY CASE WHEN role = 'agent' THEN 0 ELSE 1 END, staff_id LIMIT {limit}",
            group_clause("group_id", Some(groups), 1)
        );
        Ok(with_pool!(self, |pool| {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()));
            for group in groups {
                query = query.bind(*group);
            }
            query.fetch_all(pool).await?
        }))
    }

    /// The integration's cases with these external ids: (id, group) by
    /// external id.
    pub async fn existing_cases(
        &self,
        integration_id: IntegrationId,
        external_ids: &[&str],
    ) -> Result<HashMap<String, (CaseId, GroupId)>, StoreError> {
        let mut found = HashMap::new();
        match &self.reads {
            // One round trip, one probe of the unique index per value,
            // whatever the statistics say. A long IN list was planned as a
            // scan comparing every row with every value; a plain join with
            // the array, on a table the statistics still think empty (just
            // filled, not yet analyzed), as a hash join reading every case
            // of the integration: 17 ms per lookup at 60,000 cases, growing
            // with the table. `OFFSET 0` keeps the lateral subquery from
            // being flattened into such a join.
            Pool::Postgres(pool) => {
                let rows: Vec<(String, CaseId, GroupId)> = sqlx::query_as(
                    "SELECT k.external_id, c.id, c.group_id FROM unnest($2::text[]) AS k(external_id) \
                     CROSS JOIN LATERAL (SELECT id, group_id FROM cases WHERE integration_id = $1 \
                     AND external_id = k.external_id OFFSET 0) AS c",
                )
                .bind(integration_id)
                .bind(external_ids)
                .fetch_all(pool)
                .await?;
                found.extend(rows.into_iter().map(|(k, id, group)| (k, (id, group))));
            }
            Pool::Sqlite(pool) => {
                for chunk in external_ids.chunks(LOOKUP_CHUNK) {
                    // `?`, not `$N`: see the note on the bulk INSERT.
                    let sql = format!(
                        "SELECT external_id, id, group_id FROM cases WHERE integration_id = ? AND external_id IN ({})",
                        vec!["?"; chunk.len()].join(", ")
                    );
                    let mut query =
                        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(integration_id);
                    for value in chunk {
                        query = query.bind(*value);
                    }
                    let rows: Vec<(String, CaseId, GroupId)> = query.fetch_all(pool).await?;
                    found.extend(rows.into_iter().map(|(k, id, group)| (k, (id, group))));
                }
            }
        }
        Ok(found)
    }

    /// A writer of the cases of one run: its batches are written in order,
    /// in one transaction (or, [`Commits::EachBatch`], each committed on
    /// its own) that first creates `list`, if any. It connects at its first
    /// write; dropped before [`CaseWriter::commit`], it rolls back.
    pub fn case_writer(
        &self,
        integration_id: IntegrationId,
        list: Option<&NewCaseList>,
        commits: Commits,
        shape: Shape,
    ) -> CaseWriter {
        CaseWriter {
            store: self.clone(),
            integration_id,
            list: list.cloned(),
            existing_list: None,
            commits,
            shape,
            running: None,
        }
    }

    /// The writer's work, as one future: batches arrive through the
    /// channel, each acknowledged in `written` once written (committed,
    /// with [`Commits::EachBatch`]). On PostgreSQL one `COPY` stays open
    /// while batches bring only new cases, so a run cut into batches pays
    /// for one statement. It ends, its transaction still open, once the
    /// channel is closed.
    fn case_writer_task(
        &self,
        integration_id: IntegrationId,
        list: Option<NewCaseList>,
        existing_list: Option<ListId>,
        commits: Commits,
        batches: tokio::sync::mpsc::Receiver<CaseBatch>,
        written: tokio::sync::watch::Sender<u64>,
    ) -> impl Future<Output = Result<OpenCases, StoreError>> + Send + 'static {
        let store = self.clone();
        async move {
            let mut writer = Writer {
                integration_id,
                list_id: list.as_ref().map(|l| l.id).or(existing_list),
                at: now(),
                batches,
                written,
            };
            let mut tx = begin(&store).await?;
            if let Some(list) = &list {
                let at = writer.at;
                match &mut tx {
                    WriterTx::Postgres(tx) => {
                        insert_list!(*tx, list, at);
                    }
                    WriterTx::Sqlite(tx) => {
                        insert_list!(*tx, list, at);
                    }
                }
            }
            if commits == Commits::EachBatch {
                while let Some(mut batch) = writer.batches.recv().await {
                    let checkpoint = batch.checkpoint.take();
                    writer.write(&mut tx, batch).await?;
                    if let Some(checkpoint) = &checkpoint {
                        write_checkpoint(&mut tx, checkpoint).await?;
                    }
                    commit(tx).await?;
                    writer.acknowledge();
                    tx = begin(&store).await?;
                }
                return Ok(OpenCases(tx));
            }
            match &mut tx {
                WriterTx::Postgres(pg) => writer.stream_postgres(pg).await?,
                WriterTx::Sqlite(_) => {
                    while let Some(batch) = writer.batches.recv().await {
                        writer.write(&mut tx, batch).await?;
                        writer.acknowledge();
                    }
                }
            }
            Ok(OpenCases(tx))
        }
    }

    /// Writes new cases in one statement, in its own transaction, on a
    /// writer's connection: the small-request path (a request of one batch,
    /// with no list and nothing to update) when the request is written
    /// alone by the group commit (`store::grouped`: no other was waiting,
    /// or its group was refused), one round trip instead of a transaction
    /// around a COPY. On PostgreSQL one case is written by
    /// [`INSERT_ONE_CHECKED_CASE`]; if that inserts nothing, the plain
    /// statement says why (the trigger's foreign-key error, or it inserts
    /// the case if what was missing has come back).
    pub async fn insert_cases(
        &self,
        integration_id: IntegrationId,
        rows: &[CaseRow],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let at = now();
        if let (Pool::Postgres(pool), [_]) = (&self.writes, rows) {
            let inserted = bind_case_rows!(
                sqlx::query(INSERT_ONE_CHECKED_CASE),
                rows.iter().map(|row| (row, integration_id)),
                None::<ListId>,
                at
            )
            .execute(pool)
            .await?
            .rows_affected();
            if inserted == 1 {
                return Ok(());
            }
        }
        let sql = insert_cases_sql(matches!(self.writes, Pool::Postgres(_)), rows.len());
        let query = || sqlx::AssertSqlSafe(sql.as_str());
        match &self.writes {
            Pool::Postgres(pool) => {
                bind_case_rows!(
                    sqlx::query(query()),
                    rows.iter().map(|row| (row, integration_id)),
                    None::<ListId>,
                    at
                )
                .execute(pool)
                .await?;
            }
            Pool::Sqlite(pool) => {
                bind_case_rows!(
                    sqlx::query(query()),
                    rows.iter().map(|row| (row, integration_id)),
                    None::<ListId>,
                    at
                )
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }

    /// Cases of `groups`, in creation order.
    pub async fn list_cases(
        &self,
        groups: &[GroupId],
        filter: &CaseFilter,
        after: Option<CaseId>,
        limit: i64,
    ) -> Result<Vec<Case>, StoreError> {
        let sql = format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE ($1 IS NULL OR id > $1) AND ($2 IS NULL OR list_id = $2) \
             AND ($3 IS NULL OR staff_id = $3) AND ($4 IS NULL OR external_id = $4) AND {} ORDER BY id LIMIT $5",
            group_clause("group_id", Some(groups), 6)
        );
        Ok(with_pool!(self, |pool| {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(after)
                .bind(filter.list_id)
                .bind(filter.staff_id.as_deref())
                .bind(filter.external_id.as_deref())
                .bind(limit);
            for group in groups {
                query = query.bind(*group);
            }
            query.fetch_all(pool).await?
        }))
    }

    pub async fn get_case(&self, id: CaseId) -> Result<Option<Case>, StoreError> {
        let sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = $1");
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Case lists of `groups`, in creation order.
    pub async fn list_case_lists(
        &self,
        groups: &[GroupId],
        after: Option<ListId>,
        limit: i64,
    ) -> Result<Vec<CaseList>, StoreError> {
        let sql = format!(
            "SELECT {LIST_COLUMNS} FROM case_lists l WHERE ($1 IS NULL OR l.id > $1) AND {} ORDER BY l.id LIMIT $2",
            group_clause("l.group_id", Some(groups), 3)
        );
        let rows: Vec<CaseListRow> = with_pool!(self, |pool| {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(after)
                .bind(limit);
            for group in groups {
                query = query.bind(*group);
            }
            query.fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(CaseList::from).collect())
    }

    pub async fn get_case_list(&self, id: ListId) -> Result<Option<CaseList>, StoreError> {
        let sql = format!("SELECT {LIST_COLUMNS} FROM case_lists l WHERE l.id = $1");
        let row: Option<CaseListRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(CaseList::from))
    }
}

/// One batch for a writer: new cases, and cases that update stored ones.
#[derive(Debug, Default)]
pub struct CaseBatch {
    pub inserts: Vec<CaseRow>,
    pub updates: Vec<CaseRow>,
    /// An import job's progress, committed with the batch (only with
    /// [`Commits::EachBatch`]).
    pub checkpoint: Option<Checkpoint>,
}

/// The transaction a writer's task leaves open: commit it, or drop it
/// (rollback).
struct OpenCases(WriterTx);

/// The writer of one run's cases (see [`Store::case_writer`]).
pub struct CaseWriter {
    store: Store,
    integration_id: IntegrationId,
    list: Option<NewCaseList>,
    /// A list created before the run (an import job's), which the cases go
    /// into.
    existing_list: Option<ListId>,
    commits: Commits,
    shape: Shape,
    running: Option<Running>,
}

/// A writer's task and what feeds it. The task runs on its own (spawned),
/// so a batch is written while the run reads and validates the next two:
/// one in the channel, one being validated.
struct Running {
    sink: tokio::sync::mpsc::Sender<CaseBatch>,
    task: tokio::task::JoinHandle<Result<OpenCases, StoreError>>,
    written: tokio::sync::watch::Receiver<u64>,
    sent: u64,
}

impl Drop for Running {
    /// A writer dropped before its commit stops: its transaction rolls back.
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Running {
    /// The task's end, once it has ended: its error (a task only ends
    /// before its commit on an error).
    async fn ended(&mut self) -> StoreError {
        match (&mut self.task).await {
            Ok(Err(e)) => e,
            Ok(Ok(_)) => stopped_early(),
            Err(e) => StoreError::Other(anyhow::anyhow!("the case writer failed: {e}")),
        }
    }
}

impl CaseWriter {
    /// The cases go into `list`, which exists already (not created by
    /// this writer).
    pub fn into_existing_list(mut self, list: ListId) -> Self {
        self.existing_list = Some(list);
        self
    }

    /// The next batch carries an import job's checkpoint.
    pub fn checkpoint(batch: &mut CaseBatch, checkpoint: Checkpoint) {
        batch.checkpoint = Some(checkpoint);
    }

    fn start(&mut self) -> &mut Running {
        self.running.get_or_insert_with(|| {
            let (sink, batches) = tokio::sync::mpsc::channel(1);
            let (acknowledge, written) = tokio::sync::watch::channel(0);
            let task = self.store.case_writer_task(
                self.integration_id,
                self.list.clone(),
                self.existing_list,
                self.commits,
                batches,
                acknowledge,
            );
            Running {
                sink,
                task: tokio::spawn(task),
                written,
                sent: 0,
            }
        })
    }

    /// Hands one batch to the writer: it returns once the writer has room
    /// for it (with [`Commits::EachBatch`], once it is committed, so that
    /// what a run counts as committed is). A run of one batch with only new
    /// cases and no list is written by one statement, in one transaction
    /// shared with the other small requests of the moment (see
    /// `store::grouped`). A write that failed is reported by the next call.
    #[tracing::instrument(name = "write_cases", skip_all, fields(inserts = batch.inserts.len(), updates = batch.updates.len()))]
    pub async fn write(&mut self, batch: CaseBatch) -> Result<(), StoreError> {
        if self.shape == Shape::OneBatch
            && self.running.is_none()
            && self.list.is_none()
            && self.existing_list.is_none()
            && self.commits == Commits::Once
            && batch.updates.is_empty()
        {
            return self
                .store
                .insert_cases_grouped(self.integration_id, batch.inserts)
                .await;
        }
        let each_batch = self.commits == Commits::EachBatch;
        let running = self.start();
        if running.sink.send(batch).await.is_err() {
            // The task ended (its channel's receiver is gone): its error.
            return Err(running.ended().await);
        }
        running.sent += 1;
        if each_batch {
            let sent = running.sent;
            if running.written.wait_for(|n| *n >= sent).await.is_err() {
                return Err(running.ended().await);
            }
        }
        Ok(())
    }

    /// Commits what was written; a run that wrote nothing still creates
    /// its list (empty).
    pub async fn commit(mut self) -> Result<(), StoreError> {
        if self.running.is_none() && self.list.is_none() {
            return Ok(());
        }
        self.start();
        let Some(mut running) = self.running.take() else {
            return Ok(());
        };
        // The task ends once its channel is closed.
        let (closed, _) = tokio::sync::mpsc::channel(1);
        drop(std::mem::replace(&mut running.sink, closed));
        match (&mut running.task).await {
            Ok(open) => open?.commit().await,
            Err(e) => Err(StoreError::Other(anyhow::anyhow!(
                "the case writer failed: {e}"
            ))),
        }
    }
}

fn stopped_early() -> StoreError {
    StoreError::Other(anyhow::anyhow!("the case writer stopped early"))
}

impl OpenCases {
    async fn commit(self) -> Result<(), StoreError> {
        commit(self.0).await
    }
}

/// The state of one request's writer (its backend arms: `postgres::cases`,
/// `sqlite::cases`).
pub(super) struct Writer {
    pub(super) integration_id: IntegrationId,
    pub(super) list_id: Option<ListId>,
    pub(super) at: DateTime<Utc>,
    pub(super) batches: tokio::sync::mpsc::Receiver<CaseBatch>,
    /// Batches written so far.
    pub(super) written: tokio::sync::watch::Sender<u64>,
}

impl Writer {
    pub(super) fn acknowledge(&self) {
        self.written.send_modify(|n| *n += 1);
    }

    /// Writes one batch into `tx`, statements of its own.
    async fn write(&mut self, tx: &mut WriterTx, batch: CaseBatch) -> Result<(), StoreError> {
        match tx {
            WriterTx::Postgres(tx) => self.write_postgres(tx, &batch).await,
            WriterTx::Sqlite(tx) => self.write_sqlite(tx, &batch).await,
        }
    }
}
