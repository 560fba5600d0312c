//! Idempotency keys in the database (where Redis is not configured).
//!
//! One row per (owner, key). A row with a `lease_token` is a request in
//! progress until `lease_until_ms`; a row with a `status` is a finished
//! request whose answer is replayed until `expires_at_ms`. A lease that ran
//! out (its process died) or an expired answer is taken over by the next
//! request with that key. Times are milliseconds since the epoch on both
//! backends, so that they compare the same way.

use super::{Pool, Store, StoreError};

/// The keys' table in their own SQLite file (PostgreSQL: migration 0009).
pub const SQLITE_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS idempotency_keys (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    lease_token TEXT,
    lease_until_ms INTEGER,
    body_hash TEXT,
    status INTEGER,
    headers TEXT,
    body BLOB,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_expiry ON idempotency_keys (expires_at_ms);";

/// Runs `$body` with `$pool` bound to the keys' pool (either backend).
macro_rules! with_keys {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.keys {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// A key's row as read back.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct IdempotencyRow {
    pub fingerprint: String,
    pub lease_until_ms: Option<i64>,
    pub body_hash: Option<String>,
    pub status: Option<i32>,
    pub headers: Option<String>,
    pub body: Option<Vec<u8>>,
}

impl Store {
    /// Takes the key for a new request (inserting it, or replacing a row
    /// whose lease ran out or whose answer expired): `true` if taken.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_idempotency_key(
        &self,
        owner: &str,
        key: &str,
        fingerprint: &str,
        lease_token: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let taken: Option<(String,)> = with_keys!(self, |pool| {
            sqlx::query_as(
                "INSERT INTO idempotency_keys (owner, key, fingerprint, lease_token, lease_until_ms, expires_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (owner, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
                   lease_token = excluded.lease_token, lease_until_ms = excluded.lease_until_ms, \
                   expires_at_ms = excluded.expires_at_ms, body_hash = NULL, status = NULL, \
                   headers = NULL, body = NULL \
                 WHERE idempotency_keys.expires_at_ms <= $7 \
                    OR (idempotency_keys.status IS NULL AND idempotency_keys.lease_until_ms <= $7) \
                 RETURNING lease_token",
            )
            .bind(owner)
            .bind(key)
            .bind(fingerprint)
            .bind(lease_token)
            .bind(lease_until_ms)
            .bind(expires_at_ms)
            .bind(now_ms)
            .fetch_optional(pool)
            .await?
        });
        Ok(taken.is_some_and(|(token,)| token == lease_token))
    }

    /// The key's row, if any.
    pub async fn idempotency_key(
        &self,
        owner: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRow>, StoreError> {
        Ok(with_keys!(self, |pool| {
            sqlx::query_as(
                "SELECT fingerprint, lease_until_ms, body_hash, status, headers, body \
                 FROM idempotency_keys WHERE owner = $1 AND key = $2",
            )
            .bind(owner)
            .bind(key)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Moves the lease on, if this request still holds it.
    pub async fn renew_idempotency_key(
        &self,
        owner: &str,
        key: &str,
        lease_token: &str,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = with_keys!(self, |pool| {
            sqlx::query(
                "UPDATE idempotency_keys SET lease_until_ms = $4 \
                 WHERE owner = $1 AND key = $2 AND lease_token = $3",
            )
            .bind(owner)
            .bind(key)
            .bind(lease_token)
            .bind(lease_until_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Stores the answer of the request that holds the lease.
    #[allow(clippy::too_many_arguments)]
    pub async fn complete_idempotency_key(
        &self,
        owner: &str,
        key: &str,
        lease_token: &str,
        body_hash: &str,
        status: u16,
        headers: &str,
        body: &[u8],
        expires_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = with_keys!(self, |pool| {
            sqlx::query(
                "UPDATE idempotency_keys SET lease_token = NULL, lease_until_ms = NULL, \
                   body_hash = $4, status = $5, headers = $6, body = $7, expires_at_ms = $8 \
                 WHERE owner = $1 AND key = $2 AND lease_token = $3",
            )
            .bind(owner)
            .bind(key)
            .bind(lease_token)
            .bind(body_hash)
            .bind(i32::from(status))
            .bind(headers)
            .bind(body)
            .bind(expires_at_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Frees the key held by this request (its answer is not kept).
    pub async fn release_idempotency_key(
        &self,
        owner: &str,
        key: &str,
        lease_token: &str,
    ) -> Result<(), StoreError> {
        with_keys!(self, |pool| {
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE owner = $1 AND key = $2 AND lease_token = $3",
            )
            .bind(owner)
            .bind(key)
            .bind(lease_token)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Deletes the answers that expired (and leases long run out).
    pub async fn purge_idempotency_keys(&self, now_ms: i64) -> Result<u64, StoreError> {
        Ok(with_keys!(self, |pool| {
            sqlx::query("DELETE FROM idempotency_keys WHERE expires_at_ms <= $1")
                .bind(now_ms)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
