//! Storage: one interface, [`Store`], with a SQLite and a PostgreSQL backend
//! chosen by the database URL's scheme.
//!
//! Queries that both databases read the same way are written once and run on
//! either pool through [`with_pool!`]; where the backends differ (bulk writes:
//! COPY on PostgreSQL, batched prepared inserts on SQLite) a method matches on
//! the backend and each arm lives in its own module. Each backend has its own
//! migrations folder, embedded in the binary and run at start-up.

mod admin;
pub mod cases;
pub mod customers;
mod integrations;
pub mod models;
mod nodelay;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

use crate::settings::Settings;

/// The storage interface. Cloning is cheap (a pool handle).
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store holds. The
/// body is compiled once per backend, so it must be valid SQL for both.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
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
pub fn group_clause(column: &str, groups: Option<&[Uuid]>, first: usize) -> String {
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

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write.
    #[error("unique constraint violated: {0}")]
    Duplicate(String),
    /// A foreign key refused the write (a missing or still-referenced row).
    #[error("foreign key violated: {0}")]
    Reference(String),
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
                std::fs::create_dir_all(parent)?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(settings.database_max_connections)
                .acquire_timeout(settings.database_timeout)
                .connect_with(options)
                .await?;
            Ok(Store::Sqlite(pool))
        } else {
            let options = PgConnectOptions::from_str(url)?.application_name("intake");
            let port = options.get_port();
            // Lazy: the server starts (and answers /readyz 503) while the
            // database is down, and reconnects when it comes back.
            let pool = PgPoolOptions::new()
                .max_connections(settings.database_max_connections)
                .acquire_timeout(settings.database_timeout)
                .after_connect(move |connection, _| {
                    Box::pin(nodelay::disable_nagle(connection, port))
                })
                .connect_lazy_with(options);
            Ok(Store::Postgres(pool))
        }
    }

    /// Applies the backend's pending migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Store::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Store::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// A round trip to the database (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

impl From<StoreError> for crate::error::ApiError {
    /// The generic answers; handlers match first where a conflict has a more
    /// precise code (e.g. `duplicate_staff_id`).
    fn from(error: StoreError) -> Self {
        use crate::error::{ApiError, ErrorCode};
        match error {
            StoreError::Unavailable(e) => ApiError::unavailable("database", e),
            StoreError::Duplicate(_) => ApiError::new(
                ErrorCode::DuplicateName,
                "A resource with this name already exists.",
            ),
            StoreError::Reference(_) => ApiError::new(
                ErrorCode::ResourceInUse,
                "The resource is referenced by others (e.g. a group by its teams or staff).",
            ),
            StoreError::Other(e) => ApiError::internal(e),
        }
    }
}
