//! Who may see what: the integration behind a token (enabled? which
//! groups?) and whether a token was revoked.
//!
//! The database is the source of truth; in front of it sits a cache:
//! - with Redis (`INTAKE_REDIS_URL`): every replica reads the same entries,
//!   and a change (PATCH, DELETE, revocation) removes the entry at once, so
//!   every replica sees it on its next request;
//! - without Redis: an in-process cache whose entries live
//!   [`LOCAL_TTL`], dropped at once by the process that made the change.
//!
//! A Redis outage degrades to the database (and is logged).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use deadpool_redis::redis::AsyncCommands;

use crate::ids::{IntegrationId, TokenId};
use crate::redis_client::{RedisClient, RedisError};
use crate::store::{Store, StoreError};

/// How long this process trusts what it cached (without Redis).
pub const LOCAL_TTL: Duration = Duration::from_secs(3);
/// How long a Redis entry lives (changes delete it sooner).
pub const REDIS_TTL_SECONDS: u64 = 60;

const REVOKED_KEY: &str = "intake:revoked_jtis";
/// The configured category names (JSON), dropped on every change.
const CATEGORIES_KEY: &str = "intake:categories";
/// The generation of the staff directory: a random number, dropped on
/// every change to staff (the next reader sets a new one), so that what a
/// replica cached under the old one is no longer used.
const STAFF_GENERATION_KEY: &str = "intake:staff:generation";
/// Present while [`REVOKED_KEY`] holds every revocation.
const REVOKED_COMPLETE_KEY: &str = "intake:revoked_jtis:complete";

fn integration_key(id: IntegrationId) -> String {
    format!("intake:integration:{id}")
}

pub use crate::store::integrations::IntegrationAccess;

/// What [`AccessControl::check`] found.
#[derive(Clone, Debug)]
pub struct Checked {
    pub revoked: bool,
    pub access: Option<IntegrationAccess>,
    pub staff_generation: Option<u64>,
}

pub struct AccessControl {
    store: Store,
    redis: Option<Arc<RedisClient>>,
    local: Mutex<HashMap<IntegrationId, (Instant, Option<IntegrationAccess>)>>,
    /// Without Redis: every revoked, unexpired jti (loaded at start).
    revoked: RwLock<HashSet<TokenId>>,
    /// Without Redis: the configured categories, read when.
    categories: Mutex<Option<(Instant, Arc<Vec<String>>)>>,
    /// Without Redis: the staff directory's generation (see
    /// [`STAFF_GENERATION_KEY`]), changed by this process.
    staff_generation: std::sync::atomic::AtomicU64,
    /// Held by the one request that catches Redis up after an outage.
    catching_up: tokio::sync::Mutex<()>,
    /// When this process last wrote a token's `last_used_at`.
    touched: Mutex<HashMap<TokenId, Instant>>,
}

/// How often a token's `last_used_at` is written (at most).
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

impl AccessControl {
    /// Loads the revoked tokens into the revocation set (Redis or local).
    pub async fn load(store: Store, redis: Option<Arc<RedisClient>>) -> anyhow::Result<Self> {
        let revoked: HashSet<TokenId> = store.revoked_jtis().await?.into_iter().collect();
        let control = Self {
            store,
            redis,
            local: Mutex::new(HashMap::new()),
            revoked: RwLock::new(revoked.clone()),
            categories: Mutex::new(None),
            staff_generation: std::sync::atomic::AtomicU64::new(rand::random()),
            catching_up: tokio::sync::Mutex::new(()),
            touched: Mutex::new(HashMap::new()),
        };
        if let Some(redis) = &control.redis {
            match fill_redis_set(redis, &revoked).await {
                Ok(()) => redis.trust(),
                Err(e) => {
                    tracing::warn!(error = %e, "redis unavailable: revocations are checked in the database")
                }
            }
        }
        Ok(control)
    }

    /// Catches Redis up where it is not trusted: after an outage (or at
    /// start), what any replica wrote to the database while it was away
    /// reaches it first — every revocation (the set is filled anew from the
    /// database), and every cached entry (integrations' access, categories,
    /// the staff directory's generation) is dropped, to be read anew. One
    /// caller catches up; the others answer from the database meanwhile.
    async fn trusted(&self, redis: &RedisClient) -> Result<bool, StoreError> {
        if redis.is_trusted() {
            return Ok(true);
        }
        let Ok(_catching_up) = self.catching_up.try_lock() else {
            return Ok(false);
        };
        if redis.is_trusted() {
            return Ok(true);
        }
        tracing::info!("redis: writing the revocations and changes it may have missed");
        let revoked: HashSet<TokenId> = self.store.revoked_jtis().await?.into_iter().collect();
        let refilled = fill_redis_set(redis, &revoked).await;
        let dropped = drop_cached(redis).await;
        match refilled.and(dropped) {
            Ok(()) => {
                redis.trust();
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(error = %e, "redis catch-up failed");
                Ok(false)
            }
        }
    }

    /// The integration's access, or `None` if it does not exist (or was deleted).
    pub async fn integration(
        &self,
        id: IntegrationId,
    ) -> Result<Option<IntegrationAccess>, StoreError> {
        if let Some(redis) = &self.redis {
            let key = integration_key(id);
            let cached: Result<Option<String>, _> = redis
                .call(|mut conn| async move { conn.get(key).await })
                .await;
            if cached.is_ok() && !redis.is_trusted() {
                // Redis answers again after an outage, but what it holds
                // may predate changes made meanwhile: it is caught up
                // first, and this answer comes from the database.
                self.trusted(redis).await?;
                return self.store.integration_access(id).await;
            }
            match cached {
                Ok(Some(json)) => {
                    if let Ok(access) = serde_json::from_str::<Option<IntegrationAccess>>(&json) {
                        return Ok(access);
                    }
                }
                Ok(None) => {
                    let access = self.store.integration_access(id).await?;
                    if let Ok(json) = serde_json::to_string(&access) {
                        let key = integration_key(id);
                        let stored = redis
                            .call(|mut conn| async move {
                                conn.set_ex::<_, _, ()>(key, json, REDIS_TTL_SECONDS).await
                            })
                            .await;
                        if let Err(e) = stored {
                            tracing::debug!(error = %e, "integration access not cached");
                        }
                    }
                    return Ok(access);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "integration access read from the database");
                    return self.store.integration_access(id).await;
                }
            }
        }
        if let Ok(local) = self.local.lock()
            && let Some((at, access)) = local.get(&id)
            && at.elapsed() < LOCAL_TTL
        {
            return Ok(access.clone());
        }
        let access = self.store.integration_access(id).await?;
        if let Ok(mut local) = self.local.lock() {
            local.insert(id, (Instant::now(), access.clone()));
        }
        Ok(access)
    }

    /// Forgets what is cached of an integration (after a change to it,
    /// already written to the database).
    pub async fn invalidate(&self, id: IntegrationId) {
        if let Ok(mut local) = self.local.lock() {
            local.remove(&id);
        }
        if let Some(redis) = &self.redis {
            let key = integration_key(id);
            let result = redis
                .call(|mut conn| async move { conn.del::<_, ()>(key).await })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, integration_id = %id, "redis unavailable: the cached access is dropped when it is back");
            }
        }
    }

    /// What a request's token check needs, in one round trip to Redis
    /// where it is configured: whether the token was revoked, the
    /// integration's access (`None`: it does not exist or was deleted), and
    /// the staff directory's generation (`None`: unknown now, so nothing
    /// cached of the staff may be used).
    pub async fn check(&self, jti: TokenId, id: IntegrationId) -> Result<Checked, StoreError> {
        use std::sync::atomic::Ordering;
        let Some(redis) = &self.redis else {
            return Ok(Checked {
                revoked: self.is_revoked(jti).await?,
                access: self.integration(id).await?,
                staff_generation: Some(self.staff_generation.load(Ordering::Acquire)),
            });
        };
        let (member, key) = (jti.to_string(), integration_key(id));
        let result: Result<(bool, bool, Option<String>, Option<u64>), _> = redis
            .call(|mut conn| async move {
                deadpool_redis::redis::pipe()
                    .sismember(REVOKED_KEY, member)
                    .exists(REVOKED_COMPLETE_KEY)
                    .get(key)
                    .get(STAFF_GENERATION_KEY)
                    .query_async(&mut conn)
                    .await
            })
            .await;
        let from_database = async {
            Ok::<_, StoreError>(Checked {
                revoked: self.store.is_token_revoked(jti).await?,
                access: self.store.integration_access(id).await?,
                staff_generation: None,
            })
        };
        let (revoked, complete, cached, generation) = match result {
            Ok(answer) if redis.is_trusted() => answer,
            Ok(_) => {
                // Redis answers again after an outage, but what it holds may
                // predate changes made meanwhile: it is caught up first, and
                // this answer comes from the database.
                self.trusted(redis).await?;
                return from_database.await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "token checked in the database");
                return from_database.await;
            }
        };
        let revoked = if complete {
            revoked
        } else {
            self.is_revoked(jti).await?
        };
        let access = match cached
            .as_deref()
            .and_then(|json| serde_json::from_str::<Option<IntegrationAccess>>(json).ok())
        {
            Some(access) => access,
            None => self.integration(id).await?,
        };
        if generation.is_none() {
            // Dropped by a change (or never set): a new one for the next
            // requests; this one reads the staff from the database.
            let fresh: u64 = rand::random();
            let set = redis
                .call(|mut conn| async move {
                    deadpool_redis::redis::cmd("SET")
                        .arg(STAFF_GENERATION_KEY)
                        .arg(fresh)
                        .arg("NX")
                        .query_async::<()>(&mut conn)
                        .await
                })
                .await;
            if let Err(e) = set {
                tracing::debug!(error = %e, "staff generation not set");
            }
        }
        Ok(Checked {
            revoked,
            access,
            staff_generation: generation,
        })
    }

    /// Staff were created, changed or deleted (already written): what any
    /// replica cached of the staff is not used again.
    pub async fn staff_changed(&self) {
        self.staff_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if let Some(redis) = &self.redis {
            let result = redis
                .call(|mut conn| async move { conn.del::<_, ()>(STAFF_GENERATION_KEY).await })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "redis unavailable: the staff generation changes when it is back");
            }
        }
    }

    /// The configured category names (what a case's `category` may be),
    /// cached like an integration's access: in Redis where configured
    /// (dropped on every change, so replicas agree), else in this process
    /// for [`LOCAL_TTL`] (dropped at once by the process that changed them).
    pub async fn categories(&self) -> Result<Arc<Vec<String>>, StoreError> {
        if let Some(redis) = &self.redis {
            let cached: Result<Option<String>, _> = redis
                .call(|mut conn| async move { conn.get(CATEGORIES_KEY).await })
                .await;
            if cached.is_ok() && !redis.is_trusted() {
                self.trusted(redis).await?;
                return Ok(Arc::new(self.store.category_names().await?));
            }
            match cached {
                Ok(Some(json)) => {
                    if let Ok(names) = serde_json::from_str::<Vec<String>>(&json) {
                        return Ok(Arc::new(names));
                    }
                }
                Ok(None) => {
                    let names = self.store.category_names().await?;
                    if let Ok(json) = serde_json::to_string(&names) {
                        let stored = redis
                            .call(|mut conn| async move {
                                conn.set_ex::<_, _, ()>(CATEGORIES_KEY, json, REDIS_TTL_SECONDS)
                                    .await
                            })
                            .await;
                        if let Err(e) = stored {
                            tracing::debug!(error = %e, "categories not cached");
                        }
                    }
                    return Ok(Arc::new(names));
                }
                Err(_) => {}
            }
            return Ok(Arc::new(self.store.category_names().await?));
        }
        if let Ok(local) = self.categories.lock()
            && let Some((at, names)) = local.as_ref()
            && at.elapsed() < LOCAL_TTL
        {
            return Ok(names.clone());
        }
        let names = Arc::new(self.store.category_names().await?);
        if let Ok(mut local) = self.categories.lock() {
            *local = Some((Instant::now(), names.clone()));
        }
        Ok(names)
    }

    /// Forgets the cached categories (after a change, already written).
    pub async fn invalidate_categories(&self) {
        if let Ok(mut local) = self.categories.lock() {
            *local = None;
        }
        if let Some(redis) = &self.redis {
            let result = redis
                .call(|mut conn| async move { conn.del::<_, ()>(CATEGORIES_KEY).await })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "redis unavailable: the cached categories are dropped when it is back");
            }
        }
    }

    pub async fn is_revoked(&self, jti: TokenId) -> Result<bool, StoreError> {
        if let Some(redis) = &self.redis {
            let member = jti.to_string();
            let result: Result<(bool, bool), _> = redis
                .call(|mut conn| async move {
                    deadpool_redis::redis::pipe()
                        .sismember(REVOKED_KEY, member)
                        .exists(REVOKED_COMPLETE_KEY)
                        .query_async(&mut conn)
                        .await
                })
                .await;
            if result.is_ok() && !redis.is_trusted() {
                // Redis answers again after an outage, but its set may
                // lack revocations made meanwhile: it is caught up first,
                // and this answer comes from the database.
                self.trusted(redis).await?;
                return self.store.is_token_revoked(jti).await;
            }
            return match result {
                Ok((revoked, true)) => Ok(revoked),
                Ok((_, false)) => {
                    tracing::warn!(
                        "redis lost the revocation set: filling it again from the database"
                    );
                    let revoked: HashSet<TokenId> =
                        self.store.revoked_jtis().await?.into_iter().collect();
                    if let Err(e) = fill_redis_set(redis, &revoked).await {
                        tracing::warn!(error = %e, "refilling the revocation set failed");
                    }
                    Ok(revoked.contains(&jti))
                }
                Err(e) => {
                    tracing::debug!(error = %e, "revocation checked in the database");
                    self.store.is_token_revoked(jti).await
                }
            };
        }
        Ok(self
            .revoked
            .read()
            .map(|set| set.contains(&jti))
            .unwrap_or(true))
    }

    /// Records a use of the token in `last_used_at`, at most once per
    /// [`TOUCH_INTERVAL`] per process, off the request's path.
    pub fn touch(&self, jti: TokenId) {
        let due = match self.touched.lock() {
            Ok(mut touched) => {
                let due = touched
                    .get(&jti)
                    .is_none_or(|at| at.elapsed() >= TOUCH_INTERVAL);
                if due {
                    touched.insert(jti, Instant::now());
                }
                due
            }
            Err(_) => false,
        };
        if due {
            let store = self.store.clone();
            actix_web::rt::spawn(async move {
                if let Err(e) = store.touch_token(jti, crate::store::now()).await {
                    tracing::warn!(error = %e, %jti, "recording a token's last use failed");
                }
            });
        }
    }

    /// Records a revocation (already written to the database). Where Redis
    /// does not take it now, it gets it with the whole set when it is back.
    pub async fn revoke(&self, jti: TokenId) {
        if let Ok(mut set) = self.revoked.write() {
            set.insert(jti);
        }
        if let Some(redis) = &self.redis {
            let member = jti.to_string();
            let result = redis
                .call(|mut conn| async move { conn.sadd::<_, _, ()>(REVOKED_KEY, member).await })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "redis unavailable: the revocation reaches it when it is back");
            }
        }
    }
}

/// Drops every cached entry: the integrations' access, the categories and
/// the staff directory's generation (one SCAN of the integration keys).
async fn drop_cached(redis: &RedisClient) -> Result<(), RedisError> {
    redis
        .call(|mut conn| async move {
            conn.del::<_, ()>(&[CATEGORIES_KEY, STAFF_GENERATION_KEY])
                .await
        })
        .await?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis
            .call(|mut conn| async move {
                deadpool_redis::redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg("intake:integration:*")
                    .arg("COUNT")
                    .arg(1_000)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        if !keys.is_empty() {
            redis
                .call(|mut conn| async move { conn.del::<_, ()>(keys).await })
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Copies the revocations into Redis and marks the set as complete. A
/// Redis that lost its data (restart, flush) has no marker: the set is
/// filled again on the next check.
async fn fill_redis_set(redis: &RedisClient, revoked: &HashSet<TokenId>) -> Result<(), RedisError> {
    let members: Vec<String> = revoked.iter().map(TokenId::to_string).collect();
    redis
        .call(|mut conn| async move {
            let mut pipe = deadpool_redis::redis::pipe();
            pipe.atomic();
            if !members.is_empty() {
                pipe.sadd(REVOKED_KEY, members).ignore();
            }
            pipe.set(REVOKED_COMPLETE_KEY, 1).ignore();
            pipe.query_async::<()>(&mut conn).await
        })
        .await
}
