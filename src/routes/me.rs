//! `GET /v1/me`: what the calling token is.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{AnyIntegration, Authorized};
use crate::error::{ApiError, ErrorCode};
use crate::ids::{IntegrationId, TokenId};
use crate::startup::AppState;
use crate::store::models::{Group, Integration};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(get_me);
}

/// The integration behind a token.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeIntegration {
    #[schema(value_type = uuid::Uuid)]
    pub id: IntegrationId,
    pub label: String,
    pub description: String,
}

/// The calling token.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeToken {
    #[schema(value_type = uuid::Uuid)]
    pub jti: TokenId,
    pub expires_at: DateTime<Utc>,
}

/// Who the caller is and what it may do.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "integration": {"id": "019a8c10-2222-7000-8000-000000000003", "label": "CRM sync", "description": "Nightly push"},
    "groups": [{"id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa", "name": "Support EU", "created_at": "2026-11-22T09:00:00Z"}],
    "scopes": ["cases:write"],
    "token": {"jti": "019a8c11-3333-7000-8000-000000000004", "expires_at": "2026-12-22T09:00:00Z"}
}))]
pub struct Me {
    pub integration: MeIntegration,
    /// The groups whose data this token sees, as of now.
    pub groups: Vec<Group>,
    pub scopes: Vec<String>,
    pub token: MeToken,
}

/// The calling token's integration (deleted since the token was checked:
/// answered like any token of a deleted integration).
pub async fn caller_integration(
    state: &AppState,
    id: IntegrationId,
) -> Result<Integration, ApiError> {
    state.store.get_integration(id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidToken,
            "The integration of this token no longer exists.",
        )
    })
}

/// Who am I
///
/// The calling token's integration, its groups and the token's scopes.
/// Integrators use it to check a token; any integration scope opens it.
#[utoipa::path(
    tag = "integration",
    responses((status = 200, description = "The caller", body = Me)),
    security(
        ("bearer" = ["cases:write"]), ("bearer" = ["cases:read"]), ("bearer" = ["customers:write"]),
        ("bearer" = ["customers:read"]), ("bearer" = ["customers:create"]), ("bearer" = ["imports:write"]),
        ("bearer" = ["imports:read"])
    )
)]
#[get("/me")]
pub async fn get_me(
    auth: Authorized<AnyIntegration>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = &auth.principal;
    let integration = caller_integration(&state, caller.id).await?;
    let mut groups = Vec::new();
    for id in caller.access.groups() {
        if let Some(group) = state.store.get_group(*id).await? {
            groups.push(group);
        }
    }
    let expires_at = DateTime::from_timestamp(auth.claims.exp, 0).unwrap_or_default();
    Ok(HttpResponse::Ok().json(Me {
        integration: MeIntegration {
            id: integration.id,
            label: integration.label,
            description: integration.description,
        },
        groups,
        scopes: auth.claims.scopes().map(str::to_string).collect(),
        token: MeToken {
            jti: caller.jti,
            expires_at,
        },
    }))
}
