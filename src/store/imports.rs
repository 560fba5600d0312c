//! Import jobs: the job's row, its staged rows and failures, the lease a
//! replica holds while it runs one, and the checkpoint each committed batch
//! writes in its own transaction.
//!
//! A job moves `checking` (its file being read; never answered) →
//! `awaiting_confirmation` → `running` → `completed` | `failed` |
//! `cancelled`. A running job is run by the replica holding its lease
//! (`lease_owner` until `lease_until`, renewed while it runs); a lease that
//! ran out is taken over by another replica (PostgreSQL: `FOR UPDATE SKIP
//! LOCKED`), which resumes after `next_line`, the last line a committed
//! batch brought.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::cases::{INSERT_LIST, NewCaseList, insert_list};
use super::writer::WriterTx;
use super::{Pool, Store, StoreError, now, with_pool};
use crate::ids::{ImportId, IntegrationId, ListId};

/// What an import job brings in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    Cases,
    Customers,
}

impl ImportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Cases => "cases",
            ImportKind::Customers => "customers",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "customers" {
            ImportKind::Customers
        } else {
            ImportKind::Cases
        }
    }
}

/// The uploaded file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Csv,
    Xls,
    Xlsx,
}

impl FileFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Xls => "xls",
            FileFormat::Xlsx => "xlsx",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "xls" => FileFormat::Xls,
            "xlsx" => FileFormat::Xlsx,
            _ => FileFormat::Csv,
        }
    }
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportState {
    /// Checked and staged; nothing written until it is confirmed.
    AwaitingConfirmation,
    /// Confirmed: its rows are being written, batch by batch.
    Running,
    Completed,
    /// Stopped by an error (`error` says which); what was committed stays.
    Failed,
    /// Cancelled (or not confirmed in time); what was committed stays.
    Cancelled,
}

impl ImportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportState::AwaitingConfirmation => "awaiting_confirmation",
            ImportState::Running => "running",
            ImportState::Completed => "completed",
            ImportState::Failed => "failed",
            ImportState::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "running" => ImportState::Running,
            "completed" => ImportState::Completed,
            "failed" => ImportState::Failed,
            "cancelled" => ImportState::Cancelled,
            _ => ImportState::AwaitingConfirmation,
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            ImportState::Completed | ImportState::Failed | ImportState::Cancelled
        )
    }
}

/// An import job as stored.
#[derive(Clone, Debug)]
pub struct ImportJob {
    pub id: ImportId,
    pub integration_id: IntegrationId,
    pub kind: ImportKind,
    pub state: ImportState,
    pub file_name: String,
    pub format: FileFormat,
    /// The kind's options as sent.
    pub options: serde_json::Value,
    /// The file's columns.
    pub header: Vec<String>,
    pub detected: Option<serde_json::Value>,
    pub preview: serde_json::Value,
    pub problems: serde_json::Value,
    pub total: u64,
    pub processed: u64,
    pub succeeded: u64,
    pub skipped: u64,
    pub failed: u64,
    pub next_line: u64,
    pub list_id: Option<ListId>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: ImportId,
    integration_id: IntegrationId,
    kind: String,
    state: String,
    file_name: String,
    format: String,
    options: String,
    header: String,
    detected: Option<String>,
    preview: String,
    problems: String,
    total: i64,
    processed: i64,
    succeeded: i64,
    skipped: i64,
    failed: i64,
    next_line: i64,
    list_id: Option<ListId>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
}

const JOB_COLUMNS: &str = "id, integration_id, kind, state, file_name, format, options, header, detected, preview, problems, \
     total, processed, succeeded, skipped, failed, next_line, list_id, error, created_at, updated_at, confirmed_at, finished_at, expires_at";

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

impl From<JobRow> for ImportJob {
    fn from(row: JobRow) -> Self {
        let count = |n: i64| n.max(0) as u64;
        ImportJob {
            id: row.id,
            integration_id: row.integration_id,
            kind: ImportKind::parse(&row.kind),
            state: ImportState::parse(&row.state),
            file_name: row.file_name,
            format: FileFormat::parse(&row.format),
            options: json(&row.options),
            header: serde_json::from_str(&row.header).unwrap_or_default(),
            detected: row.detected.as_deref().map(json),
            preview: json(&row.preview),
            problems: json(&row.problems),
            total: count(row.total),
            processed: count(row.processed),
            succeeded: count(row.succeeded),
            skipped: count(row.skipped),
            failed: count(row.failed),
            next_line: count(row.next_line),
            list_id: row.list_id,
            error: row.error,
            created_at: row.created_at,
            updated_at: row.updated_at,
            confirmed_at: row.confirmed_at,
            finished_at: row.finished_at,
            expires_at: row.expires_at,
        }
    }
}

/// A job about to be checked.
pub struct NewImport {
    pub id: ImportId,
    pub integration_id: IntegrationId,
    pub kind: ImportKind,
    pub file_name: String,
    pub format: FileFormat,
    pub options: serde_json::Value,
}

/// What the check of a job's file found.
pub struct Checked {
    pub header: Vec<String>,
    pub detected: Option<serde_json::Value>,
    pub preview: serde_json::Value,
    pub problems: serde_json::Value,
    pub total: u64,
    /// Until when it may be confirmed.
    pub expires_at: DateTime<Utc>,
}

/// One staged record.
pub struct StagedRow {
    pub line: u64,
    /// Its cells, a JSON array of strings.
    pub cells: String,
    /// It breaks a CSV rule: never written (its failure is staged).
    pub broken: bool,
}

/// What one committed batch of a job brought, written in the batch's own
/// transaction (so a job resumes exactly after its last committed batch).
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub job: ImportId,
    /// The replica's lease the batch was written under.
    pub owner: Uuid,
    /// The batch's last line.
    pub through_line: u64,
    pub succeeded: u64,
    pub skipped: u64,
    pub failed: u64,
    /// The batch's failed rows: line, problems (a JSON array).
    pub failures: Vec<(u64, String)>,
}

/// When a lease taken or renewed at `at` runs out.
fn lease_end(at: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30))
}

/// Rows a check stages before it refreshes the staged rows' statistics.
const ANALYZE_AFTER_ROWS: u64 = 10_000;

/// Rows staged per statement.
const STAGE_CHUNK: usize = 2_000;

fn sql(text: &str) -> sqlx::AssertSqlSafe<&str> {
    sqlx::AssertSqlSafe(text)
}

impl Store {
    /// Creates a job in `checking`, before its file is read.
    pub async fn create_import(&self, job: &NewImport) -> Result<(), StoreError> {
        let at = now();
        let query = "INSERT INTO import_jobs (id, integration_id, kind, state, file_name, format, options, created_at, updated_at, expires_at) \
             VALUES ($1, $2, $3, 'checking', $4, $5, $6, $7, $7, $7)";
        let options = job.options.to_string();
        with_pool!(self, |pool| {
            sqlx::query(sql(query))
                .bind(job.id)
                .bind(job.integration_id)
                .bind(job.kind.as_str())
                .bind(&job.file_name)
                .bind(job.format.as_str())
                .bind(&options)
                .bind(at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Stages records of a job being checked.
    pub async fn stage_import_rows(
        &self,
        job: ImportId,
        rows: &[StagedRow],
    ) -> Result<(), StoreError> {
        for chunk in rows.chunks(STAGE_CHUNK) {
            match &self.writes {
                Pool::Postgres(pool) => {
                    let lines: Vec<i64> = chunk.iter().map(|r| r.line as i64).collect();
                    let cells: Vec<&str> = chunk.iter().map(|r| r.cells.as_str()).collect();
                    let broken: Vec<bool> = chunk.iter().map(|r| r.broken).collect();
                    sqlx::query(
                        "INSERT INTO import_rows (job_id, line, cells, broken) \
                         SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::bool[])",
                    )
                    .bind(job)
                    .bind(lines)
                    .bind(cells)
                    .bind(broken)
                    .execute(pool)
                    .await?;
                }
                Pool::Sqlite(pool) => {
                    let values = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
                    let text = format!(
                        "INSERT INTO import_rows (job_id, line, cells, broken) VALUES {values}"
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for row in chunk {
                        query = query
                            .bind(job)
                            .bind(row.line as i64)
                            .bind(row.cells.as_str())
                            .bind(row.broken);
                    }
                    query.execute(pool).await?;
                }
            }
        }
        Ok(())
    }

    /// Records failed rows of a job (a row recorded twice keeps its first).
    pub async fn record_import_failures(
        &self,
        job: ImportId,
        failures: &[(u64, String)],
    ) -> Result<(), StoreError> {
        for chunk in failures.chunks(STAGE_CHUNK) {
            let values = (0..chunk.len())
                .map(|i| format!("($1, ${}, ${})", 2 + 2 * i, 3 + 2 * i))
                .collect::<Vec<_>>()
                .join(", ");
            let text = format!(
                "INSERT INTO import_failures (job_id, line, errors) VALUES {values} ON CONFLICT DO NOTHING"
            );
            with_pool!(self, |pool| {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(text.as_str())).bind(job);
                for (line, errors) in chunk {
                    query = query.bind(*line as i64).bind(errors.as_str());
                }
                query.execute(pool).await?;
            });
        }
        Ok(())
    }

    /// The check is done: the job awaits confirmation until `expires_at`.
    pub async fn finish_import_check(
        &self,
        job: ImportId,
        checked: &Checked,
    ) -> Result<(), StoreError> {
        let query = "UPDATE import_jobs SET state = 'awaiting_confirmation', header = $2, detected = $3, preview = $4, \
             problems = $5, total = $6, expires_at = $7, updated_at = $8 WHERE id = $1 AND state = 'checking'";
        let header = serde_json::to_string(&checked.header).unwrap_or_else(|_| "[]".into());
        let detected = checked.detected.as_ref().map(|d| d.to_string());
        with_pool!(self, |pool| {
            sqlx::query(sql(query))
                .bind(job)
                .bind(&header)
                .bind(detected.as_deref())
                .bind(checked.preview.to_string())
                .bind(checked.problems.to_string())
                .bind(checked.total as i64)
                .bind(checked.expires_at)
                .bind(now())
                .execute(pool)
                .await?;
        });
        // A bulk load leaves PostgreSQL's statistics of the staged rows
        // stale: planned with them, each batch of the run read all of the
        // job's remaining rows and sorted them (a bitmap scan, seconds a
        // batch at a million rows) instead of walking the primary key.
        // ANALYZE after a bulk load, as PostgreSQL advises (a sample:
        // about 0.1 s).
        if let (Pool::Postgres(pool), true) = (&self.reads, checked.total >= ANALYZE_AFTER_ROWS) {
            sqlx::query("ANALYZE import_rows").execute(pool).await?;
        }
        Ok(())
    }

    /// Deletes a job and everything staged for it.
    pub async fn delete_import(&self, job: ImportId) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM import_jobs WHERE id = $1")
                .bind(job)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// A job, unless it is still being checked.
    pub async fn get_import(&self, job: ImportId) -> Result<Option<ImportJob>, StoreError> {
        let query =
            format!("SELECT {JOB_COLUMNS} FROM import_jobs WHERE id = $1 AND state <> 'checking'");
        let row: Option<JobRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.as_str()))
                .bind(job)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(ImportJob::from))
    }

    /// An integration's jobs, in creation order.
    pub async fn list_imports(
        &self,
        integration: IntegrationId,
        after: Option<ImportId>,
        limit: i64,
    ) -> Result<Vec<ImportJob>, StoreError> {
        let query = format!(
            "SELECT {JOB_COLUMNS} FROM import_jobs WHERE integration_id = $1 AND state <> 'checking' \
             AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        let rows: Vec<JobRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.as_str()))
                .bind(integration)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(ImportJob::from).collect())
    }

    /// Confirms a job awaiting confirmation (and not expired): it runs. Its
    /// broken rows count as processed and failed from the start; a case
    /// job's list is created now, empty, in the same transaction. `None`:
    /// the job is not awaiting confirmation (any more).
    pub async fn confirm_import(
        &self,
        job: ImportId,
        list: Option<&NewCaseList>,
    ) -> Result<Option<ImportJob>, StoreError> {
        let at = now();
        let update = format!(
            "UPDATE import_jobs SET state = 'running', confirmed_at = $2, updated_at = $2, list_id = $3, \
             processed = (SELECT COUNT(*) FROM import_rows WHERE job_id = $1 AND broken), \
             failed = (SELECT COUNT(*) FROM import_rows WHERE job_id = $1 AND broken), \
             lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND state = 'awaiting_confirmation' AND expires_at > $2 RETURNING {JOB_COLUMNS}"
        );
        let list_id = list.map(|l| l.id);
        macro_rules! confirm {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                // The list first: the job refers to it. A job no longer
                // awaiting confirmation rolls it back.
                if let Some(list) = list {
                    insert_list!(tx, list, at);
                }
                let row: Option<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(update.as_str()))
                    .bind(job)
                    .bind(at)
                    .bind(list_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if row.is_some() {
                    tx.commit().await?;
                }
                row
            }};
        }
        let row = match &self.writes {
            Pool::Postgres(pool) => confirm!(pool),
            Pool::Sqlite(pool) => confirm!(pool),
        };
        Ok(row.map(ImportJob::from))
    }

    /// Cancels a job not finished yet; `None` if it was. A running job's
    /// batch in flight is refused at its checkpoint (rolled back).
    pub async fn cancel_import(
        &self,
        job: ImportId,
        reason: Option<&str>,
    ) -> Result<Option<ImportJob>, StoreError> {
        let query = format!(
            "UPDATE import_jobs SET state = 'cancelled', finished_at = $2, updated_at = $2, error = $3, \
             lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND state IN ('awaiting_confirmation', 'running') RETURNING {JOB_COLUMNS}"
        );
        let row: Option<JobRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.as_str()))
                .bind(job)
                .bind(now())
                .bind(reason)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(ImportJob::from))
    }

    /// Takes the lease of one running job whose lease ran out (or that no
    /// replica has taken yet).
    pub async fn claim_import(
        &self,
        owner: Uuid,
        lease: Duration,
    ) -> Result<Option<ImportJob>, StoreError> {
        let at = now();
        let until = lease_end(at, lease);
        let lock = match &self.reads {
            Pool::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Pool::Sqlite(_) => "",
        };
        let query = format!(
            "UPDATE import_jobs SET lease_owner = $1, lease_until = $2, updated_at = $3 WHERE id = ( \
             SELECT id FROM import_jobs WHERE state = 'running' AND (lease_until IS NULL OR lease_until < $3) \
             ORDER BY confirmed_at LIMIT 1{lock}) AND state = 'running' RETURNING {JOB_COLUMNS}"
        );
        let row: Option<JobRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.as_str()))
                .bind(owner)
                .bind(until)
                .bind(at)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(ImportJob::from))
    }

    /// Extends a lease; `false` if the job is no longer this replica's to
    /// run (cancelled, or taken over).
    pub async fn renew_import_lease(
        &self,
        job: ImportId,
        owner: Uuid,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let at = now();
        let until = lease_end(at, lease);
        let done = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE import_jobs SET lease_until = $3 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            )
            .bind(job)
            .bind(owner)
            .bind(until)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// A running job's staged rows after `after_line` (broken ones aside).
    pub async fn staged_import_rows(
        &self,
        job: ImportId,
        after_line: u64,
        limit: usize,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        let rows: Vec<(i64, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT line, cells FROM import_rows WHERE job_id = $1 AND line > $2 AND NOT broken ORDER BY line LIMIT $3",
            )
            .bind(job)
            .bind(after_line as i64)
            .bind(limit as i64)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(line, cells)| (line.max(0) as u64, cells))
            .collect())
    }

    /// A job's failed rows in line order, with their cells where staged.
    pub async fn import_failures(
        &self,
        job: ImportId,
        after_line: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Option<String>, String)>, StoreError> {
        let rows: Vec<(i64, Option<String>, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT f.line, r.cells, f.errors FROM import_failures f \
                 LEFT JOIN import_rows r ON r.job_id = f.job_id AND r.line = f.line \
                 WHERE f.job_id = $1 AND f.line > $2 ORDER BY f.line LIMIT $3",
            )
            .bind(job)
            .bind(after_line as i64)
            .bind(limit as i64)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(line, cells, errors)| (line.max(0) as u64, cells, errors))
            .collect())
    }

    /// Ends a running job this replica holds.
    pub async fn finish_import(
        &self,
        job: ImportId,
        owner: Uuid,
        state: ImportState,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE import_jobs SET state = $3, error = $4, finished_at = $5, updated_at = $5, \
                 lease_owner = NULL, lease_until = NULL \
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            )
            .bind(job)
            .bind(owner)
            .bind(state.as_str())
            .bind(error)
            .bind(now())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Cancels the jobs not confirmed in time (their staged rows are
    /// deleted) and deletes the finished jobs older than `retention`.
    pub async fn expire_imports(&self, retention: Duration) -> Result<u64, StoreError> {
        let at = now();
        let before =
            at - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(30));
        let stale_check = at - chrono::Duration::hours(1);
        let mut changed = 0;
        with_pool!(self, |pool| {
            changed += sqlx::query(
                "UPDATE import_jobs SET state = 'cancelled', error = 'not confirmed in time', finished_at = $1, updated_at = $1 \
                 WHERE state = 'awaiting_confirmation' AND expires_at <= $1",
            )
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected();
            changed += sqlx::query(
                "DELETE FROM import_jobs WHERE (state IN ('completed', 'failed', 'cancelled') AND finished_at < $1) \
                 OR (state = 'checking' AND created_at < $2)",
            )
            .bind(before)
            .bind(stale_check)
            .execute(pool)
            .await?
            .rows_affected();
        });
        Ok(changed)
    }
}

/// Writes a batch's checkpoint in the batch's transaction; refused (the
/// batch rolls back) when the job is no longer this replica's to run.
pub(super) async fn write_checkpoint(
    tx: &mut WriterTx,
    checkpoint: &Checkpoint,
) -> Result<(), StoreError> {
    let update = "UPDATE import_jobs SET next_line = $3, processed = processed + $4 + $5 + $6, \
         succeeded = succeeded + $4, skipped = skipped + $5, failed = failed + $6, updated_at = $7 \
         WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
    let values = (0..checkpoint.failures.len())
        .map(|i| format!("($1, ${}, ${})", 2 + 2 * i, 3 + 2 * i))
        .collect::<Vec<_>>()
        .join(", ");
    let failures = format!(
        "INSERT INTO import_failures (job_id, line, errors) VALUES {values} ON CONFLICT DO NOTHING"
    );
    macro_rules! write {
        ($tx:expr) => {{
            let done = sqlx::query(update)
                .bind(checkpoint.job)
                .bind(checkpoint.owner)
                .bind(checkpoint.through_line as i64)
                .bind(checkpoint.succeeded as i64)
                .bind(checkpoint.skipped as i64)
                .bind(checkpoint.failed as i64)
                .bind(now())
                .execute(&mut **$tx)
                .await?
                .rows_affected();
            if done != 1 {
                return Err(StoreError::Other(anyhow::Error::new(JobStopped)));
            }
            if !checkpoint.failures.is_empty() {
                let mut query =
                    sqlx::query(sqlx::AssertSqlSafe(failures.as_str())).bind(checkpoint.job);
                for (line, errors) in &checkpoint.failures {
                    query = query.bind(*line as i64).bind(errors.as_str());
                }
                query.execute(&mut **$tx).await?;
            }
        }};
    }
    match tx {
        WriterTx::Postgres(tx) => write!(tx),
        WriterTx::Sqlite(tx) => write!(tx),
    }
    Ok(())
}

/// A job's batch was refused at its checkpoint: the job was cancelled or
/// another replica took it over.
#[derive(Debug, thiserror::Error)]
#[error("the import job is no longer this replica's to run (cancelled or taken over)")]
pub struct JobStopped;
