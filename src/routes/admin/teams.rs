//! `/v1/admin/teams`: teams inside a group.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use super::{check_references, reference_error, validate};
use crate::auth::{AdminScope, Authorized};
use crate::domain::not_blank;
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::ids::{GroupId, TeamId};
use crate::routes::{GroupFilter, Page, PageQuery};
use crate::startup::AppState;
use crate::store::StoreError;
use crate::store::models::Team;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_team)
        .service(list_teams)
        .service(get_team)
        .service(update_team)
        .service(delete_team);
}

/// A new team.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"group_id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa", "name": "Tier 1"}))]
pub struct CreateTeam {
    /// The group the team belongs to (cannot change later).
    #[schema(value_type = uuid::Uuid)]
    pub group_id: GroupId,
    /// Unique within the group, 1 to 200 characters.
    #[validate(length(max = 200), custom(function = "not_blank"))]
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        max_length = 200
    )]
    pub name: String,
}

/// A team's new name.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Tier 2"}))]
pub struct UpdateTeam {
    #[validate(length(max = 200), custom(function = "not_blank"))]
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        max_length = 200
    )]
    pub name: String,
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::TeamNotFound, "No team has this id.")
}

fn duplicate(error: StoreError) -> ApiError {
    match error {
        StoreError::Duplicate(_) => ApiError::new(
            ErrorCode::DuplicateName,
            "Another team of this group already has this name.",
        ),
        other => other.into(),
    }
}

/// Create a team
///
/// A team belongs to one group for good; its name is unique within the group.
#[utoipa::path(
    tag = "admin",
    request_body = CreateTeam,
    responses(
        (status = 201, description = "The created team", body = Team),
        (status = 409, description = "`duplicate_name`: the group has a team of this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`unknown_group` or `validation_failed`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[post("/teams")]
pub async fn create_team(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    body: web::Json<CreateTeam>,
) -> Result<HttpResponse, ApiError> {
    validate(&*body)?;
    if state.store.get_group(body.group_id).await?.is_none() {
        check_references(vec![unknown_group(body.group_id)])?;
    }
    let team = match state
        .store
        .create_team(body.group_id, body.name.trim())
        .await
    {
        // The group went away since the check above.
        Err(StoreError::Reference(_)) => {
            return Err(reference_error(vec![unknown_group(body.group_id)]));
        }
        other => other.map_err(duplicate)?,
    };
    Ok(HttpResponse::Created().json(team))
}

pub(super) fn unknown_group(id: GroupId) -> FieldError {
    FieldError::field(
        "group_id",
        ErrorCode::UnknownGroup,
        format!("No group has the id {id}."),
    )
}

/// List teams
///
/// In creation order, a page at a time; `group_id` narrows to one group.
#[utoipa::path(
    operation_id = "admin_list_teams",
    tag = "admin",
    params(PageQuery, GroupFilter),
    responses((status = 200, description = "A page of teams", body = Page<Team>)),
    security(("bearer" = ["admin"]))
)]
#[get("/teams")]
pub async fn list_teams(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
    filter: web::Query<GroupFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    let rows = state
        .store
        .list_teams(filter.group_id, page.after_id(), page.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, page, |t| t.id)))
}

/// Get a team
///
/// One team by its id.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The team's id")),
    responses(
        (status = 200, description = "The team", body = Team),
        (status = 404, description = "`team_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[get("/teams/{id}")]
pub async fn get_team(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<TeamId>,
) -> Result<HttpResponse, ApiError> {
    let team = state.store.get_team(*id).await?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(team))
}

/// Rename a team
///
/// A team stays in its group: `group_id` cannot be changed.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The team's id")),
    request_body = UpdateTeam,
    responses(
        (status = 200, description = "The renamed team", body = Team),
        (status = 404, description = "`team_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`duplicate_name`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[patch("/teams/{id}")]
pub async fn update_team(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<TeamId>,
    body: web::Json<UpdateTeam>,
) -> Result<HttpResponse, ApiError> {
    validate(&*body)?;
    let team = state
        .store
        .rename_team(*id, body.name.trim())
        .await
        .map_err(duplicate)?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(team))
}

/// Delete a team
///
/// Only a team no staff member belongs to; otherwise 409 `resource_in_use`.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The team's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`team_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`resource_in_use`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[delete("/teams/{id}")]
pub async fn delete_team(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<TeamId>,
) -> Result<HttpResponse, ApiError> {
    if state.store.delete_team(*id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found())
    }
}
