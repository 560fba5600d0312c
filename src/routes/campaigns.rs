//! `/v1/campaigns`: the campaigns of the caller's groups.

use actix_web::{HttpResponse, get, web};

use crate::auth::{Authorized, CampaignsRead};
use crate::error::{ApiError, ErrorCode, Problem};
use crate::ids::CampaignId;
use crate::routes::{Page, PageQuery};
use crate::startup::AppState;
use crate::store::models::Campaign;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_campaigns).service(get_campaign);
}

/// List campaigns
///
/// The campaigns of the integration's groups, in creation order, a page at
/// a time.
#[utoipa::path(
    tag = "customers",
    params(PageQuery),
    responses((status = 200, description = "A page of campaigns", body = Page<Campaign>)),
    security(("bearer" = ["customers:read"]), ("bearer" = ["customers:write"]), ("bearer" = ["customers:create"]))
)]
#[get("/campaigns")]
pub async fn list_campaigns(
    auth: Authorized<CampaignsRead>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    let groups = auth.principal.access.groups();
    let rows = state
        .store
        .list_campaigns(Some(groups), page.after_id(), page.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, page, |c| c.id)))
}

/// Get a campaign
///
/// A campaign of the integration's groups. A campaign of another group is
/// answered exactly like one that does not exist.
#[utoipa::path(
    tag = "customers",
    params(("id" = Uuid, Path, description = "The campaign's id")),
    responses(
        (status = 200, description = "The campaign", body = Campaign),
        (status = 404, description = "`campaign_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["customers:read"]), ("bearer" = ["customers:write"]), ("bearer" = ["customers:create"]))
)]
#[get("/campaigns/{id}")]
pub async fn get_campaign(
    auth: Authorized<CampaignsRead>,
    state: web::Data<AppState>,
    id: web::Path<CampaignId>,
) -> Result<HttpResponse, ApiError> {
    let campaign = auth
        .principal
        .access
        .visible(state.store.get_campaign(*id).await?)
        .ok_or_else(|| ApiError::new(ErrorCode::CampaignNotFound, "No campaign has this id."))?;
    Ok(HttpResponse::Ok().json(campaign))
}
