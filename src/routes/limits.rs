//! `GET /v1/limits`: the limits in force for the caller.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{AnyIntegration, Authorized};
use crate::error::ApiError;
use crate::routes::MAX_PAGE_SIZE;
use crate::routes::me::caller_integration;
use crate::settings::RatePolicy;
use crate::startup::AppState;
use crate::store::models::CsvLimits;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(get_limits);
}

/// The limits a request of this integration must keep.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"body_bytes": 67108864, "page_size_max": 1000, "csv": {"max_records": 1000, "max_columns": 103, "max_cell_chars": 1000}, "rate_limit": {"per_second": 100.0, "burst": 200}, "bulk_requests": 4}))]
pub struct Limits {
    /// The largest request body, in bytes (413 `payload_too_large` beyond).
    pub body_bytes: usize,
    /// The largest `limit` of a collection page.
    pub page_size_max: u32,
    /// The CSV uploader's limits for this integration.
    pub csv: CsvLimits,
    /// The rate limit in force for this integration: every request counts
    /// as one, whatever its size (`per_second` 0: no limit). Past it, 429
    /// `rate_limited` with `Retry-After`.
    pub rate_limit: RatePolicy,
    /// Bulk ingestions (NDJSON streams, CSV uploads that write, JSON bodies
    /// of more than 100 cases) this server writes at once, for every caller
    /// together; past it, 503 `server_busy` with `Retry-After`.
    pub bulk_requests: usize,
}

/// Limits in force
///
/// The limits that apply to the calling integration. Every limit error
/// states the limit it hit and the figure it saw.
#[utoipa::path(
    tag = "integration",
    responses((status = 200, description = "The caller's limits", body = Limits)),
    security(
        ("bearer" = ["cases:write"]), ("bearer" = ["cases:read"]), ("bearer" = ["customers:write"]),
        ("bearer" = ["customers:read"]), ("bearer" = ["customers:create"]), ("bearer" = ["imports:write"]),
        ("bearer" = ["imports:read"])
    )
)]
#[get("/limits")]
pub async fn get_limits(
    auth: Authorized<AnyIntegration>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let integration = caller_integration(&state, auth.principal.id).await?;
    Ok(HttpResponse::Ok().json(Limits {
        body_bytes: state.settings.max_body_bytes,
        page_size_max: MAX_PAGE_SIZE,
        csv: integration.csv_limits,
        rate_limit: auth.principal.rate_limit,
        bulk_requests: state.bulk.capacity(),
    }))
}
