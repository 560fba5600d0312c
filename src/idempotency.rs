//! Idempotency keys: where a request's key, fingerprint and answer are kept.
//!
//! A key belongs to one caller (an integration, or the admin). A request
//! that brings a key first *claims* it, with the fingerprint of its method,
//! path and query, and a lease: a random token and a time until which the
//! key is its own. While it runs, the lease is renewed; if its process dies
//! the lease runs out and the key is free again (the request's own
//! transaction was rolled back with the process). When it ends, its answer
//! and the hash of its body are stored for `idempotency_ttl` and replayed to
//! any later request with the same key, method, path, query and body.
//!
//! Kept in Redis where it is configured (one hash per key, each step one
//! atomic script; the lease is the key's expiry), else in the database.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::redis_client::{RedisClient, RedisError, eval};
use crate::store::{Store, StoreError};

/// The longest key accepted.
pub const MAX_KEY_CHARS: usize = 255;

/// A stored answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    /// The headers replayed (content type, location, …).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a key holds when a request comes with it.
#[derive(Debug)]
pub enum Claim {
    /// The key is this request's now.
    Taken(Lease),
    /// Another request with this key is still running.
    Running {
        fingerprint: String,
        retry_after: Duration,
    },
    /// A request with this key finished: its answer.
    Done {
        fingerprint: String,
        body_hash: String,
        answer: StoredAnswer,
    },
}

/// A request's hold on its key.
#[derive(Clone, Debug)]
pub struct Lease {
    pub owner: String,
    pub key: String,
    pub token: String,
}

/// Why the keys could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Redis(#[from] RedisError),
}

enum Backend {
    Redis(Arc<RedisClient>),
    Database(Store),
}

/// The idempotency keys of every caller.
pub struct IdempotencyKeys {
    backend: Backend,
    ttl: Duration,
    lease: Duration,
}

/// Takes the key if nobody holds it; else answers what it holds:
/// {taken, pttl, fingerprint, lease, body hash, status, headers, body}.
const CLAIM: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'f', ARGV[1], 'l', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, 0}
end
local v = redis.call('HMGET', KEYS[1], 'f', 'l', 'h', 's', 'H', 'b')
return {0, redis.call('PTTL', KEYS[1]), v[1], v[2], v[3], v[4], v[5], v[6]}
"#;

const RENEW: &str = r#"
if redis.call('HGET', KEYS[1], 'l') == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

const COMPLETE: &str = r#"
if redis.call('HGET', KEYS[1], 'l') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'l')
  redis.call('HSET', KEYS[1], 'h', ARGV[2], 's', ARGV[3], 'H', ARGV[4], 'b', ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  return 1
end
return 0
"#;

const RELEASE: &str = r#"
if redis.call('HGET', KEYS[1], 'l') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// The answer of [`CLAIM`] when the key is held.
type Held = (
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u16>,
    Option<String>,
    Option<Vec<u8>>,
);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Headers stored as JSON pairs.
#[derive(Serialize, Deserialize)]
struct Headers(Vec<(String, String)>);

fn decode_headers(json: Option<&str>) -> Vec<(String, String)> {
    json.and_then(|json| serde_json::from_str::<Headers>(json).ok())
        .map(|h| h.0)
        .unwrap_or_default()
}

impl IdempotencyKeys {
    /// Keys in Redis if `redis` is given, else in the database.
    pub fn new(
        store: Store,
        redis: Option<Arc<RedisClient>>,
        ttl: Duration,
        lease: Duration,
    ) -> Self {
        Self {
            backend: match redis {
                Some(redis) => Backend::Redis(redis),
                None => Backend::Database(store),
            },
            ttl,
            lease,
        }
    }

    /// How long a lease lasts without renewal.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    fn redis_key(owner: &str, key: &str) -> String {
        format!("intake:idempotency:{owner}:{key}")
    }

    /// Claims `key` of `owner` for a request with this fingerprint.
    pub async fn claim(
        &self,
        owner: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<Claim, KeysError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let lease = Lease {
            owner: owner.to_string(),
            key: key.to_string(),
            token: token.clone(),
        };
        match &self.backend {
            Backend::Redis(redis) => {
                let redis_key = Self::redis_key(owner, key);
                let lease_ms = self.lease.as_millis() as u64;
                let answer: Vec<deadpool_redis::redis::Value> = redis
                    .call(|mut conn| async move {
                        eval(CLAIM, &redis_key)
                            .arg(fingerprint)
                            .arg(&token)
                            .arg(lease_ms)
                            .query_async(&mut conn)
                            .await
                    })
                    .await?;
                if answer.len() == 2 {
                    return Ok(Claim::Taken(lease));
                }
                let held: Held = deadpool_redis::redis::FromRedisValue::from_redis_value(
                    deadpool_redis::redis::Value::Array(answer),
                )
                .map_err(|e| RedisError::Failed(e.to_string()))?;
                let (_, pttl, fingerprint, running, body_hash, status, headers, body) = held;
                Ok(match (running, status) {
                    (None, Some(status)) => Claim::Done {
                        fingerprint: fingerprint.unwrap_or_default(),
                        body_hash: body_hash.unwrap_or_default(),
                        answer: StoredAnswer {
                            status,
                            headers: decode_headers(headers.as_deref()),
                            body: body.unwrap_or_default(),
                        },
                    },
                    _ => Claim::Running {
                        fingerprint: fingerprint.unwrap_or_default(),
                        retry_after: Duration::from_millis(pttl.max(0) as u64),
                    },
                })
            }
            Backend::Database(store) => {
                // A row may vanish or run out between the insert and the
                // read: then the claim is tried again.
                for _ in 0..3 {
                    let now = now_ms();
                    let taken = store
                        .claim_idempotency_key(
                            owner,
                            key,
                            fingerprint,
                            &token,
                            now,
                            now + self.lease.as_millis() as i64,
                            now + self.ttl.as_millis() as i64,
                        )
                        .await?;
                    if taken {
                        return Ok(Claim::Taken(lease));
                    }
                    let Some(row) = store.idempotency_key(owner, key).await? else {
                        continue;
                    };
                    match (row.status, row.lease_until_ms) {
                        (Some(status), _) => {
                            return Ok(Claim::Done {
                                fingerprint: row.fingerprint,
                                body_hash: row.body_hash.unwrap_or_default(),
                                answer: StoredAnswer {
                                    status: status as u16,
                                    headers: decode_headers(row.headers.as_deref()),
                                    body: row.body.unwrap_or_default(),
                                },
                            });
                        }
                        (None, Some(until)) if until > now => {
                            return Ok(Claim::Running {
                                fingerprint: row.fingerprint,
                                retry_after: Duration::from_millis((until - now) as u64),
                            });
                        }
                        _ => continue,
                    }
                }
                Ok(Claim::Running {
                    fingerprint: fingerprint.to_string(),
                    retry_after: Duration::from_secs(1),
                })
            }
        }
    }

    /// Renews the lease: `false` if the request no longer holds its key.
    pub async fn renew(&self, lease: &Lease) -> Result<bool, KeysError> {
        match &self.backend {
            Backend::Redis(redis) => {
                let redis_key = Self::redis_key(&lease.owner, &lease.key);
                let lease_ms = self.lease.as_millis() as u64;
                let renewed: i64 = redis
                    .call(|mut conn| async move {
                        eval(RENEW, &redis_key)
                            .arg(&lease.token)
                            .arg(lease_ms)
                            .query_async(&mut conn)
                            .await
                    })
                    .await?;
                Ok(renewed == 1)
            }
            Backend::Database(store) => Ok(store
                .renew_idempotency_key(
                    &lease.owner,
                    &lease.key,
                    &lease.token,
                    now_ms() + self.lease.as_millis() as i64,
                )
                .await?),
        }
    }

    /// Stores the answer of the request holding `lease`.
    pub async fn complete(
        &self,
        lease: &Lease,
        body_hash: &str,
        answer: &StoredAnswer,
    ) -> Result<bool, KeysError> {
        let headers = serde_json::to_string(&Headers(answer.headers.clone()))
            .unwrap_or_else(|_| "[]".to_string());
        match &self.backend {
            Backend::Redis(redis) => {
                let redis_key = Self::redis_key(&lease.owner, &lease.key);
                let ttl_ms = self.ttl.as_millis() as u64;
                let done: i64 = redis
                    .call(|mut conn| async move {
                        eval(COMPLETE, &redis_key)
                            .arg(&lease.token)
                            .arg(body_hash)
                            .arg(answer.status)
                            .arg(headers)
                            .arg(answer.body.as_slice())
                            .arg(ttl_ms)
                            .query_async(&mut conn)
                            .await
                    })
                    .await?;
                Ok(done == 1)
            }
            Backend::Database(store) => Ok(store
                .complete_idempotency_key(
                    &lease.owner,
                    &lease.key,
                    &lease.token,
                    body_hash,
                    answer.status,
                    &headers,
                    &answer.body,
                    now_ms() + self.ttl.as_millis() as i64,
                )
                .await?),
        }
    }

    /// Frees the key held by `lease` (its answer is not kept).
    pub async fn release(&self, lease: &Lease) -> Result<(), KeysError> {
        match &self.backend {
            Backend::Redis(redis) => {
                let redis_key = Self::redis_key(&lease.owner, &lease.key);
                let _: i64 = redis
                    .call(|mut conn| async move {
                        eval(RELEASE, &redis_key)
                            .arg(&lease.token)
                            .query_async(&mut conn)
                            .await
                    })
                    .await?;
                Ok(())
            }
            Backend::Database(store) => Ok(store
                .release_idempotency_key(&lease.owner, &lease.key, &lease.token)
                .await?),
        }
    }

    /// Deletes expired answers from the database (Redis expires its own).
    pub async fn purge(&self) -> Result<u64, KeysError> {
        match &self.backend {
            Backend::Redis(_) => Ok(0),
            Backend::Database(store) => Ok(store.purge_idempotency_keys(now_ms()).await?),
        }
    }
}

/// Whether `key` is an acceptable key: 1 to 255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_CHARS && key.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert!(valid_key("8e03978e-40d5-43e8-bc93-6894a57f9324"));
        assert!(valid_key(&"k".repeat(255)));
        assert!(!valid_key(""));
        assert!(!valid_key(&"k".repeat(256)));
        assert!(!valid_key("two words"));
        assert!(!valid_key("tab\tkey"));
        assert!(!valid_key("clé"));
    }

    #[test]
    fn headers_round_trip_and_bad_json_is_none() {
        let json = serde_json::to_string(&Headers(vec![("content-type".into(), "a/b".into())]))
            .expect("json");
        assert_eq!(
            decode_headers(Some(&json)),
            vec![("content-type".to_string(), "a/b".to_string())]
        );
        assert!(decode_headers(Some("nope")).is_empty());
        assert!(decode_headers(None).is_empty());
    }
}
