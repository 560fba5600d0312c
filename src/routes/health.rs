//! Operational endpoints (no token): liveness, readiness, metrics.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::startup::AppState;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(healthz)
        .service(readyz)
        .service(metrics)
        .service(jwks);
}

/// How long a readiness check waits for a dependency.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The state of one dependency.
#[derive(Debug, Serialize, ToSchema, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    Up,
    Down,
    /// Redis does not answer: the replica serves on without it (caches
    /// and revocations from the database, rate limits per process).
    Degraded,
    NotConfigured,
}

/// What `/readyz` found.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "unavailable", "checks": {"database": "down", "redis": "not_configured"}}))]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: String,
    pub checks: Checks,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    pub database: CheckState,
    pub redis: CheckState,
}

/// Liveness
///
/// Answers 200 while the process is up; touches no dependency.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "The process is up", body = String, content_type = "text/plain", example = "ok"))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

/// Readiness
///
/// 200 when the database answers; 503 naming what is down otherwise. Load
/// balancers should route only to ready replicas. A Redis that does not
/// answer is `degraded`, not down: the replica serves on without it (the
/// answer is still 200, so that a Redis outage does not take every replica
/// out of the load balancer).
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "The database answers (Redis `up`, `degraded` or `not_configured`)", body = Readiness),
        (status = 503, description = "A dependency is down (named in `checks`)", body = Readiness),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = match tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => CheckState::Up,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database down");
            CheckState::Down
        }
        Err(_) => {
            tracing::warn!("readiness: database did not answer in time");
            CheckState::Down
        }
    };
    let redis = match &state.redis {
        None => CheckState::NotConfigured,
        Some(redis) => match redis.ping().await {
            Ok(()) => CheckState::Up,
            Err(e) => {
                tracing::warn!(error = %e, "readiness: redis down, serving without it");
                CheckState::Degraded
            }
        },
    };
    let ready = database == CheckState::Up;
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" }.to_string(),
        checks: Checks { database, redis },
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", crate::error::RETRY_AFTER_SECONDS.to_string()))
            .json(body)
    }
}

/// Metrics
///
/// Prometheus text format: requests by route and status, a latency
/// histogram, rows accepted and rejected by integration and path, and the
/// groups the small case requests were written in.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain; version=0.0.4"))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state
        .metrics
        .observe_case_groups(state.store.grouped_inserts().written());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

/// Public keys (JWKS)
///
/// The public keys tokens are verified with, each with its `kid` (RFC 7638
/// thumbprint), for EdDSA and RS256 deployments; during a key rotation the
/// previous key is listed too. Empty for HS256 (a shared secret is never
/// published).
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "A JWK set", body = Object, example = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", "use": "sig", "alg": "EdDSA"}]})))
)]
#[get("/.well-known/jwks.json")]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(state.jwt.jwks())
}
