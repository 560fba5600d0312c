//! `/v1/admin/groups`: the units of access.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use super::validate;
use crate::auth::{AdminScope, Authorized};
use crate::domain::not_blank;
use crate::error::{ApiError, ErrorCode, Problem};
use crate::ids::GroupId;
use crate::routes::{Page, PageQuery};
use crate::startup::AppState;
use crate::store::StoreError;
use crate::store::models::Group;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_group)
        .service(list_groups)
        .service(get_group)
        .service(update_group)
        .service(delete_group);
}

/// A new group, or a group's new name.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Support EU"}))]
pub struct GroupInput {
    /// Unique, 1 to 200 characters.
    #[validate(length(max = 200), custom(function = "not_blank"))]
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        max_length = 200
    )]
    pub name: String,
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::GroupNotFound, "No group has this id.")
}

fn duplicate(error: StoreError) -> ApiError {
    match error {
        StoreError::Duplicate(_) => ApiError::new(
            ErrorCode::DuplicateName,
            "Another group already has this name.",
        ),
        other => other.into(),
    }
}

/// Create a group
///
/// Groups are the unit of access: an integration sees and writes only the
/// data of its groups.
#[utoipa::path(
    tag = "admin",
    request_body = GroupInput,
    responses(
        (status = 201, description = "The created group", body = Group),
        (status = 409, description = "`duplicate_name`: another group has this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[post("/groups")]
pub async fn create_group(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    body: web::Json<GroupInput>,
) -> Result<HttpResponse, ApiError> {
    validate(&*body)?;
    let group = state
        .store
        .create_group(body.name.trim())
        .await
        .map_err(duplicate)?;
    Ok(HttpResponse::Created().json(group))
}

/// List groups
///
/// In creation order, a page at a time.
#[utoipa::path(
    tag = "admin",
    params(PageQuery),
    responses((status = 200, description = "A page of groups", body = Page<Group>)),
    security(("bearer" = ["admin"]))
)]
#[get("/groups")]
pub async fn list_groups(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    let rows = state
        .store
        .list_groups(page.after_id(), page.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, page, |g| g.id)))
}

/// Get a group
///
/// One group by its id.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The group's id")),
    responses(
        (status = 200, description = "The group", body = Group),
        (status = 404, description = "`group_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[get("/groups/{id}")]
pub async fn get_group(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<GroupId>,
) -> Result<HttpResponse, ApiError> {
    let group = state.store.get_group(*id).await?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(group))
}

/// Rename a group
///
/// Group names are unique.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The group's id")),
    request_body = GroupInput,
    responses(
        (status = 200, description = "The renamed group", body = Group),
        (status = 404, description = "`group_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`duplicate_name`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[patch("/groups/{id}")]
pub async fn update_group(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<GroupId>,
    body: web::Json<GroupInput>,
) -> Result<HttpResponse, ApiError> {
    validate(&*body)?;
    let group = state
        .store
        .rename_group(*id, body.name.trim())
        .await
        .map_err(duplicate)?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(group))
}

/// Delete a group
///
/// Only a group nothing refers to (no teams, staff, campaigns, integrations)
/// can be deleted; otherwise 409 `resource_in_use`.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The group's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`group_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`resource_in_use`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[delete("/groups/{id}")]
pub async fn delete_group(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<GroupId>,
) -> Result<HttpResponse, ApiError> {
    if state.store.delete_group(*id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found())
    }
}
