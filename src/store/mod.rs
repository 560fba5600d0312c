//! Storage: one interface, [`Store`], with a SQLite and a PostgreSQL backend
//! chosen by the database URL's scheme.
//!
//! Queries that both databases read the same way are written once and run on
//! either pool through [`with_pool!`]; where the backends differ (bulk writes:
//! COPY on PostgreSQL, batched prepared inserts on SQLite) a method matches on
//! the backend and each arm lives in its own module. Each backend has its own
//! migrations folder, embedded in the binary and run at start-up.
//!
//! - `cases`, `customers`: the answer types, lookups, read queries, the SQL
//!   both backends share, and the bulk writers' façades, which dispatch per
//!   backend;
//! - `grouped`: group commit of small case requests (the requests of one
//!   case or a few that arrive together share one `INSERT` and one commit);
//! - `writer`: the writers' transaction (`WriterTx`) on either backend;
//! - `postgres`: the PostgreSQL arms of the writers (COPY encoders, cases,
//!   customers) and the socket option (`TCP_NODELAY`);
//! - `sqlite`: the SQLite arms of the writers (multi-row statements);
//! - `admin`, `idempotency`, `integrations`, `models`: the rest, written once.

mod admin;
pub mod cases;
pub mod customers;
pub mod grouped;
pub mod idempotency;
pub mod imports;
pub mod integrations;
pub mod models;
mod postgres;
pub mod reference;
mod sqlite;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::ids::GroupId;
use crate::settings::Settings;

/// One connection pool, on either backend.
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The storage interface. Cloning is cheap (pool handles and a shared
/// queue).
///
/// Connections come from two pools, so that no request can hold a
/// connection while it waits for another one that only requests in the
/// same situation could give back (the deadlock of one shared pool):
/// - `reads`: short statements and admin transactions. A connection of
///   this pool is never held while waiting for any other connection.
/// - `writes`: the transactions of the ingestion writers (cases,
///   customers). A writer holds one of these and may meanwhile borrow
///   `reads` connections for the next batch's lookups — never another
///   `writes` connection — so every wait ends. The grouped inserts of
///   small case requests use at most half of them at once (`grouped`).
///
/// On SQLite, which has one writer at a time, `writes` has one connection
/// (writers queue for it instead of spinning on the database lock).
#[derive(Clone, Debug)]
pub struct Store {
    pub reads: Pool,
    pub writes: Pool,
    /// Idempotency keys. PostgreSQL: the readers' pool. SQLite: a database
    /// file of their own beside the main one, so that a key is claimed
    /// (written) at once even while a bulk ingestion holds the main file's
    /// one writer for as long as it runs.
    pub keys: Pool,
    /// Small case requests written together (see `grouped`).
    grouped: std::sync::Arc<grouped::GroupedInserts>,
}

/// Runs `$body` with `$pool` bound to the store's `reads` pool. The
/// body is compiled once per backend, so it must be valid SQL for both.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.reads {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The current time at the precision both databases keep (microseconds), so
/// that what a write answers equals what a later read answers.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}

/// `column IN ($first, $first+1, …)`, one placeholder per group, to bind in
/// order after the query's other parameters; `TRUE` for `None` (no
/// restriction) and `FALSE` for no groups at all.
pub fn group_clause(column: &str, groups: Option<&[GroupId]>, first: usize) -> String {
    match groups {
        None => "TRUE".to_string(),
        Some([]) => "FALSE".to_string(),
        Some(groups) => {
            let placeholders: Vec<String> = (first..first + groups.len())
                .map(|n| format!("${n}"))
                .collect();
            format!("{column} IN ({})", placeholders.join(", "))
        }
    }
}

impl Store {
    /// Whether the store was closed (the server stopped).
    pub fn is_closed(&self) -> bool {
        match &self.reads {
            Pool::Sqlite(pool) => pool.is_closed(),
            Pool::Postgres(pool) => pool.is_closed(),
        }
    }
}

/// A pooled PostgreSQL connection idle for longer than this is pinged
/// before it is used.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(10);

/// How `database_max_connections` is shared between the pools: (reads,
/// writes). SQLite writes one transaction at a time: one writer. PostgreSQL:
/// half and half (at least one each).
pub fn pool_sizes(url: &str, total: u32) -> (u32, u32) {
    let total = total.max(2);
    if url.starts_with("sqlite:") {
        (total - 1, 1)
    } else {
        let writes = (total / 2).max(1);
        (total - writes, writes)
    }
}

/// Creates `dir` (and its parents) if missing, and makes it the owner's
/// only (0700): it holds the database and the generated signing secret.
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Makes the SQLite database beside `main` (and its journal files, and the
/// idempotency keys' file) readable and writable by the owner only (0600).
fn private_files(main: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Some(name) = main.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        let stem = main.file_stem().and_then(|s| s.to_str()).unwrap_or(name);
        let keys = format!("{stem}-idempotency.db");
        for file in [name.to_string(), keys] {
            for suffix in ["", "-wal", "-shm"] {
                let path = main.with_file_name(format!("{file}{suffix}"));
                if path.exists()
                    && let Err(e) =
                        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                {
                    tracing::warn!(error = %e, path = %path.display(), "cannot make a database file private");
                }
            }
        }
    }
}

/// How a bulk writer commits a run's batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commits {
    /// One transaction for the whole run.
    Once,
    /// Each batch committed on its own (long streams make progress and
    /// hold no lock for their whole length).
    EachBatch,
}

/// How many batches a run has, when known before it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One batch: a writer may write it by one statement, in a
    /// transaction of its own.
    OneBatch,
    /// Several, or not known.
    Batches,
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write.
    #[error("unique constraint violated: {0}")]
    Duplicate(String),
    /// A foreign key refused the write (a missing or still-referenced row).
    #[error("foreign key violated: {0}")]
    Reference(String),
    /// Two transactions waited for each other (a deadlock the database broke,
    /// or a serialization failure): nothing of this one was written; a retry
    /// may pass.
    #[error("concurrent transactions collided: {0}")]
    Contended(String),
    /// The database cannot be reached now; the request may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match &error {
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation => StoreError::Duplicate(db.message().to_string()),
                ErrorKind::ForeignKeyViolation => StoreError::Reference(db.message().to_string()),
                // SQLite reports some foreign-key failures (e.g. on DELETE) as
                // SQLITE_CONSTRAINT_TRIGGER (1811), which sqlx does not classify.
                _ if db.message().contains("FOREIGN KEY constraint failed") => {
                    StoreError::Reference(db.message().to_string())
                }
                // The same for a uniqueness a trigger enforces.
                _ if db.message().contains("UNIQUE constraint failed") => {
                    StoreError::Duplicate(db.message().to_string())
                }
                _ if matches!(db.code().as_deref(), Some("40P01" | "40001")) => {
                    StoreError::Contended(db.message().to_string())
                }
                _ if is_connection_loss(db.code().as_deref()) => StoreError::Unavailable(error),
                _ => StoreError::Other(anyhow::Error::new(error)),
            },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => StoreError::Unavailable(error),
            _ => StoreError::Other(anyhow::Error::new(error)),
        }
    }
}

/// PostgreSQL's "the server is going away" classes (57P01 admin shutdown,
/// 57P02/57P03, 08xxx connection exceptions) and SQLite's BUSY/LOCKED.
fn is_connection_loss(code: Option<&str>) -> bool {
    matches!(code, Some(c) if c.starts_with("08") || c.starts_with("57P") || c == "5" || c == "6")
}

impl Store {
    /// Connects to the database named by the settings (creating a SQLite
    /// file and its folder where needed). Does not run migrations.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Store> {
        let url = settings.database_url.expose();
        let (reads, writes) = pool_sizes(url, settings.database_max_connections);
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            if let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                private_dir(parent)?;
            }
            let pool = |size: u32| {
                SqlitePoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(settings.database_timeout)
                    // An in-process database: nothing to ping.
                    .test_before_acquire(false)
            };
            // The writers' pool first: it creates the file and turns on WAL.
            let writes = pool(writes).connect_with(options.clone()).await?;
            let keys_file = options.get_filename().to_path_buf();
            let reads = pool(reads).connect_with(options.clone()).await?;
            let keys = match keys_file.file_stem().and_then(|s| s.to_str()) {
                Some(stem) if keys_file.to_str() != Some(":memory:") => {
                    let file = keys_file.with_file_name(format!("{stem}-idempotency.db"));
                    let keys = pool(2)
                        .connect_with(options.filename(file).foreign_keys(false))
                        .await?;
                    sqlx::raw_sql(idempotency::SQLITE_SCHEMA)
                        .execute(&keys)
                        .await?;
                    keys
                }
                _ => reads.clone(),
            };
            // The database files hold every group's data: the owner's only.
            private_files(&keys_file);
            Ok(Store {
                grouped: std::sync::Arc::new(grouped::GroupedInserts::for_writers(1)),
                reads: Pool::Sqlite(reads),
                writes: Pool::Sqlite(writes),
                keys: Pool::Sqlite(keys),
            })
        } else {
            let options = PgConnectOptions::from_str(url)?.application_name("intake");
            let port = options.get_port();
            // Lazy: the server starts (and answers /readyz 503) while the
            // database is down, and reconnects when it comes back.
            let pool = |size: u32| {
                PgPoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(settings.database_timeout)
                    // A ping before every use costs a round trip per
                    // statement on the small-request path: only a
                    // connection idle for a while is checked (a dead one
                    // found later fails its request with a 503 and is
                    // dropped).
                    .test_before_acquire(false)
                    .before_acquire(|connection, meta| {
                        Box::pin(async move {
                            if meta.idle_for < IDLE_BEFORE_PING {
                                return Ok(true);
                            }
                            use sqlx::Connection;
                            Ok(connection.ping().await.is_ok())
                        })
                    })
                    .after_connect(move |connection, _| {
                        Box::pin(postgres::nodelay::disable_nagle(connection, port))
                    })
            };
            let reads = pool(reads).connect_lazy_with(options.clone());
            Ok(Store {
                grouped: std::sync::Arc::new(grouped::GroupedInserts::for_writers(writes)),
                keys: Pool::Postgres(reads.clone()),
                reads: Pool::Postgres(reads),
                writes: Pool::Postgres(pool(writes).connect_lazy_with(options)),
            })
        }
    }

    /// Applies the backend's pending migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.writes {
            Pool::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Pool::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match &self.reads {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// The connections of each pool: (reads, writes).
    pub fn pool_sizes(&self) -> (u32, u32) {
        let size = |pool: &Pool| match pool {
            Pool::Sqlite(p) => p.options().get_max_connections(),
            Pool::Postgres(p) => p.options().get_max_connections(),
        };
        (size(&self.reads), size(&self.writes))
    }

    /// A round trip to the database (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await);
        for pool in [&self.writes, &self.keys] {
            match pool {
                Pool::Sqlite(pool) => pool.close().await,
                Pool::Postgres(pool) => pool.close().await,
            }
        }
    }
}

impl From<StoreError> for crate::error::ApiError {
    /// The generic answers; handlers match first where a conflict has a more
    /// precise code (e.g. `duplicate_staff_id`).
    fn from(error: StoreError) -> Self {
        use crate::error::{ApiError, ErrorCode};
        match error {
            // Every connection stayed in use for the acquire timeout: on
            // SQLite, typically its one writer held by a bulk ingestion.
            StoreError::Unavailable(sqlx::Error::PoolTimedOut) => {
                tracing::warn!("no database connection came free within the acquire timeout");
                ApiError::new(
                    ErrorCode::ServiceUnavailable,
                    "No database connection came free in time (the database is busy, e.g. SQLite's \
                     one writer with a bulk ingestion, or unreachable); retry in a few seconds.",
                )
                .with_header(
                    actix_web::http::header::RETRY_AFTER,
                    crate::error::RETRY_AFTER_SECONDS.to_string(),
                )
            }
            StoreError::Unavailable(e) => ApiError::unavailable("database", e),
            StoreError::Duplicate(_) => ApiError::new(
                ErrorCode::DuplicateName,
                "A resource with this name already exists.",
            ),
            StoreError::Reference(_) => ApiError::new(
                ErrorCode::ResourceInUse,
                "The resource is referenced by others (e.g. a group by its teams or staff).",
            ),
            StoreError::Contended(_) => ApiError::new(
                ErrorCode::ConcurrentWrite,
                "A concurrent request changed the same rows; nothing of this request was written. Retry.",
            )
            .with_header(actix_web::http::header::RETRY_AFTER, "1"),
            StoreError::Other(e) => ApiError::internal(e),
        }
    }
}
