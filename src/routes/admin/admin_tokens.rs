//! `/v1/admin/tokens`: the operators' own tokens, listed and revoked.
//! (They are minted by `intake token --admin`, by whoever runs the binary
//! with the deployment's settings.)

use actix_web::{HttpResponse, delete, get, web};

use crate::auth::{AdminScope, Authorized};
use crate::error::{ApiError, ErrorCode};
use crate::ids::TokenId;
use crate::routes::{Page, PageQuery};
use crate::startup::AppState;
use crate::store::models::AdminToken;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_admin_tokens).service(revoke_admin_token);
}

/// List admin tokens
///
/// Every admin token minted (never the token itself), in `jti` order, a
/// page at a time; revoked and expired ones too.
#[utoipa::path(
    tag = "admin",
    params(PageQuery),
    responses((status = 200, description = "A page of admin tokens", body = Page<AdminToken>)),
    security(("bearer" = ["admin"]))
)]
#[get("/tokens")]
pub async fn list_admin_tokens(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    let rows = state
        .store
        .list_admin_tokens(page.after_id(), page.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, page, |t| t.jti)))
}

/// Revoke an admin token
///
/// The token is refused from its next request on, by every replica (the
/// calling token too, if it is this one). Revoking a revoked token is not an
/// error.
#[utoipa::path(
    tag = "admin",
    params(("jti" = Uuid, Path, description = "The token's id (`jti`)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "`token_not_found`", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[delete("/tokens/{jti}")]
pub async fn revoke_admin_token(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    jti: web::Path<TokenId>,
) -> Result<HttpResponse, ApiError> {
    let jti = jti.into_inner();
    state
        .store
        .revoke_admin_token(jti)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::TokenNotFound, "No admin token has this jti."))?;
    tracing::info!(%jti, "admin token revoked");
    Ok(HttpResponse::NoContent().finish())
}
