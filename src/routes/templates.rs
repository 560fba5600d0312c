//! `GET /v1/templates/{kind}`: a file to fill in a spreadsheet program and
//! upload as an import job, with example rows and the allowed values in
//! force now for the calling integration (see `ingest::templates`).

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{AnyIntegration, Authorized};
use crate::error::{ApiError, Problem};
use crate::ingest::templates::{
    CampaignStatuses, CaseSamples, CustomerSamples, SampleAgent, Template, TemplateFormat,
    TemplateKind, UploadLimits,
};
use crate::routes::enums::{CampaignEnums, live_enums};
use crate::startup::AppState;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(get_template);
}

/// The staff members a cases example names at most.
const EXAMPLE_STAFF: usize = 3;

/// The content type of an .xlsx workbook.
pub const XLSX_CONTENT_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// `?format=`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplateQuery {
    /// `zip` (default): CSV files and instructions; `xlsx`: one workbook
    /// with drop-down lists.
    #[serde(default)]
    #[param(inline)]
    pub format: TemplateFormat,
}

/// A file's bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // documents a binary answer
pub struct FileBytes(Vec<u8>);

/// Download an import template
///
/// A file to fill in a spreadsheet program and upload to `POST /v1/imports`
/// (`kind=cases` or `kind=customers`), made from what the integration sees
/// now. By default a zip (`intake-<kind>-template.zip`) holding:
/// `template.csv` (the header row the CSV reader recognises: cases
/// `Staff ID`, `External Staff ID`, `Case ID`, `Channel`, `Status`,
/// `Priority`, `Category`, `Occurred At` and a column of the partner's own,
/// `Reason`; customers `Name`, `Phone`, `Agent`, `Follow-up Date`,
/// `Created` and `Plan`), `example.csv` (a few rows that pass the check as
/// they are: cases naming active staff of the integration's groups, under
/// Case IDs made up for each download; customers with E.164 phone numbers
/// and, where one of its campaigns has one, an active agent),
/// `instructions.txt` (the columns, which are required, the values, date
/// formats, limits and how to upload and confirm, for a partner), and
/// `enums/<field>.csv` with the values in force (as `GET /v1/enums`
/// answers them): cases `channel`, `status`, `priority`, `category`;
/// customers `status` (`campaign_id,campaign,status`, the campaigns of the
/// integration's groups).
///
/// `?format=xlsx`: one workbook instead, its first sheet the template
/// (header bold and frozen, the example rows, drop-down lists on the enum
/// columns for rows 2 to 10,000, drawn from the sheet `Lists`), then
/// `Lists` and `Instructions`.
#[utoipa::path(
    tag = "templates",
    params(
        ("kind" = inline(TemplateKind), Path, description = "What the file is for: `cases` or `customers`"),
        TemplateQuery
    ),
    responses(
        (status = 200, description = "The template, as an attachment (`Content-Disposition`)", content(
            (FileBytes = "application/zip"),
            (FileBytes = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 400, description = "`invalid_path_parameter` (a kind other than `cases` or `customers`) or `invalid_query` (a format other than `zip` or `xlsx`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(
        ("bearer" = ["cases:write"]), ("bearer" = ["cases:read"]), ("bearer" = ["customers:write"]),
        ("bearer" = ["customers:read"]), ("bearer" = ["customers:create"]), ("bearer" = ["imports:write"]),
        ("bearer" = ["imports:read"])
    )
)]
#[get("/templates/{kind}")]
pub async fn get_template(
    auth: Authorized<AnyIntegration>,
    state: web::Data<AppState>,
    kind: web::Path<TemplateKind>,
    query: web::Query<TemplateQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let access = &auth.principal.access;
    // The address the caller used, for the instructions' commands.
    let base_url = {
        let connection = req.connection_info();
        format!("{}://{}", connection.scheme(), connection.host())
    };
    let enums = live_enums(&state, access).await?;
    let limits = UploadLimits {
        max_bytes: state.settings.import_max_bytes,
        confirm_within: state.settings.import_confirm_ttl,
        base_url: &base_url,
    };
    let now = chrono::Utc::now();
    let template = match kind.into_inner() {
        TemplateKind::Cases => {
            let staff = state
                .store
                .active_staff_of_groups(access.groups(), EXAMPLE_STAFF)
                .await?;
            let token = format!("{:08x}", rand::random::<u32>());
            Template::cases(&CaseSamples {
                staff: &staff,
                channel: &enums.cases.channel,
                status: &enums.cases.status,
                priority: &enums.cases.priority,
                categories: &enums.cases.category,
                token: &token,
                now,
                limits,
            })
        }
        TemplateKind::Customers => {
            let agent = sample_agent(&state, &enums.campaigns).await?;
            let campaigns: Vec<CampaignStatuses> = enums
                .campaigns
                .into_iter()
                .map(|c| CampaignStatuses {
                    id: c.id,
                    name: c.name,
                    statuses: c.status,
                })
                .collect();
            Template::customers(&CustomerSamples {
                campaigns: &campaigns,
                agent,
                now,
                limits,
            })
        }
    };
    let format = query.format;
    let file_name = template.file_name(format);
    // Compressing is CPU work: off the async workers.
    let bytes = web::block(move || match format {
        TemplateFormat::Zip => template.zip(),
        TemplateFormat::Xlsx => template.xlsx(),
    })
    .await
    .map_err(|e| ApiError::internal(anyhow::anyhow!("writing the template: {e}")))?
    .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type(match format {
            TemplateFormat::Zip => "application/zip",
            TemplateFormat::Xlsx => XLSX_CONTENT_TYPE,
        })
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{file_name}\""),
        ))
        .body(bytes))
}

/// The first active agent (by name) of the first campaign whose group has
/// one named by no other active agent of that group: a name the customers
/// example can carry into that campaign.
async fn sample_agent(
    state: &AppState,
    campaigns: &[CampaignEnums],
) -> Result<Option<SampleAgent>, ApiError> {
    let mut seen = Vec::new();
    for campaign in campaigns {
        if seen.contains(&campaign.group_id) {
            continue;
        }
        seen.push(campaign.group_id);
        let agents = state.store.active_agents(campaign.group_id).await?;
        let mut names: Vec<&str> = agents.iter().map(|(name, _)| name.as_str()).collect();
        names.sort_unstable();
        if let Some([name]) = names.chunk_by(|a, b| a == b).find(|run| run.len() == 1) {
            return Ok(Some(SampleAgent {
                name: name.to_string(),
                campaign: campaign.name.clone(),
            }));
        }
    }
    Ok(None)
}
