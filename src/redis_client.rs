//! Redis, used where it is configured (shared caches and revocations), with
//! short time limits and a breaker.
//!
//! Every call is held to `redis_timeout` (connecting, waiting for a pooled
//! connection, and the command itself). A failed or timed-out call opens the
//! breaker for [`BREAKER_OPEN`]: meanwhile no call is tried, and callers go
//! on without Redis at once (the database answers instead), so a Redis that
//! hangs costs each request nothing after the first time-out. The first
//! failure also marks Redis as not trusted: what it holds may lack what was
//! written while it was away, until a caller has written that again and
//! trusts it anew ([`RedisClient::trust`]).

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use deadpool_redis::Pool;
use deadpool_redis::redis::aio::MultiplexedConnection;

/// How long the breaker stays open after a failure.
pub const BREAKER_OPEN: Duration = Duration::from_secs(2);

/// `EVAL` of a Lua script on one key; add its arguments with `.arg(…)`.
/// (Redis keeps the compiled script, cached by its hash.)
pub fn eval(script: &str, key: &str) -> deadpool_redis::redis::Cmd {
    let mut cmd = deadpool_redis::redis::cmd("EVAL");
    cmd.arg(script).arg(1).arg(key);
    cmd
}

/// A Redis pool behind a breaker.
///
/// The pool's connections are multiplexed: one serves any number of
/// concurrent calls, each answered in turn. So a call does not take a
/// connection from the pool, whose check before handing one out (`UNWATCH`
/// and `PING`) cost a round trip per call, three a request; it shares one
/// connection taken once, kept until a call fails.
pub struct RedisClient {
    pool: Pool,
    /// The connection calls share (a clone is a handle to the same one).
    shared: Mutex<Option<MultiplexedConnection>>,
    timeout: Duration,
    /// Until when calls are not tried.
    open_until: Mutex<Option<Instant>>,
    /// A call failed since the last success.
    failed: AtomicBool,
    /// Nothing was missed: no call failed since the last catch-up.
    trusted: AtomicBool,
}

/// Why a Redis call did not happen or failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis is skipped for now (a recent call failed)")]
    BreakerOpen,
    #[error("redis did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("redis: {0}")]
    Failed(String),
}

impl RedisClient {
    /// A pool for `url` whose every call is held to `timeout`.
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let mut config = deadpool_redis::Config::from_url(url);
        let mut pool = deadpool_redis::PoolConfig::new(16);
        pool.timeouts.wait = Some(timeout);
        pool.timeouts.create = Some(timeout);
        pool.timeouts.recycle = Some(timeout);
        config.pool = Some(pool);
        Ok(Self {
            pool: config.create_pool(Some(deadpool_redis::Runtime::Tokio1))?,
            shared: Mutex::new(None),
            timeout,
            open_until: Mutex::new(None),
            failed: AtomicBool::new(false),
            trusted: AtomicBool::new(false),
        })
    }

    /// Runs `work` with a connection, within the time limit; a failure opens
    /// the breaker.
    pub async fn call<T, F, Fut>(&self, work: F) -> Result<T, RedisError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T, deadpool_redis::redis::RedisError>>,
    {
        if self.is_open() {
            return Err(RedisError::BreakerOpen);
        }
        let attempt = async {
            let connection = match self.shared_connection() {
                Some(connection) => connection,
                None => {
                    let pooled = self
                        .pool
                        .get()
                        .await
                        .map_err(|e| RedisError::Failed(e.to_string()))?;
                    let connection = MultiplexedConnection::clone(&pooled);
                    if let Ok(mut shared) = self.shared.lock() {
                        *shared = Some(connection.clone());
                    }
                    connection
                }
            };
            work(connection)
                .await
                .map_err(|e| RedisError::Failed(e.to_string()))
        };
        let result = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::TimedOut(self.timeout)),
        };
        match &result {
            Ok(_) => {
                if self.failed.swap(false, Ordering::AcqRel) {
                    tracing::info!("redis answers again");
                }
            }
            Err(e) => {
                // The next call after the breaker takes a connection the
                // pool has checked (or made anew).
                if let Ok(mut shared) = self.shared.lock() {
                    *shared = None;
                }
                self.trusted.store(false, Ordering::Release);
                if !self.failed.swap(true, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "redis unavailable: going on without it for now");
                }
                if let Ok(mut open) = self.open_until.lock() {
                    *open = Some(Instant::now() + BREAKER_OPEN);
                }
            }
        }
        result
    }

    /// The connection calls share, when there is one.
    fn shared_connection(&self) -> Option<MultiplexedConnection> {
        self.shared.lock().ok().and_then(|shared| shared.clone())
    }

    /// Whether calls are skipped now.
    pub fn is_open(&self) -> bool {
        self.open_until
            .lock()
            .map(|open| open.is_some_and(|until| Instant::now() < until))
            .unwrap_or(false)
    }

    /// Whether the last call failed (Redis down, hung or skipped).
    pub fn is_degraded(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Whether what Redis holds can be relied on: no call failed since the
    /// last [`RedisClient::trust`].
    pub fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// Marks Redis as caught up (what it missed was written again).
    pub fn trust(&self) {
        self.trusted.store(true, Ordering::Release);
    }

    /// One `PING` round trip (readiness), past the breaker: it is how a
    /// readiness probe sees Redis come back.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let attempt = async {
            let mut connection = self
                .pool
                .get()
                .await
                .map_err(|e| RedisError::Failed(e.to_string()))?;
            let _: String = deadpool_redis::redis::cmd("PING")
                .query_async(&mut connection)
                .await
                .map_err(|e| RedisError::Failed(e.to_string()))?;
            Ok(())
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::TimedOut(self.timeout)),
        }
    }
}
