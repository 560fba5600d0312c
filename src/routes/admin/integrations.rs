//! `/v1/admin/integrations`: the callers of the API, their groups, their
//! CSV limits and their tokens.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::teams::unknown_group;
use super::{check_references, validate};
use crate::auth::tokens::{
    DEFAULT_TTL_SECONDS, check_ttl, mint_integration_token, parse_integration_scopes,
};
use crate::auth::{AdminScope, Authorized};
use crate::domain::{free_text, not_blank};
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::ids::{GroupId, IntegrationId, TokenId};
use crate::routes::{Page, PageQuery};
use crate::settings::RatePolicy;
use crate::startup::AppState;
use crate::store::models::{CsvLimits, Integration, IntegrationFields, TokenInfo};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_integration)
        .service(list_integrations)
        .service(get_integration)
        .service(update_integration)
        .service(delete_integration)
        .service(create_token)
        .service(list_tokens)
        .service(revoke_token);
}

/// CSV limits to set; absent ones keep their value (or the default).
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct CsvLimitsInput {
    /// 1 to 1,000,000 (default 1,000).
    #[validate(range(min = 1, max = 1_000_000))]
    #[schema(minimum = 1, maximum = 1_000_000)]
    #[serde(default, deserialize_with = "crate::domain::optional_whole_number")]
    pub max_records: Option<u32>,
    /// 4 to 10,000 (default 103: the three mandatory columns and 100 of data).
    #[validate(range(min = 4, max = 10_000))]
    #[schema(minimum = 4, maximum = 10_000)]
    #[serde(default, deserialize_with = "crate::domain::optional_whole_number")]
    pub max_columns: Option<u32>,
    /// 1 to 1,000,000 (default 1,000).
    #[validate(range(min = 1, max = 1_000_000))]
    #[schema(minimum = 1, maximum = 1_000_000)]
    #[serde(default, deserialize_with = "crate::domain::optional_whole_number")]
    pub max_cell_chars: Option<u32>,
}

impl CsvLimitsInput {
    fn apply(&self, base: CsvLimits) -> CsvLimits {
        CsvLimits {
            max_records: self.max_records.unwrap_or(base.max_records),
            max_columns: self.max_columns.unwrap_or(base.max_columns),
            max_cell_chars: self.max_cell_chars.unwrap_or(base.max_cell_chars),
        }
    }
}

/// A rate limit to set for one integration (instead of the server's default).
#[derive(Clone, Copy, Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"per_second": 20.0, "burst": 40}))]
pub struct RateLimitInput {
    /// Requests per second, sustained: 0 (no limit) to 1,000,000.
    #[validate(range(min = 0.0, max = 1_000_000.0))]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub per_second: f64,
    /// Requests that may arrive at once: 1 to 1,000,000.
    #[validate(range(min = 1, max = 1_000_000))]
    #[schema(minimum = 1, maximum = 1_000_000)]
    #[serde(deserialize_with = "crate::domain::whole_number")]
    pub burst: u32,
}

impl RateLimitInput {
    fn policy(self) -> RatePolicy {
        RatePolicy {
            per_second: self.per_second,
            burst: self.burst,
        }
    }
}

/// `Some(None)` for an explicit `null`, `None` for an absent field.
fn null_or_value<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Some(Option::deserialize(deserializer)?))
}

/// A new integration.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"label": "CRM sync", "description": "Nightly push from the CRM", "groups": ["019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa"]}))]
pub struct CreateIntegration {
    #[validate(length(max = 200), custom(function = "not_blank"))]
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        max_length = 200
    )]
    pub label: String,
    #[validate(length(max = 2000), custom(function = "free_text"))]
    pub description: Option<String>,
    /// One or more groups whose data the integration sees and writes.
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub groups: Vec<GroupId>,
    /// Default true.
    pub enabled: Option<bool>,
    #[validate(nested)]
    pub csv_limits: Option<CsvLimitsInput>,
    /// Its own rate limit; absent: the server's default.
    #[validate(nested)]
    pub rate_limit: Option<RateLimitInput>,
}

/// Changes to an integration; absent fields stay. `groups` replaces the set.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": false}))]
pub struct UpdateIntegration {
    #[validate(length(max = 200), custom(function = "not_blank"))]
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        max_length = 200
    )]
    pub label: Option<String>,
    #[validate(length(max = 2000), custom(function = "free_text"))]
    pub description: Option<String>,
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    pub groups: Option<Vec<GroupId>>,
    pub enabled: Option<bool>,
    #[validate(nested)]
    pub csv_limits: Option<CsvLimitsInput>,
    /// Its own rate limit; `null` returns it to the server's default.
    #[serde(default, deserialize_with = "null_or_value")]
    #[schema(value_type = Option<RateLimitInput>, nullable)]
    #[validate(nested)]
    pub rate_limit: Option<Option<RateLimitInput>>,
}

/// A token to mint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scopes": ["cases:write"], "ttl_seconds": 86400}))]
pub struct CreateToken {
    /// Any of `cases:write`, `cases:read`, `customers:write`, `customers:read`,
    /// `customers:create`, `imports:write`, `imports:read`.
    pub scopes: Vec<String>,
    /// Lifetime, 60 s to one year (default 30 days).
    #[schema(minimum = 60, maximum = 31_536_000)]
    #[serde(default, deserialize_with = "crate::domain::optional_whole_number")]
    pub ttl_seconds: Option<u64>,
}

/// A freshly minted token. `token` is shown here once and never again.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9…", "jti": "019a8c11-3333-7000-8000-000000000004", "scopes": ["cases:write"], "expires_at": "2026-11-23T09:00:00Z"}))]
pub struct MintedToken {
    pub token: String,
    #[schema(value_type = uuid::Uuid)]
    pub jti: TokenId,
    pub scopes: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::IntegrationNotFound,
        "No integration has this id.",
    )
}

/// Every group exists; repeats are dropped.
async fn check_groups(state: &AppState, groups: &[GroupId]) -> Result<Vec<GroupId>, ApiError> {
    if groups.is_empty() {
        return Err(ApiError::validation(
            ErrorCode::ValidationFailed,
            vec![FieldError::field(
                "groups",
                ErrorCode::Required,
                "an integration needs at least one group",
            )],
        ));
    }
    let mut unique = Vec::with_capacity(groups.len());
    let mut errors = Vec::new();
    for (i, group) in groups.iter().enumerate() {
        if unique.contains(group) {
            continue;
        }
        if state.store.get_group(*group).await?.is_none() {
            let mut error = unknown_group(*group);
            error.field = Some(format!("groups[{i}]"));
            errors.push(error);
        }
        unique.push(*group);
    }
    check_references(errors)?;
    Ok(unique)
}

/// Create an integration
///
/// An integration is a source of data (a CRM, a dialer, a partner with curl)
/// with access to one or more groups. Mint its tokens with
/// `POST /v1/admin/integrations/{id}/tokens`.
#[utoipa::path(
    tag = "admin",
    request_body = CreateIntegration,
    responses(
        (status = 201, description = "The created integration", body = Integration),
        (status = 422, description = "`unknown_group` or `validation_failed`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[post("/integrations")]
pub async fn create_integration(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    body: web::Json<CreateIntegration>,
) -> Result<HttpResponse, ApiError> {
    validate(&*body)?;
    let groups = check_groups(&state, &body.groups).await?;
    let fields = IntegrationFields {
        label: body.label.trim().to_string(),
        description: body
            .description
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_string(),
        groups,
        enabled: body.enabled.unwrap_or(true),
        csv_limits: body
            .csv_limits
            .unwrap_or_default()
            .apply(CsvLimits::default()),
        rate_limit: body.rate_limit.map(RateLimitInput::policy),
    };
    let integration = state.store.create_integration(&fields).await?;
    Ok(HttpResponse::Created().json(integration))
}

/// List integrations
///
/// In creation order, a page at a time. Deleted integrations are not listed.
#[utoipa::path(
    tag = "admin",
    params(PageQuery),
    responses((status = 200, description = "A page of integrations", body = Page<Integration>)),
    security(("bearer" = ["admin"]))
)]
#[get("/integrations")]
pub async fn list_integrations(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    let rows = state
        .store
        .list_integrations(page.after_id(), page.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, page, |i| i.id)))
}

/// Get an integration
///
/// The integration with its groups and CSV limits.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The integration's id")),
    responses(
        (status = 200, description = "The integration", body = Integration),
        (status = 404, description = "`integration_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[get("/integrations/{id}")]
pub async fn get_integration(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<IntegrationId>,
) -> Result<HttpResponse, ApiError> {
    let integration = state
        .store
        .get_integration(*id)
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(integration))
}

/// Update an integration
///
/// Changes only the fields given; `groups` replaces the whole set. Taking a
/// group away or disabling the integration takes effect on its next request.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The integration's id")),
    request_body = UpdateIntegration,
    responses(
        (status = 200, description = "The updated integration", body = Integration),
        (status = 404, description = "`integration_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`unknown_group` or `validation_failed`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[patch("/integrations/{id}")]
pub async fn update_integration(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<IntegrationId>,
    body: web::Json<UpdateIntegration>,
) -> Result<HttpResponse, ApiError> {
    validate(&*body)?;
    let current: Integration = state
        .store
        .get_integration(*id)
        .await?
        .ok_or_else(not_found)?;
    let groups = match &body.groups {
        Some(groups) => check_groups(&state, groups).await?,
        None => current.groups.clone(),
    };
    let fields = IntegrationFields {
        label: body
            .label
            .as_deref()
            .map(str::trim)
            .unwrap_or(&current.label)
            .to_string(),
        description: body
            .description
            .as_deref()
            .map(str::trim)
            .unwrap_or(&current.description)
            .to_string(),
        groups,
        enabled: body.enabled.unwrap_or(current.enabled),
        csv_limits: body
            .csv_limits
            .unwrap_or_default()
            .apply(current.csv_limits),
        rate_limit: match body.rate_limit {
            None => current.rate_limit,
            Some(rate_limit) => rate_limit.map(RateLimitInput::policy),
        },
    };
    let updated = state
        .store
        .update_integration(*id, &fields)
        .await?
        .ok_or_else(not_found)?;
    state.access.invalidate(*id).await;
    Ok(HttpResponse::Ok().json(updated))
}

/// Delete an integration
///
/// The integration and its tokens stop working at once; the cases and lists
/// it sent stay.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The integration's id")),
    responses(
        (status = 204, description = "Deleted; its tokens are revoked"),
        (status = 404, description = "`integration_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[delete("/integrations/{id}")]
pub async fn delete_integration(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<IntegrationId>,
) -> Result<HttpResponse, ApiError> {
    let revoked = state
        .store
        .delete_integration(*id)
        .await?
        .ok_or_else(not_found)?;
    for jti in revoked {
        state.access.revoke(jti).await;
    }
    state.access.invalidate(*id).await;
    tracing::info!(integration_id = %id, "integration deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// Mint a token
///
/// A JWT for this integration with the scopes asked for. The token is in
/// this answer only: it is not stored, and cannot be shown again.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The integration's id")),
    request_body = CreateToken,
    responses(
        (status = 201, description = "The token, shown once", body = MintedToken),
        (status = 404, description = "`integration_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (`invalid_scope`, `out_of_range` in `errors`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[post("/integrations/{id}/tokens")]
pub async fn create_token(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<IntegrationId>,
    body: web::Json<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    let scopes = parse_integration_scopes(&body.scopes);
    let ttl = check_ttl(body.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS));
    let (scopes, ttl) = match (scopes, ttl) {
        (Ok(scopes), Ok(ttl)) => (scopes, ttl),
        (scopes, ttl) => {
            let mut errors = scopes.err().unwrap_or_default();
            errors.extend(ttl.err());
            return Err(ApiError::validation(ErrorCode::ValidationFailed, errors));
        }
    };
    let (token, info) = mint_integration_token(&state.store, &state.jwt, *id, &scopes, ttl).await?;
    Ok(HttpResponse::Created().json(MintedToken {
        token,
        jti: info.jti,
        scopes: info.scopes,
        expires_at: info.expires_at,
    }))
}

/// List tokens
///
/// Every token minted for the integration (never the token itself): scopes,
/// lifetime, last use, revocation.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The integration's id"), PageQuery),
    responses(
        (status = 200, description = "A page of tokens", body = Page<TokenInfo>),
        (status = 404, description = "`integration_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[get("/integrations/{id}/tokens")]
pub async fn list_tokens(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<IntegrationId>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    if state.store.get_integration(*id).await?.is_none() {
        return Err(not_found());
    }
    let rows = state
        .store
        .list_tokens(*id, page.after_id(), page.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, page, |t| t.jti)))
}

/// Revoke a token
///
/// The token is refused from its next request on, by every replica.
/// Revoking a revoked token is not an error.
#[utoipa::path(
    tag = "admin",
    params(
        ("id" = Uuid, Path, description = "The integration's id"),
        ("jti" = Uuid, Path, description = "The token's id (`jti`)"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "`integration_not_found` or `token_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[delete("/integrations/{id}/tokens/{jti}")]
pub async fn revoke_token(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    path: web::Path<(IntegrationId, TokenId)>,
) -> Result<HttpResponse, ApiError> {
    let (id, jti) = path.into_inner();
    if state.store.get_integration(id).await?.is_none() {
        return Err(not_found());
    }
    state.store.revoke_token(id, jti).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::TokenNotFound,
            "This integration has no token with this jti.",
        )
    })?;
    state.access.revoke(jti).await;
    tracing::info!(integration_id = %id, %jti, "token revoked");
    Ok(HttpResponse::NoContent().finish())
}
