//! `/v1/admin/campaigns`: call-centre campaigns, each in one group.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use super::teams::unknown_group;
use super::{check_references, reference_error, validate};
use crate::auth::{AdminScope, Authorized};
use crate::domain::{
    DEFAULT_CUSTOMER_STATUSES, Region, TimeZoneName, not_blank, parse_statuses, valid_region,
    valid_timezone,
};
use crate::error::{ApiError, ErrorCode, Problem};
use crate::ids::{CampaignId, GroupId};
use crate::routes::{GroupFilter, Page, PageQuery};
use crate::startup::AppState;
use crate::store::StoreError;
use crate::store::models::{Campaign, CampaignFields};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_campaign)
        .service(list_campaigns)
        .service(get_campaign)
        .service(update_campaign)
        .service(delete_campaign);
}

/// A new campaign.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Spring renewals", "group_id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa", "default_region": "IL", "timezone": "Asia/Jerusalem"}))]
pub struct CreateCampaign {
    /// Unique within the group, 1 to 200 characters.
    #[validate(length(max = 200), custom(function = "not_blank"))]
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        max_length = 200
    )]
    pub name: String,
    /// The group the campaign belongs to (cannot change later).
    #[schema(value_type = uuid::Uuid)]
    pub group_id: GroupId,
    /// ISO 3166-1 alpha-2 country whose numbering plan reads phone numbers
    /// given without a country code.
    #[validate(custom(function = "valid_region"))]
    pub default_region: String,
    /// IANA time zone in which dates of uploaded files are read.
    #[validate(custom(function = "valid_timezone"))]
    pub timezone: String,
    /// The customer statuses (default `new`, `follow_up`, `waiting`,
    /// `closed`); stored in canonical snake_case.
    pub statuses: Option<Vec<String>>,
}

/// Changes to a campaign; absent fields stay.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"timezone": "Europe/Prague", "statuses": ["new", "call_back", "closed"]}))]
pub struct UpdateCampaign {
    #[validate(length(max = 200), custom(function = "not_blank"))]
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        max_length = 200
    )]
    pub name: Option<String>,
    #[validate(custom(function = "valid_region"))]
    pub default_region: Option<String>,
    #[validate(custom(function = "valid_timezone"))]
    pub timezone: Option<String>,
    pub statuses: Option<Vec<String>>,
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::CampaignNotFound, "No campaign has this id.")
}

fn duplicate(error: StoreError) -> ApiError {
    match error {
        StoreError::Duplicate(_) => ApiError::new(
            ErrorCode::DuplicateName,
            "Another campaign of this group already has this name.",
        ),
        other => other.into(),
    }
}

/// Validates the parts `validator` cannot see (statuses), after its rules.
fn campaign_fields(
    name: &str,
    group_id: GroupId,
    region: &str,
    timezone: &str,
    statuses: &[String],
) -> Result<CampaignFields, ApiError> {
    let statuses = parse_statuses("statuses", statuses)
        .map_err(|errors| ApiError::validation(ErrorCode::ValidationFailed, errors))?;
    // Both were checked by `validate`; parse again to store the canonical form.
    let region = Region::parse(region).map_err(|m| ApiError::new(ErrorCode::InvalidRegion, m))?;
    let timezone =
        TimeZoneName::parse(timezone).map_err(|m| ApiError::new(ErrorCode::InvalidTimezone, m))?;
    Ok(CampaignFields {
        name: name.trim().to_string(),
        group_id,
        default_region: region.as_str().to_string(),
        timezone: timezone.as_str().to_string(),
        statuses,
    })
}

/// Create a campaign
///
/// `default_region` (ISO 3166-1 alpha-2) reads phone numbers given without a
/// country code; `timezone` (IANA) reads the dates of uploaded files;
/// `statuses` defaults to `new`, `follow_up`, `waiting`, `closed`.
#[utoipa::path(
    tag = "admin",
    request_body = CreateCampaign,
    responses(
        (status = 201, description = "The created campaign", body = Campaign),
        (status = 409, description = "`duplicate_name`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`unknown_group` or `validation_failed` (`invalid_region`, `invalid_timezone`, … in `errors`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[post("/campaigns")]
pub async fn create_campaign(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    body: web::Json<CreateCampaign>,
) -> Result<HttpResponse, ApiError> {
    validate(&*body)?;
    let default_statuses: Vec<String> = DEFAULT_CUSTOMER_STATUSES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let fields = campaign_fields(
        &body.name,
        body.group_id,
        &body.default_region,
        &body.timezone,
        body.statuses.as_deref().unwrap_or(&default_statuses),
    )?;
    if state.store.get_group(body.group_id).await?.is_none() {
        check_references(vec![unknown_group(body.group_id)])?;
    }
    let campaign = match state.store.create_campaign(&fields).await {
        Err(StoreError::Reference(_)) => {
            return Err(reference_error(vec![unknown_group(body.group_id)]));
        }
        other => other.map_err(duplicate)?,
    };
    Ok(HttpResponse::Created().json(campaign))
}

/// List campaigns
///
/// In creation order, a page at a time; `group_id` narrows to one group.
#[utoipa::path(
    operation_id = "admin_list_campaigns",
    tag = "admin",
    params(PageQuery, GroupFilter),
    responses((status = 200, description = "A page of campaigns", body = Page<Campaign>)),
    security(("bearer" = ["admin"]))
)]
#[get("/campaigns")]
pub async fn list_campaigns(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
    filter: web::Query<GroupFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    let rows = state
        .store
        .list_campaigns(
            filter.group_id.as_ref().map(std::slice::from_ref),
            page.after_id(),
            page.fetch(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, page, |c| c.id)))
}

/// Get a campaign
///
/// The campaign with its region, time zone and customer statuses.
#[utoipa::path(
    operation_id = "admin_get_campaign",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The campaign's id")),
    responses(
        (status = 200, description = "The campaign", body = Campaign),
        (status = 404, description = "`campaign_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[get("/campaigns/{id}")]
pub async fn get_campaign(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<CampaignId>,
) -> Result<HttpResponse, ApiError> {
    let campaign = state.store.get_campaign(*id).await?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(campaign))
}

/// Update a campaign
///
/// Changes only the fields given; a campaign stays in its group.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The campaign's id")),
    request_body = UpdateCampaign,
    responses(
        (status = 200, description = "The updated campaign", body = Campaign),
        (status = 404, description = "`campaign_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`duplicate_name`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[patch("/campaigns/{id}")]
pub async fn update_campaign(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<CampaignId>,
    body: web::Json<UpdateCampaign>,
) -> Result<HttpResponse, ApiError> {
    validate(&*body)?;
    let current = state.store.get_campaign(*id).await?.ok_or_else(not_found)?;
    let fields = campaign_fields(
        body.name.as_deref().unwrap_or(&current.name),
        current.group_id,
        body.default_region
            .as_deref()
            .unwrap_or(&current.default_region),
        body.timezone.as_deref().unwrap_or(&current.timezone),
        body.statuses.as_deref().unwrap_or(&current.statuses),
    )?;
    let campaign = state
        .store
        .update_campaign(*id, &fields)
        .await
        .map_err(duplicate)?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(campaign))
}

/// Delete a campaign
///
/// Deletes the campaign with its customers.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The campaign's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`campaign_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[delete("/campaigns/{id}")]
pub async fn delete_campaign(
    _auth: Authorized<AdminScope>,
    state: web::Data<AppState>,
    id: web::Path<CampaignId>,
) -> Result<HttpResponse, ApiError> {
    if state.store.delete_campaign(*id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found())
    }
}
