//! `/v1/imports`: import jobs. A file is uploaded, checked and staged
//! (201, the job awaiting confirmation with its preview and problems),
//! confirmed (202, written batch by batch in the background by whichever
//! replica holds the job), followed, cancelled, and its failed rows
//! downloaded as a CSV to fix and upload again.

use actix_multipart::Multipart;
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use rust_xlsxwriter::{Format, Workbook, XlsxError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Authorized, ImportsRead, ImportsWrite};
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::ids::{ImportId, ListId};
use crate::ingest::cases::{ListFields, resolve_list};
use crate::ingest::imports::{
    CaseJobOptions, CheckProblems, CustomerJobOptions, ERROR_COLUMN, check_import,
};
use crate::routes::cases::StreamOptions;
use crate::routes::customers::{CUSTOMER_OPTION_FIELDS, customer_option};
use crate::routes::extract::form::read_form_to_disk;
use crate::routes::{Page, PageQuery};
use crate::startup::AppState;
use crate::store::imports::{FileFormat, ImportJob, ImportKind, ImportState, NewImport};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_import)
        .service(list_imports)
        .service(get_import)
        .service(confirm_import)
        .service(cancel_import)
        .service(import_events)
        .service(import_errors_csv)
        .service(import_errors_xlsx);
}

/// The form of an import.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the multipart form
pub struct ImportForm {
    /// The file: CSV (UTF-8, UTF-16 or a legacy encoding recognised or
    /// named by `charset`; `,`, `;` or tab), XLSX or
    /// XLS (recognised by its content, whatever its name). Cases: `Staff
    /// ID`, `External Staff ID`, `Case ID`, then your columns (and
    /// optionally `Channel`, `Status`, `Priority`, `Category`, `Occurred
    /// At`), as for `POST /v1/cases/csv`. Customers: a name and a phone
    /// column and your own, as for `POST /v1/campaigns/{id}/customers/csv`.
    /// Neither uploader's 1,000-record and 103-column limits apply.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// What the file holds: `cases` or `customers`.
    #[schema(example = "cases")]
    kind: ImportKind,
    /// A workbook's sheet, by name (the first sheet by default).
    #[schema(example = "")]
    sheet: Option<String>,
    /// A CSV's text encoding, by any WHATWG label (`windows-1255`,
    /// `latin1`, `utf-16le`, `shift_jis`, …); without it the encoding is
    /// sniffed (BOM, UTF-16, UTF-8) or recognised by a detector, and a file
    /// whose encoding cannot be told for sure answers
    /// `unsupported_encoding`. An unknown label: 422 `unknown_charset`.
    #[schema(example = "")]
    charset: Option<String>,
    /// Cases: a new list for the cases (created when the job is confirmed),
    /// with one of `assign_group`, `assign_team`, `assign_evaluator`.
    #[schema(example = "November calls")]
    list_name: Option<String>,
    #[schema(example = "")]
    assign_group: Option<String>,
    #[schema(example = "")]
    assign_team: Option<String>,
    #[schema(example = "DEMO-E1")]
    assign_evaluator: Option<String>,
    /// Customers (required): the campaign they go into, by its id (a UUID).
    #[schema(value_type = Option<String>, example = "")]
    campaign_id: Option<uuid::Uuid>,
    /// Customers: the status of every customer of the file (default the
    /// campaign's first).
    #[schema(example = "")]
    status: Option<String>,
    /// Customers: JSON object, file header → field (`name`, `phone`,
    /// `agent`, `follow_up_at`, `source_created_at`, or `fields`); headers
    /// it leaves out are matched automatically.
    #[schema(example = "")]
    mapping: Option<String>,
    /// Customers: the dialer's options, as for the customers' uploader.
    international_format: Option<bool>,
    override_existing: Option<bool>,
    update_contact_allowed: Option<bool>,
    reset_status: Option<bool>,
    unique_mode: Option<crate::domain::customer::UniqueMode>,
    /// Customers: how the file's dates are written (default `DD-MM-YYYY HH:MM`).
    #[schema(example = "")]
    date_format: Option<String>,
    /// Customers: the IANA time zone of the file's dates (default the campaign's).
    #[schema(example = "")]
    timezone: Option<String>,
}

/// An import job.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019a8c20-1111-7000-8000-000000000001", "kind": "cases", "state": "running",
    "file_name": "november.csv", "format": "csv",
    "total": 120000, "processed": 45000, "succeeded": 44990, "skipped": 0, "failed": 10,
    "rows_per_second": 9000.0, "eta_seconds": 9, "list_id": "019a8c20-2222-7000-8000-000000000002",
    "error": null, "header": ["Staff ID", "External Staff ID", "Case ID", "Reason"],
    "detected": {"encoding": "utf-8", "encoding_source": "sniffed", "bom": false, "delimiter": ",", "line_ending": "crlf"},
    "preview": [{"line": 2, "cells": {"Staff ID": "DEMO-A1", "External Staff ID": "crm-DEMO-A1", "Case ID": "T-1", "Reason": "Billing question"}}],
    "problems": {"errors": [], "error_count": 0, "failed_rows": 0, "warnings": [], "warning_count": 0},
    "created_at": "2026-12-01T09:00:00Z", "confirmed_at": "2026-12-01T09:01:00Z", "finished_at": null,
    "expires_at": "2026-12-02T09:00:00Z"
}))]
pub struct Import {
    #[schema(value_type = uuid::Uuid)]
    pub id: ImportId,
    pub kind: ImportKind,
    pub state: ImportState,
    pub file_name: String,
    pub format: FileFormat,
    /// Records in the file (blank lines aside).
    pub total: u64,
    /// Rows done: succeeded, skipped or failed (rows breaking a CSV rule
    /// count as failed from the confirmation on).
    pub processed: u64,
    pub succeeded: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Since the confirmation (running or finished jobs).
    pub rows_per_second: Option<f64>,
    /// At the current rate (running jobs).
    pub eta_seconds: Option<u64>,
    /// Cases: the list they go into (created at the confirmation).
    #[schema(value_type = Option<uuid::Uuid>)]
    pub list_id: Option<ListId>,
    /// Why a job failed or was cancelled.
    pub error: Option<String>,
    /// The file's columns.
    pub header: Vec<String>,
    /// What the file turned out to be (CSV).
    #[schema(value_type = Option<Object>)]
    pub detected: Option<serde_json::Value>,
    /// The first 20 records as parsed: `{line, cells: {column: value}}`.
    #[schema(value_type = Vec<Object>)]
    pub preview: serde_json::Value,
    /// What the check found before anything was written: the first 1,000
    /// problems by line and column, and how many there were. Rows with a
    /// problem are not written; the rest are.
    pub problems: CheckProblems,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Until when a job awaiting confirmation may be confirmed.
    pub expires_at: DateTime<Utc>,
}

impl From<ImportJob> for Import {
    fn from(job: ImportJob) -> Self {
        let elapsed = job.confirmed_at.map(|at| {
            let end = job.finished_at.unwrap_or_else(Utc::now);
            (end - at).num_milliseconds().max(1) as f64 / 1000.0
        });
        let done = job.processed.saturating_sub(job.failed.min(job.processed));
        let rate = elapsed.map(|s| (done as f64 / s * 10.0).round() / 10.0);
        let eta = match (job.state, rate) {
            (ImportState::Running, Some(rate)) if rate > 0.0 => {
                Some((job.total.saturating_sub(job.processed) as f64 / rate).ceil() as u64)
            }
            _ => None,
        };
        Import {
            id: job.id,
            kind: job.kind,
            state: job.state,
            file_name: job.file_name,
            format: job.format,
            total: job.total,
            processed: job.processed,
            succeeded: job.succeeded,
            skipped: job.skipped,
            failed: job.failed,
            rows_per_second: rate,
            eta_seconds: eta,
            list_id: job.list_id,
            error: job.error,
            header: job.header,
            detected: job.detected,
            preview: job.preview,
            problems: serde_json::from_value(job.problems).unwrap_or_default(),
            created_at: job.created_at,
            confirmed_at: job.confirmed_at,
            finished_at: job.finished_at,
            expires_at: job.expires_at,
        }
    }
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::ImportNotFound, "No import job has this id.")
}

/// The caller's job.
async fn own_job(
    state: &AppState,
    integration: crate::ids::IntegrationId,
    id: ImportId,
) -> Result<ImportJob, ApiError> {
    state
        .store
        .get_import(id)
        .await?
        .filter(|job| job.integration_id == integration)
        .ok_or_else(not_found)
}

fn form_error(field: &str, code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::validation(
        ErrorCode::ValidationFailed,
        vec![FieldError::field(field, code, message)],
    )
}

/// Start an import
///
/// Uploads a file as multipart `file` with its `kind` and options. The
/// file is streamed to disk (up to `INTAKE_IMPORT_MAX_BYTES`, 512 MB by
/// default), read under the CSV rules of `POST /v1/cases/csv` (but for its
/// 1,000-record and 103-column limits: up to 1,000 columns and 32,000
/// characters a cell here), staged, and checked by the same validators as
/// every other path. Nothing is written yet: the job answers 201 in
/// `awaiting_confirmation` with a preview of the first 20 records, the
/// totals and the problems found (each with its line and column). Confirm
/// it within `INTAKE_IMPORT_CONFIRM_TTL_SECONDS` (a day by default).
/// A CSV's encoding is sniffed, detected or named with `charset`, as for the
/// uploaders; a case file's External Staff ID other than the one stored is a
/// warning (`staff_id_mismatch`), stored as sent. One `file` part per
/// upload (400 `multiple_files`).
///
/// `curl -H "Authorization: Bearer $TOKEN" -F kind=cases -F file=@cases.csv .../v1/imports`
///
/// `curl -H "Authorization: Bearer $TOKEN" -F kind=customers -F campaign_id=$CAMPAIGN -F override_existing=true -F file=@leads.xlsx .../v1/imports`
#[utoipa::path(
    tag = "imports",
    request_body(content = ImportForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Checked and staged: awaiting confirmation", body = Import),
        (status = 413, description = "`file_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`campaign_not_found` (customers)", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`multiple_files`: more than one `file` part; `unknown_field`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_csv` (the file or its header cannot be read: every problem in `errors`), `unknown_charset`, `unsupported_file_type`, `validation_failed` (a form field, a customer status or option), `unknown_assignment`, `invalid_mapping`, `missing_column`", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "`body_timeout`: the upload stalled", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`server_busy`: as many bulk ingestions as the server takes at once are running; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["imports:write"]))
)]
#[post("/imports")]
pub async fn create_import(
    auth: Authorized<ImportsWrite>,
    state: web::Data<AppState>,
    form: Multipart,
) -> Result<HttpResponse, ApiError> {
    let settings = &state.settings;
    let access = &auth.principal.access;
    let dir = settings.data_dir.join("uploads");
    let form =
        read_form_to_disk(form, &dir, settings.import_max_bytes, settings.body_timeout).await?;
    let kind = match form.fields.iter().find(|(name, _)| name == "kind") {
        None => {
            return Err(form_error(
                "kind",
                ErrorCode::Required,
                "name what the file holds: kind=cases or kind=customers",
            ));
        }
        Some((_, kind)) => match kind.as_str() {
            "cases" => ImportKind::Cases,
            "customers" => ImportKind::Customers,
            other => {
                return Err(form_error(
                    "kind",
                    ErrorCode::InvalidEnum,
                    format!(
                        "kind must be cases or customers, not {:?}",
                        crate::error::excerpt(other)
                    ),
                ));
            }
        },
    };
    let options = match kind {
        ImportKind::Cases => {
            let options = case_options(&form.fields)?;
            // The list is checked now (it is created at the confirmation).
            if let Some(spec) = list_options(&options).list_spec()? {
                resolve_list(
                    &state.store,
                    access,
                    &spec,
                    "import",
                    ListFields::Parameters,
                )
                .await?;
            }
            serde_json::to_value(&options)
        }
        ImportKind::Customers => {
            // Its campaign, status and options are checked by the check
            // itself, before the file is read (`check_import`).
            serde_json::to_value(customer_options(&form.fields)?)
        }
    }
    .map_err(|e| ApiError::internal(anyhow::anyhow!("an import's options: {e}")))?;
    let (file, file_name) = form.file.ok_or_else(|| {
        form_error(
            "file",
            ErrorCode::Required,
            "attach the file as the form field `file`",
        )
    })?;
    let format = sniff_format(&file.path)?;
    let _bulk = state.bulk.enter()?;
    let job = NewImport {
        id: ImportId::new(),
        integration_id: access.integration_id,
        kind,
        file_name,
        format,
        options,
    };
    let job = check_import(
        state.services(),
        access,
        job,
        file,
        settings.import_confirm_ttl,
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/imports/{}", job.id)))
        .json(Import::from(job)))
}

/// A case job's options from the form's fields.
fn case_options(fields: &[(String, String)]) -> Result<CaseJobOptions, ApiError> {
    let mut options = CaseJobOptions::default();
    for (name, text) in fields {
        let text = Some(text.clone());
        match name.as_str() {
            "kind" => {}
            "list_name" => options.list_name = text,
            "assign_group" => options.assign_group = text,
            "assign_team" => options.assign_team = text,
            "assign_evaluator" => options.assign_evaluator = text,
            "sheet" => options.sheet = text,
            "charset" => {
                crate::ingest::csv::charset(text.as_deref().unwrap_or_default())?;
                options.charset = text;
            }
            other => {
                return Err(unknown_field(
                    other,
                    "list_name, assign_group, assign_team, assign_evaluator",
                ));
            }
        }
    }
    Ok(options)
}

/// A customer job's options from the form's fields.
fn customer_options(fields: &[(String, String)]) -> Result<CustomerJobOptions, ApiError> {
    let mut job = CustomerJobOptions::default();
    for (name, text) in fields {
        if customer_option(
            name,
            text,
            &mut job.status,
            &mut job.mapping,
            &mut job.options,
        )? {
            continue;
        }
        match name.as_str() {
            "kind" => {}
            "sheet" => job.sheet = Some(text.clone()),
            "charset" => {
                crate::ingest::csv::charset(text)?;
                job.charset = Some(text.clone());
            }
            "campaign_id" => {
                job.campaign_id = Some(text.trim().parse().map_err(|_| {
                    form_error(
                        "campaign_id",
                        ErrorCode::InvalidType,
                        format!(
                            "{:?} is not a campaign id (a UUID)",
                            crate::error::excerpt(text)
                        ),
                    )
                })?)
            }
            other => {
                return Err(unknown_field(
                    other,
                    &format!("campaign_id, {CUSTOMER_OPTION_FIELDS}"),
                ));
            }
        }
    }
    if job.campaign_id.is_none() {
        return Err(form_error(
            "campaign_id",
            ErrorCode::Required,
            "name the campaign the customers go into: campaign_id",
        ));
    }
    Ok(job)
}

fn unknown_field(name: &str, fields: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnknownField,
        format!(
            "Unknown form field {:?}; expected file, kind, sheet, charset, {fields}.",
            crate::error::excerpt(name)
        ),
    )
}

fn list_options(options: &CaseJobOptions) -> StreamOptions {
    StreamOptions {
        list_name: options.list_name.clone(),
        assign_group: options.assign_group.clone(),
        assign_team: options.assign_team.clone(),
        assign_evaluator: options.assign_evaluator.clone(),
        ..Default::default()
    }
}

/// The file's format by its first bytes, whatever its name: workbooks are
/// zip (XLSX) or OLE (XLS) containers; anything else is read as CSV.
fn sniff_format(path: &std::path::Path) -> Result<FileFormat, ApiError> {
    use std::io::Read;
    let mut head = [0u8; 8];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| ApiError::internal(anyhow::anyhow!("reading the upload: {e}")))?;
    let head = &head[..n];
    Ok(if head.starts_with(b"PK\x03\x04") {
        FileFormat::Xlsx
    } else if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        FileFormat::Xls
    } else {
        FileFormat::Csv
    })
}

/// List import jobs
///
/// The calling integration's jobs, in creation order.
#[utoipa::path(
    tag = "imports",
    params(PageQuery),
    responses((status = 200, description = "A page of jobs", body = Page<Import>)),
    security(("bearer" = ["imports:read"]), ("bearer" = ["imports:write"]))
)]
#[get("/imports")]
pub async fn list_imports(
    auth: Authorized<ImportsRead>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    let rows = state
        .store
        .list_imports(
            auth.principal.access.integration_id,
            page.after_id(),
            page.fetch(),
        )
        .await?;
    let rows: Vec<Import> = rows.into_iter().map(Import::from).collect();
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, page, |j| j.id)))
}

/// Get an import job
///
/// Its state and progress: `processed` of `total`, `succeeded`, `failed`,
/// the rate since the confirmation and the time left at that rate.
#[utoipa::path(
    tag = "imports",
    params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job", body = Import),
        (status = 404, description = "`import_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["imports:read"]), ("bearer" = ["imports:write"]))
)]
#[get("/imports/{id}")]
pub async fn get_import(
    auth: Authorized<ImportsRead>,
    state: web::Data<AppState>,
    id: web::Path<ImportId>,
) -> Result<HttpResponse, ApiError> {
    let job = own_job(&state, auth.principal.access.integration_id, *id).await?;
    Ok(HttpResponse::Ok().json(Import::from(job)))
}

/// Confirm an import job
///
/// The job runs: its valid rows are written batch by batch in the
/// background (each batch committed with the job's progress, so a job
/// interrupted by a restart resumes after its last committed batch on any
/// replica, and no row is written twice). A case job's list is created
/// now.
#[utoipa::path(
    tag = "imports",
    params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 202, description = "Running", body = Import),
        (status = 404, description = "`import_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`import_state_conflict`: the job is not awaiting confirmation (or its time to be confirmed ran out)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`unknown_assignment`: the list's group, team or evaluator is gone", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["imports:write"]))
)]
#[post("/imports/{id}/confirm")]
pub async fn confirm_import(
    auth: Authorized<ImportsWrite>,
    state: web::Data<AppState>,
    id: web::Path<ImportId>,
) -> Result<HttpResponse, ApiError> {
    let access = &auth.principal.access;
    let job = own_job(&state, access.integration_id, *id).await?;
    let conflict = |job: &ImportJob| {
        ApiError::new(
            ErrorCode::ImportStateConflict,
            format!(
                "The job is {}: only a job awaiting confirmation is confirmed.",
                job.state.as_str()
            ),
        )
    };
    if job.state != ImportState::AwaitingConfirmation {
        return Err(conflict(&job));
    }
    if job.expires_at <= Utc::now() {
        return Err(ApiError::new(
            ErrorCode::ImportStateConflict,
            format!(
                "The job was not confirmed in time (by {}); upload the file again.",
                job.expires_at.to_rfc3339()
            ),
        ));
    }
    let options: CaseJobOptions = match job.kind {
        ImportKind::Cases => serde_json::from_value(job.options.clone()).unwrap_or_default(),
        ImportKind::Customers => CaseJobOptions::default(),
    };
    let list = match list_options(&options).list_spec()? {
        Some(spec) => Some(
            resolve_list(
                &state.store,
                access,
                &spec,
                "import",
                ListFields::Parameters,
            )
            .await?,
        ),
        None => None,
    };
    let Some(job) = state.store.confirm_import(job.id, list.as_ref()).await? else {
        let job = own_job(&state, access.integration_id, *id).await?;
        return Err(conflict(&job));
    };
    state.imports.notify_one();
    Ok(HttpResponse::Accepted().json(Import::from(job)))
}

/// Cancel an import job
///
/// A job awaiting confirmation is dropped; a running one stops after the
/// batch in flight (which is rolled back): what was committed before
/// stays, and the job's counts say how much that was.
#[utoipa::path(
    tag = "imports",
    params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Cancelled", body = Import),
        (status = 404, description = "`import_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`import_state_conflict`: the job has finished", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["imports:write"]))
)]
#[delete("/imports/{id}")]
pub async fn cancel_import(
    auth: Authorized<ImportsWrite>,
    state: web::Data<AppState>,
    id: web::Path<ImportId>,
) -> Result<HttpResponse, ApiError> {
    let integration = auth.principal.access.integration_id;
    own_job(&state, integration, *id).await?;
    match state
        .store
        .cancel_import(*id, Some("cancelled by the client"))
        .await?
    {
        Some(job) => Ok(HttpResponse::Ok().json(Import::from(job))),
        None => {
            let job = own_job(&state, integration, *id).await?;
            Err(ApiError::new(
                ErrorCode::ImportStateConflict,
                format!("The job is {}: it cannot be cancelled.", job.state.as_str()),
            ))
        }
    }
}

/// How often a stream of events looks at its job.
const EVENTS_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// A comment sent on a quiet stream so that proxies keep it open.
const EVENTS_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// Follow an import job
///
/// Server-Sent Events (`text/event-stream`): an `import` event with the
/// job (as `GET /v1/imports/{id}` answers it) at once, one each time its
/// progress moves (a committed batch; batches committed within 100 ms of
/// each other share an event), and an `end` event with the job once it
/// has finished, after which the stream closes. A comment line every 15
/// seconds keeps a quiet stream open.
///
/// `curl -N -H "Authorization: Bearer $TOKEN" .../v1/imports/$ID/events`
#[utoipa::path(
    tag = "imports",
    params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job's events", content_type = "text/event-stream", body = String),
        (status = 404, description = "`import_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["imports:read"]), ("bearer" = ["imports:write"]))
)]
#[get("/imports/{id}/events")]
pub async fn import_events(
    auth: Authorized<ImportsRead>,
    state: web::Data<AppState>,
    id: web::Path<ImportId>,
) -> Result<HttpResponse, ApiError> {
    let integration = auth.principal.access.integration_id;
    let job = own_job(&state, integration, *id).await?;
    struct Follow {
        state: web::Data<AppState>,
        id: ImportId,
        /// The last job sent: (state, processed); `None` before the first.
        sent: Option<(ImportState, u64)>,
        first: Option<ImportJob>,
        quiet_since: std::time::Instant,
        ended: bool,
    }
    let follow = Follow {
        state: state.clone(),
        id: job.id,
        sent: None,
        first: Some(job),
        quiet_since: std::time::Instant::now(),
        ended: false,
    };
    let events = futures_util::stream::unfold(follow, |mut follow| async move {
        if follow.ended {
            return None;
        }
        loop {
            let job = match follow.first.take() {
                Some(job) => Some(job),
                None => {
                    tokio::time::sleep(EVENTS_POLL).await;
                    match follow.state.store.get_import(follow.id).await {
                        Ok(job) => job,
                        Err(e) => {
                            tracing::warn!(error = %e, "an import's events stopped");
                            return None;
                        }
                    }
                }
            };
            let Some(job) = job else {
                return None; // deleted meanwhile
            };
            let now = (job.state, job.processed);
            if follow.sent != Some(now) {
                follow.sent = Some(now);
                follow.quiet_since = std::time::Instant::now();
                let name = if job.state.is_finished() {
                    follow.ended = true;
                    "end"
                } else {
                    "import"
                };
                let data = serde_json::to_string(&Import::from(job)).unwrap_or_default();
                let event = format!("event: {name}\ndata: {data}\n\n");
                return Some((Ok::<_, actix_web::Error>(web::Bytes::from(event)), follow));
            }
            if follow.quiet_since.elapsed() >= EVENTS_KEEP_ALIVE {
                follow.quiet_since = std::time::Instant::now();
                return Some((Ok(web::Bytes::from_static(b": keep-alive\n\n")), follow));
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(events))
}

/// A job's failed rows as CSV
///
/// The rows that failed (so far), in the file's own columns plus an
/// `error` column: fix them and upload the file again as it is. Cells
/// starting with `=`, `+`, `-`, `@`, a tab or a carriage return are
/// prefixed with `'`, so that a spreadsheet program does not run them as
/// formulas.
#[utoipa::path(
    tag = "imports",
    params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The failed rows", content_type = "text/csv", body = String),
        (status = 404, description = "`import_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["imports:read"]), ("bearer" = ["imports:write"]))
)]
#[get("/imports/{id}/errors.csv")]
pub async fn import_errors_csv(
    auth: Authorized<ImportsRead>,
    state: web::Data<AppState>,
    id: web::Path<ImportId>,
) -> Result<HttpResponse, ApiError> {
    let job = own_job(&state, auth.principal.access.integration_id, *id).await?;
    let mut header: Vec<String> = job.header.iter().map(|h| neutralise(h)).collect();
    header.push(ERROR_COLUMN.into());
    let first = csv_lines(std::iter::once(header))?;
    // Streamed a page of failed rows at a time: a job's failures may be
    // many more than an answer should hold in memory.
    struct Pages {
        state: web::Data<AppState>,
        job: ImportId,
        width: usize,
        after: u64,
        first: Option<web::Bytes>,
        ended: bool,
    }
    let pages = Pages {
        state: state.clone(),
        job: job.id,
        width: job.header.len(),
        after: 0,
        first: Some(first),
        ended: false,
    };
    let body = futures_util::stream::unfold(pages, |mut pages| async move {
        if let Some(first) = pages.first.take() {
            return Some((Ok(first), pages));
        }
        if pages.ended {
            return None;
        }
        let page = match pages
            .state
            .store
            .import_failures(pages.job, pages.after, ERRORS_PAGE)
            .await
        {
            Ok(page) => page,
            Err(e) => {
                // The answer is cut short: the client sees it end early.
                tracing::warn!(error = %e, "an import's errors.csv stopped");
                pages.ended = true;
                return Some((Err(actix_web::error::ErrorInternalServerError("")), pages));
            }
        };
        let (last, _, _) = page.last()?;
        pages.after = *last;
        pages.ended = page.len() < ERRORS_PAGE;
        let records = page
            .into_iter()
            .map(|(line, cells, errors)| failed_record(pages.width, line, cells, &errors));
        let chunk = csv_lines(records).map_err(|e| {
            tracing::warn!(error = %e.detail, "an import's errors.csv stopped");
            actix_web::error::ErrorInternalServerError("")
        });
        Some((chunk, pages))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"import-{}-errors.csv\"", job.id),
        ))
        .streaming(body))
}

/// Failed rows read at a time for an errors file.
const ERRORS_PAGE: usize = 5_000;

/// A failed row as `errors.csv` shows it: [`failed_cells`], each cell
/// neutralised.
fn failed_record(width: usize, line: u64, cells: Option<String>, errors: &str) -> Vec<String> {
    failed_cells(width, line, cells, errors)
        .iter()
        .map(|c| neutralise(c))
        .collect()
}

/// A failed row's cells as staged (as many as the header has columns) and
/// its problems in an `error` cell.
fn failed_cells(width: usize, line: u64, cells: Option<String>, errors: &str) -> Vec<String> {
    let mut cells: Vec<String> = cells
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default();
    cells.resize(width, String::new());
    let errors: Vec<FieldError> = serde_json::from_str(errors).unwrap_or_default();
    let message = errors
        .iter()
        .map(|e| match &e.column {
            Some(column) => format!("line {line}, {}: {}", column_name(column), e.message),
            None => format!("line {line}: {}", e.message),
        })
        .collect::<Vec<_>>()
        .join("; ");
    cells.push(message);
    cells
}

/// Records as CSV lines (CRLF).
fn csv_lines(records: impl IntoIterator<Item = Vec<String>>) -> Result<web::Bytes, ApiError> {
    let internal = |e: String| ApiError::internal(anyhow::anyhow!("writing errors.csv: {e}"));
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for record in records {
        out.write_record(&record)
            .map_err(|e| internal(e.to_string()))?;
    }
    out.into_inner()
        .map(web::Bytes::from)
        .map_err(|e| internal(e.to_string()))
}

/// Rows an errors workbook holds below its header (a sheet's limit).
const MAX_XLSX_ROWS: u32 = 1_048_575;

/// A job's failed rows as a workbook
///
/// The same rows as `errors.csv`, as an .xlsx workbook (sheet `Failed
/// rows`): the file's own columns plus `error`. Every cell is a text cell,
/// so no value is ever run as a formula, and values are kept exactly as
/// uploaded (fixed and uploaded again, the workbook is read as sent). A
/// sheet holds at most 1,048,575 rows below its header: beyond that, use
/// `errors.csv`.
#[utoipa::path(
    tag = "imports",
    params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The failed rows", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", body = crate::routes::templates::FileBytes),
        (status = 404, description = "`import_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["imports:read"]), ("bearer" = ["imports:write"]))
)]
#[get("/imports/{id}/errors.xlsx")]
pub async fn import_errors_xlsx(
    auth: Authorized<ImportsRead>,
    state: web::Data<AppState>,
    id: web::Path<ImportId>,
) -> Result<HttpResponse, ApiError> {
    let job = own_job(&state, auth.principal.access.integration_id, *id).await?;
    let mut header = job.header.clone();
    header.push(ERROR_COLUMN.into());
    let width = job.header.len();
    // The workbook is written on a blocking thread (its rows to a temporary
    // file: constant memory), the failed rows fed to it a page at a time.
    let (pages, mut pages_rx) = tokio::sync::mpsc::channel::<Vec<Vec<String>>>(2);
    let book = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, XlsxError> {
        let mut book = Workbook::new();
        let sheet = book.add_worksheet_with_constant_memory()?;
        sheet.set_name("Failed rows")?;
        let bold = Format::new().set_bold();
        for (c, name) in header.iter().enumerate() {
            sheet.write_string_with_format(0, column(c)?, name, &bold)?;
        }
        let mut row = 0u32;
        while let Some(records) = pages_rx.blocking_recv() {
            for record in records {
                if row >= MAX_XLSX_ROWS {
                    continue;
                }
                row += 1;
                for (c, cell) in record.iter().enumerate().filter(|(_, c)| !c.is_empty()) {
                    sheet.write_string(row, column(c)?, cell)?;
                }
            }
        }
        book.save_to_buffer()
    });
    let mut after = 0;
    loop {
        let page = state
            .store
            .import_failures(job.id, after, ERRORS_PAGE)
            .await?;
        let Some((last, _, _)) = page.last() else {
            break;
        };
        after = *last;
        let records = page
            .into_iter()
            .map(|(line, cells, errors)| failed_cells(width, line, cells, &errors))
            .collect();
        if pages.send(records).await.is_err() {
            break; // the writer stopped: its error is answered below
        }
    }
    drop(pages);
    let internal = |e: String| ApiError::internal(anyhow::anyhow!("writing errors.xlsx: {e}"));
    let body = book
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(|e| internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"import-{}-errors.xlsx\"", job.id),
        ))
        .body(body))
}

/// A sheet's column index.
fn column(index: usize) -> Result<u16, XlsxError> {
    u16::try_from(index).map_err(|_| XlsxError::ParameterError("too many columns".into()))
}

fn column_name(column: &crate::error::Column) -> String {
    match column {
        crate::error::Column::Name(name) => name.clone(),
        crate::error::Column::Index(i) => format!("column {i}"),
    }
}

/// A cell a spreadsheet program would run as a formula, made text.
fn neutralise(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}
