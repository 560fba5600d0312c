//! `/v1/cases` and `/v1/lists`: sending cases in bulk and reading them back.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::access::GroupAccess;
use crate::auth::{Authorized, CasesRead, CasesWrite};
use crate::domain::case::{CaseInput, DateInput};
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::ingest::cases::{
    Accepted, AssignmentKind, AssignmentSpec, CaseIngest, ListFields, ListSpec, OnConflict,
    Outcome, resolve_list,
};
use crate::ingest::ndjson::NdjsonLines;
use crate::ingest::pipeline::{CasePipeline, FIRST_BATCH, Writes, batch_size};
use crate::routes::{Page, PageQuery, json_body_error, json_part_error, read_body};
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
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"list_id": "019a8c12-5555-7000-8000-000000000006", "created": 250000, "updated": 0, "skipped": 0, "failed": 0}))]
pub struct StreamSummary {
    pub list_id: Option<Uuid>,
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

fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub(crate) enum BodyKind {
    Json,
    Ndjson,
}

pub(crate) fn body_kind(req: &HttpRequest) -> Result<BodyKind, ApiError> {
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match mime.as_str() {
        "application/json" => Ok(BodyKind::Json),
        m if m.starts_with("application/") && m.ends_with("+json") => Ok(BodyKind::Json),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines" => Ok(BodyKind::Ndjson),
        _ => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Send the body as `Content-Type: application/json` or `application/x-ndjson`.",
        )),
    }
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
        (CaseInput = "application/x-ndjson", example = json!({"external_id": "T-1", "staff_id": "A-1001", "channel": "form"}))
    )),
    responses(
        (status = 201, description = "Every case was written (JSON: `CasesCreated`; NDJSON: `StreamSummary`)", body = CasesCreated),
        (status = 200, description = "`atomic: false`: per-row results (JSON: `CasesResults`; NDJSON: `StreamSummary`)", body = CasesResults),
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
    match body_kind(&req)? {
        BodyKind::Json => {
            if !options.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::InvalidQuery,
                    "With application/json the options go in the body (`list`, `on_conflict`, `atomic`).",
                ));
            }
            let body = read_body(&req, payload, &state.settings).await?.freeze();
            // A large body is parsed on a blocking thread, not on a worker
            // that serves other requests meanwhile.
            let request = if body.len() > BLOCKING_PARSE_BYTES {
                web::block(move || ParsedCases::parse(body))
                    .await
                    .map_err(|e| ApiError::internal(anyhow::anyhow!("parsing the body: {e}")))??
            } else {
                ParsedCases::parse(body)?
            };
            // More than one batch holds a writer for a while: bulk.
            let _bulk = if request.cases.len() > FIRST_BATCH {
                Some(state.bulk.enter()?)
            } else {
                None
            };
            // A few new cases (the default `on_conflict: error`, no list):
            // written on the assumption that their Case IDs are new, without
            // looking them up first. If one is not, the database refuses
            // the insert and the request runs again with the lookup, to
            // answer exactly as it would have (422 naming the row).
            let optimistic = request.cases.len() <= FIRST_BATCH
                && request.on_conflict == OnConflict::Error
                && request.list.is_none();
            if optimistic {
                let retry = request.clone();
                match create_from_json(&auth.principal.access, &state, request, true).await {
                    Err(e) if e.code == ErrorCode::DuplicateExternalId => {
                        create_from_json(&auth.principal.access, &state, retry, false).await
                    }
                    answer => answer,
                }
            } else {
                create_from_json(&auth.principal.access, &state, request, false).await
            }
        }
        BodyKind::Ndjson => {
            let _bulk = state.bulk.enter()?;
            create_from_ndjson(&auth.principal.access, &state, payload, &options).await
        }
    }
}

/// Bodies larger than this are parsed on a blocking thread.
const BLOCKING_PARSE_BYTES: usize = 1 << 20;

/// A JSON cases request, parsed: its options, and where each case's JSON
/// lies in the body (each is parsed when its batch comes, so that parsing
/// overlaps the writing of earlier batches).
#[derive(Clone)]
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
}

/// `assume_new`: the Case IDs are not looked up (see `create_cases`).
async fn create_from_json(
    access: &GroupAccess,
    state: &AppState,
    request: ParsedCases,
    assume_new: bool,
) -> Result<HttpResponse, ApiError> {
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
    // The list's checks and the validators' categories, side by side.
    let (list, mut ingest) = tokio::try_join!(
        async {
            match &request.list {
                Some(spec) => resolve_list(&state.store, access, spec, "api", ListFields::Body)
                    .await
                    .map(Some),
                None => Ok(None),
            }
        },
        CaseIngest::new(
            &state.store,
            access,
            &state.access,
            request.on_conflict,
            DateInput::Rfc3339
        ),
    )?;
    if assume_new {
        ingest = ingest.assuming_new_case_ids();
    }
    if request.cases.len() <= FIRST_BATCH {
        ingest = ingest.with_cached_staff(&state.staff).await?;
    }
    let total = request.cases.len() as u64;
    let integration = access.integration_id.to_string();
    let writes = if request.atomic {
        Writes::Atomic
    } else {
        Writes::ValidRows
    };
    let mut pipeline = CasePipeline::new(
        &state.store,
        access.integration_id,
        list.as_ref(),
        writes,
        true,
    );
    if !request.atomic {
        // Every row gets its result, the failed ones too: no cap on the
        // problems listed (the body limit bounds them).
        pipeline = pipeline.listing_every_problem();
    }
    if request.cases.len() <= FIRST_BATCH {
        pipeline = pipeline.single_batch();
    }
    let batch_size = batch_size(request.cases.len(), MIN_WRITE_BATCH, WRITE_BATCH);
    // Nothing is written while the first batch is validated: a small one
    // sets the writer going sooner.
    let mut size = FIRST_BATCH.min(batch_size);
    let body = request.body;
    let mut cases = request.cases.into_iter().enumerate();
    loop {
        let rows: Vec<(u64, CaseInput)> = cases
            .by_ref()
            .take(std::mem::replace(&mut size, batch_size))
            .map(|(i, raw)| {
                serde_json::from_slice(&body[raw])
                    .map(|case| (i as u64 + 1, case))
                    .map_err(|e| json_part_error(&e, Some(&format!("cases[{i}]"))))
            })
            .collect::<Result<_, _>>()?;
        if rows.is_empty() {
            break;
        }
        pipeline.feed(&mut ingest, rows, Vec::new()).await?;
    }
    if pipeline.rejected() {
        state.metrics.count_rows(&integration, "json", 0, total);
        return Err(pipeline.errors.into_rejection(ErrorCode::ValidationFailed));
    }
    let accepted = std::mem::take(&mut pipeline.accepted);
    let errors = std::mem::take(&mut pipeline.errors);
    let (taken, failed) = (accepted.len() as u64, errors.failed_rows);
    let (created, updated, skipped) = (pipeline.created, pipeline.updated, pipeline.skipped);
    let list_id = list.as_ref().map(|l| l.id);
    let atomic = request.atomic;
    // The answer (every case's id: a megabyte for 10,000) is serialized on
    // another thread while the database finishes the last batch, and sent
    // once the transaction is committed.
    let answer = web::block(move || {
        if atomic {
            return serde_json::to_vec(&CasesCreated {
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
            });
        }
        serde_json::to_vec(&CasesResults {
            list_id,
            created,
            updated,
            skipped,
            failed: errors.failed_rows,
            results: row_results(accepted, errors.listed),
        })
    });
    let (written, answer) = tokio::join!(pipeline.finish(), answer);
    written?;
    let answer = answer
        .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?
        .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
    state
        .metrics
        .count_rows(&integration, "json", taken, failed);
    let mut response = if atomic {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .content_type(header::ContentType::json())
        .body(answer))
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

/// Cases per batch of a JSON request (written while the next is validated).
const WRITE_BATCH: usize = 10_000;

/// The smallest batch a JSON request is cut into (two lookups each).
const MIN_WRITE_BATCH: usize = 500;

/// Cases per batch of an NDJSON stream (one staff and one Case ID lookup each).
const STREAM_BATCH: usize = 5_000;

async fn create_from_ndjson(
    access: &GroupAccess,
    state: &AppState,
    payload: web::Payload,
    options: &StreamOptions,
) -> Result<HttpResponse, ApiError> {
    let atomic = options.atomic.unwrap_or(true);
    let spec = options.list_spec()?;
    let (list, mut ingest) = tokio::try_join!(
        async {
            match &spec {
                Some(spec) => {
                    resolve_list(&state.store, access, spec, "api", ListFields::Parameters)
                        .await
                        .map(Some)
                }
                None => Ok(None),
            }
        },
        CaseIngest::new(
            &state.store,
            access,
            &state.access,
            options.on_conflict.unwrap_or_default(),
            DateInput::Rfc3339
        ),
    )?;
    let writes = if atomic {
        Writes::Atomic
    } else {
        Writes::ValidRowsEachBatch
    };
    let mut pipeline = CasePipeline::new(
        &state.store,
        access.integration_id,
        list.as_ref(),
        writes,
        false,
    );
    let mut lines = NdjsonLines::new(
        payload,
        state.settings.max_body_bytes,
        state.settings.max_stream_bytes,
        state.settings.body_timeout,
    );
    loop {
        // A small first batch sets the writer going sooner.
        let size = if lines.rows == 0 {
            FIRST_BATCH
        } else {
            STREAM_BATCH
        };
        let (batch, broken) = lines.next_batch::<CaseInput>(size).await?;
        if batch.is_empty() && broken.is_empty() {
            break;
        }
        pipeline.feed(&mut ingest, batch, broken).await?;
    }
    if lines.rows == 0 {
        return Err(ApiError::validation(
            ErrorCode::ValidationFailed,
            vec![FieldError::field(
                "cases",
                ErrorCode::Required,
                "the stream holds no case",
            )],
        ));
    }
    pipeline.finish().await?;
    let integration = access.integration_id.to_string();
    if pipeline.rejected() {
        state
            .metrics
            .count_rows(&integration, "ndjson", 0, lines.rows);
        return Err(pipeline.errors.into_rejection(ErrorCode::ValidationFailed));
    }
    let accepted = pipeline.created + pipeline.updated + pipeline.skipped;
    state.metrics.count_rows(
        &integration,
        "ndjson",
        accepted,
        pipeline.errors.failed_rows,
    );
    let unlisted = pipeline.errors.unlisted();
    let summary = StreamSummary {
        list_id: list.as_ref().map(|l| l.id),
        created: pipeline.created,
        updated: pipeline.updated,
        skipped: pipeline.skipped,
        failed: pipeline.errors.failed_rows,
        errors: pipeline.errors.listed,
        errors_not_listed: unlisted,
    };
    Ok(if atomic {
        HttpResponse::Created().json(summary)
    } else {
        HttpResponse::Ok().json(summary)
    })
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
