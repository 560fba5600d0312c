//! `/v1/admin/categories`: the values a case's `category` may take.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use super::validate;
use crate::auth::{AdminScope, Authorized};
use crate::domain::not_blank;
use crate::error::{ApiError, ErrorCode, Problem};
use crate::ids::CategoryId;
use crate::routes::{Page, PageQuery};
use crate::startup::AppState;
use crate::store::StoreError;
use crate::store::models::Category;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_category)
        .service(list_categories)
        .service(get_category)
        .service(update_category)
        .service(delete_category);
}

/// A new category, or a category's new name.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Billing"}))]
pub struct CategoryInput {
    /// Unique, 1 to 200 characters.
    #[validate(length(max = 200), custom(function = "not_blank"))]
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        max_length = 200
    )]
    pub name: String,
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::CategoryNotFound, "No category has this id.")
}

fn duplicate(error: StoreError) -> ApiError {
    match error {
        StoreError::Duplicate(_) => ApiError::new(
            ErrorCode::DuplicateName,
            "Another category already has this name.",
        ),
        other => other.into(),
    }
}

/// Create a category
///
/// Categories are the values a case's `category` may take; a value not
/// in this list is an error.
#[utoipa::path(
    tag = "admin",
    request_body = CategoryInput,
    responses(
        (status = 201, description = "The created category", body = Category),
        (status = 409, description = "`duplicate_name`: another category has this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[post("/categories")]
pub async fn create_category(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    body: web::Json<CategoryInput>,
) -> Result<HttpResponse, ApiError> {
    validate(&*body)?;
    let category = state
        .store
        .create_category(body.name.trim())
        .await
        .map_err(duplicate)?;
    state.access.invalidate_categories().await;
    Ok(HttpResponse::Created().json(category))
}

/// List categories
///
/// In creation order, a page at a time.
#[utoipa::path(
    operation_id = "admin_list_categories",
    tag = "admin",
    params(PageQuery),
    responses((status = 200, description = "A page of categories", body = Page<Category>)),
    security(("bearer" = ["admin"]))
)]
#[get("/categories")]
pub async fn list_categories(
    _auth: Authorized<AdminScope>,
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

/// Get a category
///
/// One configured category.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The category's id")),
    responses(
        (status = 200, description = "The category", body = Category),
        (status = 404, description = "`category_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[get("/categories/{id}")]
pub async fn get_category(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<CategoryId>,
) -> Result<HttpResponse, ApiError> {
    let category = state.store.get_category(*id).await?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(category))
}

/// Rename a category
///
/// Cases already stored keep the old name; new cases must use the new one.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The category's id")),
    request_body = CategoryInput,
    responses(
        (status = 200, description = "The renamed category", body = Category),
        (status = 404, description = "`category_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`duplicate_name`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[patch("/categories/{id}")]
pub async fn update_category(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<CategoryId>,
    body: web::Json<CategoryInput>,
) -> Result<HttpResponse, ApiError> {
    validate(&*body)?;
    let category = state
        .store
        .rename_category(*id, body.name.trim())
        .await
        .map_err(duplicate)?
        .ok_or_else(not_found)?;
    state.access.invalidate_categories().await;
    Ok(HttpResponse::Ok().json(category))
}

/// Delete a category
///
/// Cases already stored keep their category; new cases can no longer use it.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The category's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`category_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[delete("/categories/{id}")]
pub async fn delete_category(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<CategoryId>,
) -> Result<HttpResponse, ApiError> {
    if state.store.delete_category(*id).await? {
        state.access.invalidate_categories().await;
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found())
    }
}
