//! `GET /v1/enums`: every field that takes one of a set of values, with the
//! values in force now for the calling integration.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{AnyIntegration, Authorized};
use crate::domain::access::GroupAccess;
use crate::domain::case::{CaseStatus, Channel, Priority};
use crate::error::ApiError;
use crate::ids::{CampaignId, GroupId};
use crate::startup::AppState;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(get_enums);
}

/// The most campaigns one answer lists (`GET /v1/campaigns` pages them all).
const MAX_CAMPAIGNS: i64 = 1_000;

/// The values a case's fields take.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseEnums {
    /// `channel` (CSV `Channel`; spaces, hyphens and letter case are free).
    pub channel: Vec<&'static str>,
    /// `status` (CSV `Status`; default `open`).
    pub status: Vec<&'static str>,
    /// `priority` (CSV `Priority`).
    pub priority: Vec<&'static str>,
    /// `category` (CSV `Category`): the categories configured now.
    pub category: Vec<String>,
}

/// The customer statuses of one campaign.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignEnums {
    #[schema(value_type = uuid::Uuid)]
    pub id: CampaignId,
    pub name: String,
    /// The group it belongs to (its agents are this group's).
    #[serde(skip)]
    pub group_id: GroupId,
    /// A customer's `status` in this campaign.
    pub status: Vec<String>,
}

/// Every enum field with its live values.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "cases": {"channel": ["form", "live_hotline", "survey"], "status": ["open", "in_progress", "closed"],
              "priority": ["low", "medium", "high", "critical"], "category": ["Billing", "General"]},
    "campaigns": [{"id": "019a8c13-7777-7000-8000-000000000008", "name": "Winter leads", "status": ["new", "callback", "done"]}]
}))]
pub struct Enums {
    pub cases: CaseEnums,
    /// The campaigns of the integration's groups (at most 1,000), each with
    /// its customer statuses.
    pub campaigns: Vec<CampaignEnums>,
}

/// List enum values
///
/// Every field that takes one of a set of values, with the values in force
/// now: the case fields' fixed sets, the categories configured, and the
/// customer statuses of each campaign of the integration's groups.
#[utoipa::path(
    tag = "integration",
    responses((status = 200, description = "The enum fields and their values", body = Enums)),
    security(
        ("bearer" = ["cases:write"]), ("bearer" = ["cases:read"]), ("bearer" = ["customers:write"]),
        ("bearer" = ["customers:read"]), ("bearer" = ["customers:create"]), ("bearer" = ["imports:write"]),
        ("bearer" = ["imports:read"])
    )
)]
#[get("/enums")]
pub async fn get_enums(
    auth: Authorized<AnyIntegration>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(live_enums(&state, &auth.principal.access).await?))
}

/// The enum fields and their values in force now for a caller with
/// `access`: the case fields' fixed sets, the configured categories, and
/// the customer statuses of each campaign of its groups (at most
/// [`MAX_CAMPAIGNS`]). `GET /v1/enums` answers them; the import templates
/// (`GET /v1/templates/{kind}`) list them.
pub async fn live_enums(state: &AppState, access: &GroupAccess) -> Result<Enums, ApiError> {
    let groups = access.groups();
    let (categories, campaigns) = tokio::try_join!(
        async { Ok::<_, ApiError>(state.access.categories().await?) },
        async {
            Ok::<_, ApiError>(
                state
                    .store
                    .list_campaigns(Some(groups), None, MAX_CAMPAIGNS)
                    .await?,
            )
        },
    )?;
    Ok(Enums {
        cases: CaseEnums {
            channel: Channel::ALL.iter().map(|v| v.as_str()).collect(),
            status: CaseStatus::ALL.iter().map(|v| v.as_str()).collect(),
            priority: Priority::ALL.iter().map(|v| v.as_str()).collect(),
            category: categories.as_ref().clone(),
        },
        campaigns: campaigns
            .into_iter()
            .map(|c| CampaignEnums {
                id: c.id,
                name: c.name,
                group_id: c.group_id,
                status: c.statuses.0,
            })
            .collect(),
    })
}
