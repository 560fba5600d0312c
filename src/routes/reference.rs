//! `GET /v1/teams`, `GET /v1/staff`, `GET /v1/categories`: the reference
//! data an integration needs to fill every field of an upload from the API
//! alone (`staff_id`, `assign_team`, `assign_evaluator`, `category`,
//! `agent`). Teams and staff are those of the integration's groups;
//! categories are global.

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Authorized, ReferenceRead};
use crate::error::{ApiError, ErrorCode, Problem};
use crate::ids::TeamId;
use crate::routes::{Page, PageQuery};
use crate::startup::AppState;
use crate::store::models::{Category, StaffRole, Team};
use crate::store::reference::{StaffEntry, StaffQuery};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_teams)
        .service(list_staff)
        .service(list_categories);
}

/// List teams
///
/// The teams of the integration's groups (for `assign_team`), in creation
/// order, a page at a time.
#[utoipa::path(
    tag = "reference",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of teams", body = Page<Team>),
        (status = 403, description = "`insufficient_scope`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["cases:read"]), ("bearer" = ["cases:write"]), ("bearer" = ["imports:write"]))
)]
#[get("/teams")]
pub async fn list_teams(
    auth: Authorized<ReferenceRead>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    let groups = auth.principal.access.groups();
    let rows = state
        .store
        .list_teams_of(groups, page.after_id(), page.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, page, |t| t.id)))
}

/// Filters of `GET /v1/staff`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StaffParams {
    /// Only this role: `agent`, `supervisor` or `evaluator` (letter case,
    /// spaces and hyphens free).
    pub role: Option<String>,
    /// Only members of this team.
    #[param(value_type = Option<uuid::Uuid>)]
    pub team_id: Option<TeamId>,
    /// Text found anywhere in the name, the Staff ID or the External ID,
    /// ignoring letter case (on SQLite, of ASCII letters only).
    pub q: Option<String>,
}

/// List staff
///
/// The active staff of the integration's groups, in creation order, a page
/// at a time: the Staff ID (a case's `staff_id`, `assign_evaluator`), the
/// External ID (`external_staff_id`), the exact name (a customer's
/// `agent`), the role and the team. Inactive staff are left out: they
/// cannot be named in an upload.
#[utoipa::path(
    tag = "reference",
    params(StaffParams, PageQuery),
    responses(
        (status = 200, description = "A page of staff", body = Page<StaffEntry>),
        (status = 400, description = "`invalid_query`: an unknown role, a bad team id or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["cases:read"]), ("bearer" = ["cases:write"]), ("bearer" = ["imports:write"]))
)]
#[get("/staff")]
pub async fn list_staff(
    auth: Authorized<ReferenceRead>,
    state: web::Data<AppState>,
    filter: web::Query<StaffParams>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    let role = match filter.role.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(
            StaffRole::try_from(raw.to_string())
                .map_err(|message| ApiError::new(ErrorCode::InvalidQuery, message))?,
        ),
    };
    if filter.q.as_deref().is_some_and(|q| q.contains('\0')) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "`q` cannot contain a NUL character",
        ));
    }
    let staff_query = StaffQuery {
        role,
        team_id: filter.team_id,
        q: filter.q.clone().filter(|q| !q.trim().is_empty()),
    };
    let groups = auth.principal.access.groups();
    let rows = state
        .store
        .reference_staff(groups, &staff_query, page.after_id(), page.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, page, |s| s.id)))
}

/// List categories
///
/// The case categories configured now (a case's `category`; global, the
/// same for every integration), in creation order, a page at a time.
#[utoipa::path(
    tag = "reference",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of categories", body = Page<Category>),
        (status = 403, description = "`insufficient_scope`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["cases:read"]), ("bearer" = ["cases:write"]), ("bearer" = ["imports:write"]))
)]
#[get("/categories")]
pub async fn list_categories(
    _auth: Authorized<ReferenceRead>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    let rows = state
        .store
        .list_categories(page.after_id(), page.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, page, |c| c.id)))
}
