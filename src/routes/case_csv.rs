//! `POST /v1/cases/csv`: the CSV case uploader, for partners with curl.

use actix_multipart::{Multipart, MultipartError};
use actix_web::{HttpResponse, post, web};
use futures_util::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Authorized, CasesWrite};
use crate::domain::case::DateInput;
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::ingest::case_csv::CaseColumns;
use crate::ingest::cases::{CaseIngest, ListFields, OnConflict, resolve_list};
use crate::ingest::csv::{Detected, invalid_csv, read_table};
use crate::ingest::pipeline::{CasePipeline, FIRST_BATCH, Writes, batch_size};
use crate::routes::cases::StreamOptions;
use crate::startup::AppState;
use crate::store::cases::ListAssignment;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(upload_cases_csv)
        // Any other method: 405 (`Allow: POST`), not a case named "csv" —
        // the uploader's resource only takes POST, and `/cases/{id}` comes
        // next.
        .route("/cases/csv", web::route().to(crate::routes::fallback));
}

/// The form of the uploader.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the multipart form
pub struct CaseCsvForm {
    /// The CSV file: `Staff ID`, `External Staff ID`, `Case ID`, then your
    /// columns (and optionally `Channel`, `Status`, `Priority`, `Category`,
    /// `Occurred At`).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// The new list's name (required unless `dry_run`).
    list_name: Option<String>,
    /// Who may score the list: a group id, a team id or an evaluator's Staff
    /// ID. Where several are given, the left-most (group, team, evaluator) is used.
    assign_group: Option<String>,
    assign_team: Option<String>,
    assign_evaluator: Option<String>,
    /// `true`: check the file and answer, write nothing.
    dry_run: Option<bool>,
}

/// The list the upload created.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedList {
    pub id: Uuid,
    pub name: String,
    pub assignment: ListAssignment,
    pub case_count: u64,
}

/// One case the upload created.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedCase {
    pub id: Uuid,
    pub external_id: String,
    /// The case's line in the file.
    pub line: u64,
}

/// The file was imported.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "list": {"id": "019a8c12-5555-7000-8000-000000000006", "name": "November calls", "assignment": {"kind": "group", "id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa"}, "case_count": 2},
    "created": 2, "cases": [{"id": "019a8c12-4444-7000-8000-000000000005", "external_id": "T-1", "line": 2}],
    "warnings": [], "detected": {"encoding": "utf-8", "bom": false, "delimiter": ",", "line_ending": "crlf"}
}))]
pub struct CsvImported {
    pub list: UploadedList,
    pub created: u64,
    pub cases: Vec<UploadedCase>,
    /// Extra cells ignored, columns not ingested.
    pub warnings: Vec<FieldError>,
    pub detected: Detected,
}

/// The file would import (`dry_run`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"valid": true, "would_create": 2, "warnings": [], "detected": {"encoding": "utf-8", "bom": false, "delimiter": ";", "line_ending": "lf"}}))]
pub struct CsvChecked {
    pub valid: bool,
    pub would_create: u64,
    pub warnings: Vec<FieldError>,
    pub detected: Detected,
}

/// The smallest batch an upload is cut into after the first (a 1,000-record
/// file: 100, then 250 at a time), one written while the next is validated;
/// smaller ones cost more lookups than they overlap.
const CSV_MIN_BATCH: usize = 250;

/// Longest text form field.
const MAX_FORM_FIELD_BYTES: usize = 64 * 1024;

/// Most parts a form may have (the uploaders take at most a dozen): with
/// [`MAX_FORM_FIELD_BYTES`], what a form holds besides its file stays small.
const MAX_FORM_PARTS: usize = 32;

fn multipart_error(e: MultipartError) -> ApiError {
    match e {
        MultipartError::ContentTypeMissing
        | MultipartError::ContentTypeParse
        | MultipartError::ContentTypeIncompatible => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Send the upload as multipart/form-data (curl -F file=@cases.csv).",
        ),
        other => ApiError::new(
            ErrorCode::InvalidBody,
            format!("The form could not be read: {other}"),
        ),
    }
}

/// A form field read as a boolean (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
pub(crate) fn truthy(field: &str, value: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        other => Err(ApiError::validation(
            ErrorCode::ValidationFailed,
            vec![FieldError::field(
                field,
                ErrorCode::InvalidEnum,
                format!(
                    "{field} must be true or false, not {:?}",
                    crate::error::excerpt(other)
                ),
            )],
        )),
    }
}

/// A multipart form: the file (if any) and the text fields, in order.
pub(crate) struct Form {
    pub file: Option<Vec<u8>>,
    pub fields: Vec<(String, String)>,
}

/// Reads a multipart form: `file` up to `file_limit` bytes (413
/// `file_too_large`), each other field up to 64 KiB, trimmed; 408
/// `body_timeout` when nothing arrives for `stall`.
pub(crate) async fn read_form(
    mut form: Multipart,
    file_limit: usize,
    stall: std::time::Duration,
) -> Result<Form, ApiError> {
    use tokio::time::timeout;
    let mut out = Form {
        file: None,
        fields: Vec::new(),
    };
    let mut parts = 0;
    while let Some(field) = timeout(stall, form.next())
        .await
        .map_err(|_| crate::routes::body_timeout(stall))?
    {
        let mut field = field.map_err(multipart_error)?;
        parts += 1;
        if parts > MAX_FORM_PARTS {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                format!("The form has more than {MAX_FORM_PARTS} parts."),
            ));
        }
        let name = field.name().unwrap_or_default().to_string();
        let limit = if name == "file" {
            file_limit
        } else {
            MAX_FORM_FIELD_BYTES
        };
        let mut value = Vec::new();
        while let Some(chunk) = timeout(stall, field.next())
            .await
            .map_err(|_| crate::routes::body_timeout(stall))?
        {
            let chunk = chunk.map_err(multipart_error)?;
            if value.len() + chunk.len() > limit {
                return Err(if name == "file" {
                    ApiError::new(
                        ErrorCode::FileTooLarge,
                        format!("The file exceeds the limit of {limit} bytes."),
                    )
                } else {
                    ApiError::new(
                        ErrorCode::InvalidBody,
                        format!(
                            "The form field {:?} is longer than {limit} bytes.",
                            crate::error::excerpt(&name)
                        ),
                    )
                });
            }
            value.extend_from_slice(&chunk);
        }
        if name == "file" {
            out.file = Some(value);
        } else {
            out.fields
                .push((name, String::from_utf8_lossy(&value).trim().to_string()));
        }
    }
    Ok(out)
}

/// Upload cases as CSV
///
/// The spreadsheet uploader's rules: the first three headers are `Staff ID`,
/// `External Staff ID`, `Case ID` (matched case-insensitively), then 1 to 100
/// columns of your own data and optionally `Channel`, `Status`, `Priority`,
/// `Category`, `Occurred At` (RFC 3339 or `DD-MM-YYYY HH:MM`, UTC). At most
/// 1,000 records, 103 columns and 1,000 characters a cell by default (the
/// integration's limits, `GET /v1/limits`). UTF-8 with or without BOM, UTF-16
/// and Windows-1252; `,` or `;`; any line ending; quoted newlines.
///
/// Every problem is reported at once (422 `invalid_csv`, each with its line
/// as `row` and its `column`), then the same validators as `POST /v1/cases`
/// run on each row. Columns of messages, comments or activity logs are
/// ignored with a warning. A valid file becomes a new list, all or nothing.
///
/// `curl -H "Authorization: Bearer $TOKEN" -F file=@cases.csv -F list_name=November -F assign_group=$GROUP .../v1/cases/csv`
#[utoipa::path(
    tag = "cases",
    request_body(content = CaseCsvForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Imported into a new list", body = CsvImported),
        (status = 200, description = "`dry_run`: the file would import", body = CsvChecked),
        (status = 413, description = "`file_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_csv` with every problem in `errors` (`missing_header_row`, `first_column_not_staff_id`, `second_column_not_external_staff_id`, `third_column_not_case_id`, `no_data_columns`, `no_records`, `too_many_records`, `too_many_columns`, `cell_too_long`, `short_row`, `duplicate_header`, `empty_header`, `empty_file`, `not_csv`, `unsupported_encoding`, `unknown_staff_id`, `invalid_enum`, …); `unknown_assignment`; `validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "`body_timeout`: the body stalled (no byte for `INTAKE_BODY_TIMEOUT_MS`); nothing written", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`server_busy`: as many bulk ingestions as the server writes at once are running (streams, uploads, JSON bodies of more than 100 rows); retry after `Retry-After`. Or `service_unavailable`: the database is down", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another request wrote one of these Case IDs first (`duplicate_external_id`) or changed a staff member or group they refer to (`concurrent_write`) while the file was written; nothing written. Retry.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["cases:write"]))
)]
#[post("/cases/csv")]
pub async fn upload_cases_csv(
    auth: Authorized<CasesWrite>,
    state: web::Data<AppState>,
    form: Multipart,
) -> Result<HttpResponse, ApiError> {
    let access = &auth.principal.access;
    // The integration's limits and the validators' categories are read
    // while the file arrives, not one round trip after another once it has.
    let (form, limits, mut ingest) = tokio::try_join!(
        read_form(
            form,
            state.settings.max_body_bytes,
            state.settings.body_timeout
        ),
        async {
            let integration = state.store.get_integration(access.integration_id).await?;
            Ok::<_, ApiError>(integration.map(|i| i.csv_limits).unwrap_or_default())
        },
        CaseIngest::new(
            &state.store,
            access,
            &state.access,
            OnConflict::Error,
            DateInput::Spreadsheet,
        ),
    )?;
    let mut options = StreamOptions::default();
    let mut dry_run = false;
    for (name, text) in &form.fields {
        let text = text.clone();
        match name.as_str() {
            "list_name" => options.list_name = Some(text),
            "assign_group" => options.assign_group = Some(text),
            "assign_team" => options.assign_team = Some(text),
            "assign_evaluator" => options.assign_evaluator = Some(text),
            "dry_run" => dry_run = truthy("dry_run", &text)?,
            other => {
                return Err(ApiError::new(
                    ErrorCode::UnknownField,
                    format!(
                        "Unknown form field {other:?}; expected file, list_name, assign_group, assign_team, assign_evaluator, dry_run."
                    ),
                ));
            }
        }
    }
    let file = form.file;
    let Some(file) = file else {
        return Err(ApiError::validation(
            ErrorCode::ValidationFailed,
            vec![FieldError::field(
                "file",
                ErrorCode::Required,
                "attach the CSV as the form field `file`",
            )],
        ));
    };
    let list = match options.list_spec()? {
        Some(spec) => {
            Some(resolve_list(&state.store, access, &spec, "csv", ListFields::Parameters).await?)
        }
        None if dry_run => None,
        None => {
            return Err(ApiError::validation(
                ErrorCode::ValidationFailed,
                vec![FieldError::field(
                    "list_name",
                    ErrorCode::Required,
                    "name the list (list_name) and who may score it (assign_group, assign_team or assign_evaluator)",
                )],
            ));
        }
    };
    let _bulk = if dry_run {
        None
    } else {
        Some(state.bulk.enter()?)
    };
    // Decoding and reading the table is CPU work: off the async workers.
    let (mut table, columns) = web::block(move || {
        let mut table = read_table(&file, &limits);
        let columns = if table.errors.is_empty() || table.detected.is_some() {
            CaseColumns::read(&mut table)
        } else {
            None
        };
        (table, columns)
    })
    .await
    .map_err(|e| ApiError::internal(anyhow::anyhow!("reading the CSV: {e}")))?;
    let integration = access.integration_id.to_string();
    let record_count = table.records.len() as u64;
    let table_errors = std::mem::take(&mut table.errors);
    let located_from = table_errors.len();
    let writes = if dry_run {
        Writes::None
    } else {
        Writes::Atomic
    };
    let mut pipeline = CasePipeline::new(
        &state.store,
        access.integration_id,
        list.as_ref(),
        writes,
        true,
    )
    .listing_every_problem();
    if !table_errors.is_empty() {
        // A file breaking the CSV rules writes nothing; its rows are still
        // checked, to report every problem at once.
        pipeline.reject(table_errors, 0);
    }
    if let Some(columns) = &columns {
        let batch_size = batch_size(table.records.len(), CSV_MIN_BATCH, usize::MAX);
        // Nothing is written while the first batch is validated: a small
        // one sets the writer going sooner.
        let mut size = FIRST_BATCH.min(batch_size);
        let mut records = table.records.drain(..);
        loop {
            let rows: Vec<_> = records
                .by_ref()
                .filter(|r| !r.broken) // already reported
                .take(std::mem::replace(&mut size, batch_size))
                .map(|r| (r.line, columns.case(r.cells)))
                .collect();
            if rows.is_empty() {
                break;
            }
            pipeline.feed(&mut ingest, rows, Vec::new()).await?;
        }
    }
    pipeline.finish().await?;
    if columns.is_none() || !pipeline.errors.is_empty() {
        state
            .metrics
            .count_rows(&integration, "csv", 0, record_count);
        let mut errors = std::mem::take(&mut pipeline.errors.listed);
        if let Some(columns) = &columns {
            let row_errors = errors.split_off(located_from.min(errors.len()));
            errors.extend(row_errors.into_iter().map(|e| columns.locate(e)));
            // The file's problems and the validators', line by line.
            errors.sort_by_key(|e| e.row.unwrap_or_default());
        }
        return Err(invalid_csv(errors));
    }
    let detected = table.detected.clone().unwrap_or_default();
    let warnings = std::mem::take(&mut table.warnings);
    if dry_run {
        return Ok(HttpResponse::Ok().json(CsvChecked {
            valid: true,
            would_create: pipeline.created,
            warnings,
            detected,
        }));
    }
    let created = pipeline.created;
    let accepted = std::mem::take(&mut pipeline.accepted);
    drop(pipeline);
    let Some(list) = list else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "a CSV import without a list"
        )));
    };
    state.metrics.count_rows(&integration, "csv", created, 0);
    Ok(HttpResponse::Created().json(CsvImported {
        list: UploadedList {
            id: list.id,
            name: list.name.clone(),
            assignment: ListAssignment {
                kind: list.assignment_kind.to_string(),
                id: list.assignment_id.clone(),
            },
            case_count: created,
        },
        created,
        cases: accepted
            .into_iter()
            .map(|a| UploadedCase {
                id: a.id,
                external_id: a.external_id,
                line: a.row,
            })
            .collect(),
        warnings,
        detected,
    }))
}
