//! Rate limits per integration: the generic cell rate algorithm (GCRA, a
//! token bucket kept as one timestamp).
//!
//! A policy is a sustained rate (requests per second) and a burst (how many
//! requests may arrive at once after a quiet spell). Each integration has one
//! *theoretical arrival time* (TAT): a request at `now` is let through if
//! `max(TAT, now) + 1/rate - now <= burst/rate`, and then moves the TAT on by
//! `1/rate`. With Redis configured the TAT lives there and one Lua script
//! reads and moves it atomically, with Redis's own clock, so that every
//! replica shares one bucket per integration; without Redis (or while it is
//! unavailable) each process keeps its own.
//!
//! Every request counts as one, whatever its size: a bulk request is bounded
//! separately, by the number of bulk ingestions that may run at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ids::IntegrationId;
use crate::redis_client::{RedisClient, eval};

pub use crate::settings::RatePolicy;

/// What the limiter decided for one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests that may still be sent at once.
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset: Duration,
    /// When refused: until one request will be let through.
    pub retry_after: Duration,
}

/// GCRA on one TAT (microseconds): the decision and the TAT to store (if
/// the request passes).
fn gcra(tat_us: f64, now_us: f64, policy: RatePolicy) -> (Decision, Option<f64>) {
    let interval = policy.interval_us();
    let tolerance = policy.tolerance_us();
    let tat = tat_us.max(now_us);
    let next = tat + interval;
    let micros = |us: f64| Duration::from_micros(us.max(0.0) as u64);
    if next - now_us > tolerance + 0.5 {
        let decision = Decision {
            allowed: false,
            remaining: 0,
            reset: micros(tat - now_us),
            retry_after: micros(next - tolerance - now_us),
        };
        return (decision, None);
    }
    let remaining = ((tolerance - (next - now_us)) / interval + 1e-9)
        .floor()
        .max(0.0) as u32;
    let decision = Decision {
        allowed: true,
        remaining,
        reset: micros(next - now_us),
        retry_after: Duration::ZERO,
    };
    (decision, Some(next))
}

/// The script run in Redis: the same arithmetic as [`gcra`], on Redis's
/// clock, as one atomic step. Returns {allowed, remaining, reset µs,
/// retry-after µs}.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local nxt = tat + interval
if nxt - now > tolerance + 0.5 then
  return {0, 0, math.floor(tat - now), math.floor(nxt - tolerance - now)}
end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.floor((nxt - now) / 1000) + 1000)
return {1, math.floor((tolerance - (nxt - now)) / interval + 1e-9), math.floor(nxt - now), 0}
"#;

/// The limiter: shared through Redis where configured, else per process.
pub struct RateLimiter {
    redis: Option<Arc<RedisClient>>,
    local: Mutex<HashMap<IntegrationId, f64>>,
}

fn now_us() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as f64)
        .unwrap_or(0.0)
}

impl RateLimiter {
    pub fn new(redis: Option<Arc<RedisClient>>) -> Self {
        Self {
            redis,
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `integration` under `policy`.
    pub async fn check(&self, integration: IntegrationId, policy: RatePolicy) -> Decision {
        if policy.is_unlimited() {
            return Decision {
                allowed: true,
                remaining: policy.burst,
                reset: Duration::ZERO,
                retry_after: Duration::ZERO,
            };
        }
        if let Some(redis) = &self.redis {
            let key = format!("intake:rate:{integration}");
            let (interval, tolerance) = (policy.interval_us(), policy.tolerance_us());
            let answer: Result<(i64, i64, i64, i64), _> = redis
                .call(|mut conn| async move {
                    eval(SCRIPT, &key)
                        .arg(interval)
                        .arg(tolerance)
                        .query_async(&mut conn)
                        .await
                })
                .await;
            match answer {
                Ok((allowed, remaining, reset, retry_after)) => {
                    let micros = |us: i64| Duration::from_micros(us.max(0) as u64);
                    return Decision {
                        allowed: allowed == 1,
                        remaining: remaining.clamp(0, i64::from(u32::MAX)) as u32,
                        reset: micros(reset),
                        retry_after: micros(retry_after),
                    };
                }
                Err(e) => tracing::debug!(error = %e, "rate limit counted in this process"),
            }
        }
        self.check_local(integration, policy, now_us())
    }

    fn check_local(&self, integration: IntegrationId, policy: RatePolicy, now: f64) -> Decision {
        let Ok(mut local) = self.local.lock() else {
            // A poisoned lock: let the request through rather than refuse all.
            return gcra(now, now, policy).0;
        };
        if local.len() > 100_000 {
            // Integrations idle long enough to be full again hold nothing.
            local.retain(|_, tat| *tat > now);
        }
        let tat = local.get(&integration).copied().unwrap_or(now);
        let (decision, next) = gcra(tat, now, policy);
        if let Some(next) = next {
            local.insert(integration, next);
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(per_second: f64, burst: u32) -> RatePolicy {
        RatePolicy { per_second, burst }
    }

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        let limiter = RateLimiter::new(None);
        let id = IntegrationId::new();
        let p = policy(10.0, 5);
        let t0 = 1_000_000_000.0;
        let passed: Vec<bool> = (0..7)
            .map(|_| limiter.check_local(id, p, t0).allowed)
            .collect();
        assert_eq!(passed, [true, true, true, true, true, false, false]);
        let refused = limiter.check_local(id, p, t0);
        assert_eq!(refused.remaining, 0);
        // One interval (100 ms) later, one more passes.
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert!(limiter.check_local(id, p, t0 + 100_000.0).allowed);
        assert!(!limiter.check_local(id, p, t0 + 100_000.0).allowed);
    }

    #[test]
    fn remaining_counts_down_and_reset_is_when_full() {
        let limiter = RateLimiter::new(None);
        let id = IntegrationId::new();
        let p = policy(2.0, 3);
        let t0 = 5_000_000.0;
        let first = limiter.check_local(id, p, t0);
        assert_eq!((first.allowed, first.remaining), (true, 2));
        assert_eq!(first.reset, Duration::from_millis(500));
        let second = limiter.check_local(id, p, t0);
        assert_eq!((second.allowed, second.remaining), (true, 1));
        assert_eq!(second.reset, Duration::from_secs(1));
        // Two seconds later the bucket is full again.
        let later = limiter.check_local(id, p, t0 + 2_000_000.0);
        assert_eq!(later.remaining, 2);
    }

    #[test]
    fn integrations_have_their_own_buckets_and_zero_is_unlimited() {
        let limiter = RateLimiter::new(None);
        let (a, b) = (IntegrationId::new(), IntegrationId::new());
        let p = policy(1.0, 1);
        assert!(limiter.check_local(a, p, 0.0).allowed);
        assert!(!limiter.check_local(a, p, 0.0).allowed);
        assert!(limiter.check_local(b, p, 0.0).allowed);
        assert!(policy(0.0, 1).is_unlimited());
        assert_eq!(policy(100.0, 200).window_seconds(), 2);
    }
}
