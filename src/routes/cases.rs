//! `/v1/cases` and `/v1/lists`: sending cases in bulk and reading them back.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Authorized, CasesRead, CasesWrite};
use crate::domain::case::{CaseInput, DateInput};
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::ingest::cases::{Accepted, CaseIngest, ListSpec, OnConflict, Outcome, resolve_list};
use crate::ingest::rows_rejected;
use crate::routes::{Page, PageQuery};
use crate::startup::AppState;
use crate::store::cases::{Case, CaseFilter, CaseList};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_cases)
        .service(list_cases)
        .service(get_case)
        .service(list_lists)
        .service(get_list);
}

fn atomic_by_default() -> bool {
    true
}

/// A bulk insert of cases.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "list": {"name": "November calls", "assignment": {"kind": "group", "id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa"}},
    "on_conflict": "error", "atomic": true,
    "cases": [
        {"external_id": "T-1", "staff_id": "A-1001", "channel": "live_hotline", "data": {"Duration": 312}},
        {"external_id": "T-2", "external_staff_id": "crm-77", "channel": "form", "priority": "low"}
    ]
}))]
pub struct CasesRequest {
    /// A new list for these cases, and who may score it.
    pub list: Option<ListSpec>,
    /// What to do with an `external_id` this integration sent before (default `error`).
    #[serde(default)]
    pub on_conflict: OnConflict,
    /// `true` (default): any invalid case fails the request and nothing is
    /// written. `false`: valid cases are written, each row gets its result.
    #[serde(default = "atomic_by_default")]
    pub atomic: bool,
    /// One or more cases; no limit beyond the body limit.
    pub cases: Vec<CaseInput>,
}

/// One case of the answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseRef {
    pub id: Uuid,
    pub external_id: String,
    pub outcome: Outcome,
}

/// Every case was written (atomic requests).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"list_id": "019a8c12-5555-7000-8000-000000000006", "created": 2, "updated": 0, "skipped": 0,
    "cases": [{"id": "019a8c12-4444-7000-8000-000000000005", "external_id": "T-1", "outcome": "created"},
              {"id": "019a8c12-4444-7000-8000-000000000007", "external_id": "T-2", "outcome": "created"}]}))]
pub struct CasesCreated {
    pub list_id: Option<Uuid>,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    /// In request order.
    pub cases: Vec<CaseRef>,
}

/// One row of a non-atomic request: its case, or its problems.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowResult {
    /// 1-based index in `cases`.
    pub row: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Per-row results (non-atomic requests).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"list_id": null, "created": 1, "updated": 0, "skipped": 0, "failed": 1, "results": [
    {"row": 1, "id": "019a8c12-4444-7000-8000-000000000005", "outcome": "created"},
    {"row": 2, "errors": [{"row": 2, "field": "channel", "code": "invalid_enum", "message": "\"fax\" is not a channel; expected one of: form, live_hotline, survey"}]}
]}))]
pub struct CasesResults {
    pub list_id: Option<Uuid>,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
    pub results: Vec<RowResult>,
}

fn count(accepted: &[Accepted], outcome: Outcome) -> u64 {
    accepted.iter().filter(|a| a.outcome == outcome).count() as u64
}

/// Insert cases
///
/// Validates every case (the same validators as the CSV uploader), resolves
/// each staff member among the integration's groups, and writes the batch in
/// one transaction (COPY on PostgreSQL). `atomic: true` (default): any
/// invalid case answers 422 listing every invalid case with its `row`, and
/// nothing is written. `atomic: false`: valid cases are written and every
/// row gets its result (200).
#[utoipa::path(
    tag = "cases",
    request_body = CasesRequest,
    responses(
        (status = 201, description = "Every case was written", body = CasesCreated),
        (status = 200, description = "`atomic: false`: per-row results", body = CasesResults),
        (status = 422, description = "Invalid cases (`validation_failed`, rows in `errors`: `missing_external_id`, `unknown_staff_id`, `invalid_enum`, `channel_not_importable`, `unknown_category`, `invalid_date`, `duplicate_external_id`, …), or `unknown_assignment`; nothing written", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["cases:write"]))
)]
#[post("/cases")]
pub async fn create_cases(
    auth: Authorized<CasesWrite>,
    state: web::Data<AppState>,
    body: web::Json<CasesRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    let access = &auth.principal.access;
    if request.cases.is_empty() {
        return Err(ApiError::validation(
            ErrorCode::ValidationFailed,
            vec![FieldError::field(
                "cases",
                ErrorCode::Required,
                "`cases` must hold at least one case",
            )],
        ));
    }
    let list = match &request.list {
        Some(spec) => Some(resolve_list(&state.store, access, spec, "api", "list.").await?),
        None => None,
    };
    let mut ingest = CaseIngest::new(
        &state.store,
        access,
        request.on_conflict,
        DateInput::Rfc3339,
    )
    .await?;
    let total = request.cases.len() as u64;
    let rows = request
        .cases
        .into_iter()
        .enumerate()
        .map(|(i, c)| (i as u64 + 1, c))
        .collect();
    let batch = ingest.prepare(rows).await?;
    let integration = access.integration_id.to_string();
    if request.atomic && !batch.errors.is_empty() {
        state.metrics.count_rows(&integration, "json", 0, total);
        return Err(rows_rejected(
            ErrorCode::ValidationFailed,
            batch.errors,
            batch.failed_rows,
        ));
    }
    state
        .store
        .write_cases(access.integration_id, list.as_ref(), &batch.inserts, &batch.updates)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Duplicate(_) => ApiError::new(
                ErrorCode::DuplicateExternalId,
                "Another request wrote one of these Case IDs at the same time; nothing was written. Retry.",
            ),
            other => other.into(),
        })?;
    let accepted = batch.accepted;
    state.metrics.count_rows(
        &integration,
        "json",
        accepted.len() as u64,
        batch.failed_rows,
    );
    let (created, updated, skipped) = (
        count(&accepted, Outcome::Created),
        count(&accepted, Outcome::Updated),
        count(&accepted, Outcome::Skipped),
    );
    let list_id = list.map(|l| l.id);
    if request.atomic {
        return Ok(HttpResponse::Created().json(CasesCreated {
            list_id,
            created,
            updated,
            skipped,
            cases: accepted
                .into_iter()
                .map(|a| CaseRef {
                    id: a.id,
                    external_id: a.external_id,
                    outcome: a.outcome,
                })
                .collect(),
        }));
    }
    let mut results: Vec<RowResult> = accepted
        .into_iter()
        .map(|a| RowResult {
            row: a.row,
            id: Some(a.id),
            outcome: Some(a.outcome),
            errors: Vec::new(),
        })
        .collect();
    let mut errors = batch.errors;
    errors.sort_by_key(|e| e.row);
    for error in errors {
        let row = error.row.unwrap_or_default();
        match results.last_mut() {
            Some(last) if last.row == row && last.id.is_none() => last.errors.push(error),
            _ => results.push(RowResult {
                row,
                id: None,
                outcome: None,
                errors: vec![error],
            }),
        }
    }
    results.sort_by_key(|r| r.row);
    Ok(HttpResponse::Ok().json(CasesResults {
        list_id,
        created,
        updated,
        skipped,
        failed: batch.failed_rows,
        results,
    }))
}

/// Filters of the case collection.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseQuery {
    /// Only the cases of this list.
    pub list_id: Option<Uuid>,
    /// Only the cases of this staff member (Staff ID).
    pub staff_id: Option<String>,
    /// Only the case with this Case ID.
    pub external_id: Option<String>,
}

/// List cases
///
/// The cases of the integration's groups, in creation order, a page at a time.
#[utoipa::path(
    tag = "cases",
    params(CaseQuery, PageQuery),
    responses((status = 200, description = "A page of cases", body = Page<Case>)),
    security(("bearer" = ["cases:read"]), ("bearer" = ["cases:write"]))
)]
#[get("/cases")]
pub async fn list_cases(
    auth: Authorized<CasesRead>,
    state: web::Data<AppState>,
    filter: web::Query<CaseQuery>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    let filter = filter.into_inner();
    let filter = CaseFilter {
        list_id: filter.list_id,
        staff_id: filter.staff_id,
        external_id: filter.external_id,
    };
    let rows = state
        .store
        .list_cases(
            auth.principal.access.groups(),
            &filter,
            page.after,
            page.fetch(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, page, |c| c.id)))
}

/// Get a case
///
/// A case of the integration's groups; any other answers like a missing one.
#[utoipa::path(
    tag = "cases",
    params(("id" = Uuid, Path, description = "The case's id")),
    responses(
        (status = 200, description = "The case", body = Case),
        (status = 404, description = "`case_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["cases:read"]), ("bearer" = ["cases:write"]))
)]
#[get("/cases/{id}")]
pub async fn get_case(
    auth: Authorized<CasesRead>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let case = auth
        .principal
        .access
        .visible(state.store.get_case(*id).await?)
        .ok_or_else(|| ApiError::new(ErrorCode::CaseNotFound, "No case has this id."))?;
    Ok(HttpResponse::Ok().json(case))
}

/// List case lists
///
/// The lists assigned within the integration's groups, in creation order.
#[utoipa::path(
    tag = "cases",
    params(PageQuery),
    responses((status = 200, description = "A page of lists", body = Page<CaseList>)),
    security(("bearer" = ["cases:read"]), ("bearer" = ["cases:write"]))
)]
#[get("/lists")]
pub async fn list_lists(
    auth: Authorized<CasesRead>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    let rows = state
        .store
        .list_case_lists(auth.principal.access.groups(), page.after, page.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, page, |l| l.id)))
}

/// Get a case list
///
/// A list with its assignment and case count.
#[utoipa::path(
    tag = "cases",
    params(("id" = Uuid, Path, description = "The list's id")),
    responses(
        (status = 200, description = "The list", body = CaseList),
        (status = 404, description = "`list_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["cases:read"]), ("bearer" = ["cases:write"]))
)]
#[get("/lists/{id}")]
pub async fn get_list(
    auth: Authorized<CasesRead>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let list = auth
        .principal
        .access
        .visible(state.store.get_case_list(*id).await?)
        .ok_or_else(|| ApiError::new(ErrorCode::ListNotFound, "No list has this id."))?;
    Ok(HttpResponse::Ok().json(list))
}
