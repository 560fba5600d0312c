//! `/v1/cases` and `/v1/lists`: sending cases in bulk and reading them back.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Authorized, CasesRead, CasesWrite};
use crate::domain::access::GroupAccess;
use crate::domain::case::{CaseInput, DateInput};
use crate::error::{ApiError, ErrorCode, FieldError, Problem, json_body_error};
use crate::ids::{CaseId, ListId};
use crate::ingest::cases::{
    Accepted, AssignmentKind, AssignmentSpec, CaseRun, CasesIngested, FIRST_BATCH, ListFields,
    ListSpec, OnConflict, Outcome, ingest_cases, ingest_cases_optimistically,
};
use crate::ingest::engine::{Commits, Keep, Problems, RunOptions, Writes};
use crate::ingest::ndjson::NdjsonLines;
use crate::ingest::sources::{JsonArray, Ndjson};
use crate::ingest::staff::ExternalIdDrift;
use crate::routes::extract::body::{
    BodyKind, body_kind, parse_off_the_worker, payload_stream, read_body,
};
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
    "list": {"name": "November calls", "assignment": {"kind": "evaluator", "id": "DEMO-E1"}},
    "on_conflict": "error", "atomic": true,
    "cases": [
        {"external_id": "T-1", "staff_id": "DEMO-A1", "channel": "live_hotline", "category": "General", "data": {"Duration": 312}},
        {"external_id": "T-2", "external_staff_id": "crm-DEMO-A1", "channel": "form", "priority": "low"}
    ]
}))]
pub struct CasesRequest<'a> {
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
    // Read as each case's JSON text and parsed when its batch comes, so that
    // parsing overlaps the writing of earlier batches; a case that does not
    // parse fails the request as a malformed body would.
    #[serde(borrow)]
    #[schema(value_type = Vec<CaseInput>)]
    pub cases: Vec<&'a RawValue>,
}

/// One case of the answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseRef {
    #[schema(value_type = uuid::Uuid)]
    pub id: CaseId,
    pub external_id: String,
    pub outcome: Outcome,
}

/// Every case was written (atomic requests).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"list_id": "019a8c12-5555-7000-8000-000000000006", "created": 2, "updated": 0, "skipped": 0,
    "cases": [{"id": "019a8c12-4444-7000-8000-000000000005", "external_id": "T-1", "outcome": "created"},
              {"id": "019a8c12-4444-7000-8000-000000000007", "external_id": "T-2", "outcome": "created"}]}))]
pub struct CasesCreated {
    #[schema(value_type = Option<uuid::Uuid>)]
    pub list_id: Option<ListId>,
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
    #[schema(value_type = Option<uuid::Uuid>)]
    pub id: Option<CaseId>,
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
    #[schema(value_type = Option<uuid::Uuid>)]
    pub list_id: Option<ListId>,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
    pub results: Vec<RowResult>,
}

/// Options of an NDJSON stream (a JSON body carries them itself).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamOptions {
    /// NDJSON: what to do with a Case ID sent before (default `error`).
    pub on_conflict: Option<OnConflict>,
    /// NDJSON: `true` (default) writes all or nothing.
    pub atomic: Option<bool>,
    /// NDJSON: a new list for the cases; needs one of the `assign_*`.
    pub list_name: Option<String>,
    /// NDJSON: the list's group (id). Where several `assign_*` are given, the
    /// left-most wins: group, then team, then evaluator.
    pub assign_group: Option<String>,
    /// NDJSON: the list's team (id).
    pub assign_team: Option<String>,
    /// NDJSON: the list's evaluator (Staff ID).
    pub assign_evaluator: Option<String>,
}

impl StreamOptions {
    fn is_empty(&self) -> bool {
        self.on_conflict.is_none()
            && self.atomic.is_none()
            && self.list_name.is_none()
            && self.assign_group.is_none()
            && self.assign_team.is_none()
            && self.assign_evaluator.is_none()
    }

    /// The list the options name: a name and the left-most assignment given.
    pub fn list_spec(&self) -> Result<Option<ListSpec>, ApiError> {
        let assignment = [
            (AssignmentKind::Group, &self.assign_group),
            (AssignmentKind::Team, &self.assign_team),
            (AssignmentKind::Evaluator, &self.assign_evaluator),
        ]
        .into_iter()
        .find_map(|(kind, id)| {
            id.as_deref()
                .filter(|id| !id.trim().is_empty())
                .map(|id| AssignmentSpec {
                    kind,
                    id: id.to_string(),
                })
        });
        let name = self.list_name.as_deref().filter(|n| !n.trim().is_empty());
        match (name, assignment) {
            (None, None) => Ok(None),
            (Some(name), Some(assignment)) => Ok(Some(ListSpec {
                name: name.to_string(),
                assignment,
            })),
            (Some(_), None) => Err(ApiError::validation(
                ErrorCode::ValidationFailed,
                vec![FieldError::field(
                    "assign_group",
                    ErrorCode::Required,
                    "a list needs an assignment: assign_group, assign_team or assign_evaluator",
                )],
            )),
            (None, Some(_)) => Err(ApiError::validation(
                ErrorCode::ValidationFailed,
                vec![FieldError::field(
                    "list_name",
                    ErrorCode::Required,
                    "an assignment needs a list_name",
                )],
            )),
        }
    }
}

/// The answer to an NDJSON stream: counts, and the problems of the rows that
/// failed (`atomic: false`). Case ids are not listed (a stream has no
/// length limit); read them with `GET /v1/cases?list_id=`.
// (`deny_unknown_fields` only states, in the schema, that it has no other
// field: it tells it apart from `CasesResults` in `CasesAnswered`.)
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"list_id": "019a8c12-5555-7000-8000-000000000006", "created": 250000, "updated": 0, "skipped": 0, "failed": 0}))]
pub struct StreamSummary {
    #[schema(value_type = Option<uuid::Uuid>)]
    pub list_id: Option<ListId>,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
    /// The first 1,000 problems, each with its `row` (1-based case index in
    /// the stream; blank lines are not cases).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Problems beyond those listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub errors_not_listed: u64,
}

/// The answer of an atomic request: `CasesCreated` to a JSON body,
/// `StreamSummary` to an NDJSON stream.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documents the answer
enum CasesWritten {
    Created(CasesCreated),
    Stream(StreamSummary),
}

/// The answer of a non-atomic request: `CasesResults` to a JSON body,
/// `StreamSummary` to an NDJSON stream.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documents the answer
enum CasesAnswered {
    Results(CasesResults),
    Stream(StreamSummary),
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Insert cases
///
/// Validates every case (the same validators as the CSV uploader), resolves
/// each staff member among the integration's groups, and writes in one
/// transaction (COPY on PostgreSQL).
///
/// `application/json`: `{list?, on_conflict?, atomic?, cases: [...]}`.
/// `atomic: true` (default): any invalid case answers 422 listing every
/// invalid case with its `row`, and nothing is written. `atomic: false`:
/// valid cases are written and every row gets its result (200).
///
/// `on_conflict` says what a Case ID this integration sent before does:
/// `error` (default, `duplicate_external_id`), `skip`, or `update`: the
/// stored case changes only in what the input carries (`channel`, `status`,
/// `priority`, `category`, `occurred_at` left out keep their values; `data`
/// is merged key by key, stored columns keeping their order and new ones
/// following in the order sent) and moves into the new list, if any.
///
/// `application/x-ndjson`: one case per line, options in the query string;
/// the stream is validated and written as it arrives, in batches, with no
/// length limit but `INTAKE_MAX_STREAM_BYTES` (each line is held to the body
/// limit). Atomic streams are one transaction: a broken-off stream writes
/// nothing. Non-atomic streams commit batch by batch (5,000 cases).
#[utoipa::path(
    tag = "cases",
    params(StreamOptions),
    request_body(content(
        (CasesRequest = "application/json"),
        (CaseInput = "application/x-ndjson", example = json!({"external_id": "T-3", "staff_id": "DEMO-A1", "channel": "form"}))
    )),
    responses(
        (status = 201, description = "Every case was written (JSON: `CasesCreated`; NDJSON: `StreamSummary`)", body = CasesWritten),
        (status = 200, description = "`atomic: false`: per-row results (JSON: `CasesResults`; NDJSON: `StreamSummary`)", body = CasesAnswered),
        (status = 422, description = "Invalid cases (`validation_failed`, rows in `errors`: `missing_external_id`, `unknown_staff_id`, `invalid_enum`, `channel_not_importable`, `unknown_category`, `invalid_date`, `duplicate_external_id`, …), or `unknown_assignment`; nothing written", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "`body_timeout`: the body stalled (no byte for `INTAKE_BODY_TIMEOUT_MS`); nothing written", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`server_busy`: as many bulk ingestions as the server writes at once are running (streams, uploads, JSON bodies of more than 100 rows); retry after `Retry-After`. Or `service_unavailable`: the database is down", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another request wrote one of these Case IDs first (`duplicate_external_id`) or changed a staff member, group or list they refer to (`concurrent_write`) while they were written; nothing of the request (of a non-atomic stream: of that batch and after, and `committed` says what the earlier batches stored) was written. Retry.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["cases:write"]))
)]
#[post("/cases")]
pub async fn create_cases(
    auth: Authorized<CasesWrite>,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    options: web::Query<StreamOptions>,
) -> Result<HttpResponse, ApiError> {
    let access = &auth.principal.access;
    let services = state.services();
    match body_kind(&req)? {
        BodyKind::Json => {
            if !options.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::InvalidQuery,
                    "With application/json the options go in the body (`list`, `on_conflict`, `atomic`).",
                ));
            }
            let body = read_body(&req, payload, &state.settings).await?.freeze();
            let mut request = parse_off_the_worker(body, ParsedCases::parse).await?;
            // More than one batch holds a writer for a while: bulk.
            let _bulk = (request.cases.len() > FIRST_BATCH)
                .then(|| state.bulk.enter())
                .transpose()?;
            let cases = std::mem::take(&mut request.cases);
            let source = JsonArray::new(request.body.clone(), cases, "cases");
            let run = request.run(access);
            let ingested = ingest_cases_optimistically(services, &run, source).await?;
            answer_json(ingested, request.atomic).await
        }
        BodyKind::Ndjson => {
            let _bulk = state.bulk.enter()?;
            let spec = options.list_spec()?;
            let run = options.run(access, spec.as_ref());
            let lines = NdjsonLines::new(
                payload_stream(payload),
                state.settings.max_body_bytes,
                state.settings.max_stream_bytes,
                state.settings.body_timeout,
            );
            let mut source = Ndjson::new(lines, "cases", "case");
            let ingested = ingest_cases(services, &run, &mut source).await?;
            answer_stream(ingested, run.options.writes == Writes::Atomic)
        }
    }
}

/// A JSON cases request, parsed: its options, and where each case's JSON
/// lies in the body (each is parsed when its batch comes, so that parsing
/// overlaps the writing of earlier batches).
struct ParsedCases {
    list: Option<ListSpec>,
    on_conflict: OnConflict,
    atomic: bool,
    body: web::Bytes,
    cases: Vec<std::ops::Range<usize>>,
}

impl ParsedCases {
    fn parse(body: web::Bytes) -> Result<ParsedCases, ApiError> {
        let request: CasesRequest =
            serde_json::from_slice(&body).map_err(|e| json_body_error(&e))?;
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
        // A raw value borrows its text from the body: its place in it.
        let base = body.as_ptr() as usize;
        let cases = request
            .cases
            .iter()
            .map(|raw| {
                let start = raw.get().as_ptr() as usize - base;
                start..start + raw.get().len()
            })
            .collect();
        Ok(ParsedCases {
            list: request.list,
            on_conflict: request.on_conflict,
            atomic: request.atomic,
            cases,
            body,
        })
    }

    fn run<'a>(&'a self, access: &'a GroupAccess) -> CaseRun<'a> {
        CaseRun {
            access,
            list: self.list.as_ref(),
            list_fields: ListFields::Body,
            list_source: "api",
            on_conflict: self.on_conflict,
            dates: DateInput::Rfc3339,
            drift: ExternalIdDrift::Refused,
            options: RunOptions {
                writes: if self.atomic {
                    Writes::Atomic
                } else {
                    Writes::ValidRows(Commits::Once)
                },
                keep: Keep::All,
                // Every row gets its result, the failed ones too: no cap on
                // the problems listed (the body limit bounds them).
                problems: if self.atomic {
                    Problems::FirstThousand
                } else {
                    Problems::Every
                },
            },
            path: "json",
        }
    }
}

impl StreamOptions {
    fn run<'a>(&self, access: &'a GroupAccess, list: Option<&'a ListSpec>) -> CaseRun<'a> {
        let atomic = self.atomic.unwrap_or(true);
        CaseRun {
            access,
            list,
            list_fields: ListFields::Parameters,
            list_source: "api",
            on_conflict: self.on_conflict.unwrap_or_default(),
            dates: DateInput::Rfc3339,
            drift: ExternalIdDrift::Refused,
            options: RunOptions {
                writes: if atomic {
                    Writes::Atomic
                } else {
                    Writes::ValidRows(Commits::EachBatch)
                },
                keep: Keep::Counts,
                problems: Problems::FirstThousand,
            },
            path: "ndjson",
        }
    }
}

/// The answer to a JSON request: every case (atomic), or every row's
/// result. Serialized on another thread past one batch's rows (a megabyte
/// for 10,000 cases); on the worker for a few (a thread hop would cost a
/// one-case request more than the serializing).
async fn answer_json(ingested: CasesIngested, atomic: bool) -> Result<HttpResponse, ApiError> {
    let CasesIngested { summary, list } = ingested;
    if summary.rejected {
        return Err(summary.errors.into_rejection(ErrorCode::ValidationFailed));
    }
    let list_id = list.map(|l| l.id);
    let (created, updated, skipped) = (summary.created, summary.updated, summary.skipped);
    let few = summary.results.len() + summary.errors.listed.len() <= FIRST_BATCH;
    let serialize = move || {
        if atomic {
            let cases = summary.results.into_iter().map(|a| CaseRef {
                id: a.id,
                external_id: a.external_id,
                outcome: a.outcome,
            });
            return serde_json::to_vec(&CasesCreated {
                list_id,
                created,
                updated,
                skipped,
                cases: cases.collect(),
            });
        }
        serde_json::to_vec(&CasesResults {
            list_id,
            created,
            updated,
            skipped,
            failed: summary.failed(),
            results: row_results(summary.results, summary.errors.listed),
        })
    };
    let answer = if few {
        serialize()
    } else {
        web::block(serialize)
            .await
            .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?
    }
    .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
    let mut response = if atomic {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .content_type(header::ContentType::json())
        .body(answer))
}

/// The answer to an NDJSON stream: counts and the first problems.
fn answer_stream(ingested: CasesIngested, atomic: bool) -> Result<HttpResponse, ApiError> {
    let CasesIngested { summary, list } = ingested;
    if summary.rejected {
        return Err(summary.errors.into_rejection(ErrorCode::ValidationFailed));
    }
    let unlisted = summary.errors.unlisted();
    let answer = StreamSummary {
        list_id: list.map(|l| l.id),
        created: summary.created,
        updated: summary.updated,
        skipped: summary.skipped,
        failed: summary.failed(),
        errors: summary.errors.listed,
        errors_not_listed: unlisted,
    };
    Ok(if atomic {
        HttpResponse::Created().json(answer)
    } else {
        HttpResponse::Ok().json(answer)
    })
}

/// The per-row answer of a non-atomic request, in row order.
fn row_results(accepted: Vec<Accepted>, errors: Vec<FieldError>) -> Vec<RowResult> {
    let mut results: Vec<RowResult> = accepted
        .into_iter()
        .map(|a| RowResult {
            row: a.row,
            id: Some(a.id),
            outcome: Some(a.outcome),
            errors: Vec::new(),
        })
        .collect();
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
    results
}

/// Filters of the case collection.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseQuery {
    /// Only the cases of this list.
    #[param(value_type = Option<uuid::Uuid>)]
    pub list_id: Option<ListId>,
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
            page.after_id(),
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
    id: web::Path<CaseId>,
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
        .list_case_lists(
            auth.principal.access.groups(),
            page.after_id(),
            page.fetch(),
        )
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
    id: web::Path<ListId>,
) -> Result<HttpResponse, ApiError> {
    let list = auth
        .principal
        .access
        .visible(state.store.get_case_list(*id).await?)
        .ok_or_else(|| ApiError::new(ErrorCode::ListNotFound, "No list has this id."))?;
    Ok(HttpResponse::Ok().json(list))
}
