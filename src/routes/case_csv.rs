//! `POST /v1/cases/csv`: the CSV case uploader, for partners with curl.

use actix_multipart::Multipart;
use actix_web::{HttpResponse, post, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Authorized, CasesWrite};
use crate::domain::access::GroupAccess;
use crate::domain::case::DateInput;
use crate::error::{ApiError, ErrorCode, FieldError, Problem, excerpt};
use crate::ids::{CaseId, IntegrationId, ListId};
use crate::ingest::case_csv::CaseColumns;
use crate::ingest::cases::{
    CaseRun, CasesIngested, ListFields, ListSpec, OnConflict, Outcome, ingest_cases,
};
use crate::ingest::csv::{CsvTable, Detected, charset, invalid_csv, read_table};
use crate::ingest::engine::{Keep, Problems, RunOptions, Writes};
use crate::ingest::sources::CsvRows;
use crate::ingest::staff::ExternalIdDrift;
use crate::routes::cases::StreamOptions;
use crate::routes::extract::form::{read_form, truthy};
use crate::startup::AppState;
use crate::store::Store;
use crate::store::cases::ListAssignment;
use crate::store::models::CsvLimits;

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
    #[schema(example = "November calls")]
    list_name: Option<String>,
    /// Who may score the list: a group id, a team id or an evaluator's Staff
    /// ID. Where several are given, the left-most (group, team, evaluator) is used.
    #[schema(example = "")]
    assign_group: Option<String>,
    #[schema(example = "")]
    assign_team: Option<String>,
    #[schema(example = "DEMO-E1")]
    assign_evaluator: Option<String>,
    /// What a Case ID this integration sent before does: `error` (default;
    /// `duplicate_external_id`), `skip` (the stored case stays), `update`
    /// (the stored case takes the values the row carries — an empty cell
    /// changes nothing — its `data` merged key by key, and it moves into
    /// the new list). Re-send a corrected file with `update`.
    #[schema(value_type = Option<OnConflict>, example = "error")]
    on_conflict: Option<String>,
    /// `true`: check the file and answer, write nothing.
    #[schema(example = true)]
    dry_run: Option<bool>,
    /// The file's text encoding, by any WHATWG label (`windows-1255`,
    /// `latin1`, `utf-16le`, `shift_jis`, …). Without it: a byte-order
    /// mark, UTF-16 or UTF-8, else a detector; a file whose encoding cannot
    /// be told for sure answers `unsupported_encoding`. An unknown label:
    /// 422 `unknown_charset`.
    #[schema(example = "utf-8")]
    charset: Option<String>,
}

/// The list the upload created.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedList {
    #[schema(value_type = uuid::Uuid)]
    pub id: ListId,
    pub name: String,
    pub assignment: ListAssignment,
    pub case_count: u64,
}

/// One case the upload created, updated or skipped.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedCase {
    #[schema(value_type = uuid::Uuid)]
    pub id: CaseId,
    pub external_id: String,
    /// The case's line in the file.
    pub line: u64,
    pub outcome: Outcome,
}

/// The file was imported.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "list": {"id": "019a8c12-5555-7000-8000-000000000006", "name": "November calls", "assignment": {"kind": "group", "id": "019a8c0e-7d1b-7c3a-9a51-0c4f7de3b2aa"}, "case_count": 2},
    "created": 2, "updated": 0, "skipped": 0, "cases": [{"id": "019a8c12-4444-7000-8000-000000000005", "external_id": "T-1", "line": 2, "outcome": "created"}],
    "warnings": [], "detected": {"encoding": "utf-8", "encoding_source": "sniffed", "bom": false, "delimiter": ",", "line_ending": "crlf"}
}))]
pub struct CsvImported {
    pub list: UploadedList,
    pub created: u64,
    /// Cases this integration sent before, updated (`on_conflict=update`).
    pub updated: u64,
    /// Cases this integration sent before, left as stored (`on_conflict=skip`).
    pub skipped: u64,
    pub cases: Vec<UploadedCase>,
    /// Extra cells ignored, rows of delimiters only skipped, External Staff
    /// IDs not the ones stored (`staff_id_mismatch`: stored as sent).
    pub warnings: Vec<FieldError>,
    pub detected: Detected,
}

/// The file would import (`dry_run`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"valid": true, "would_create": 2, "would_update": 0, "would_skip": 0, "warnings": [], "detected": {"encoding": "windows-1252", "encoding_source": "detected", "bom": false, "delimiter": ";", "line_ending": "lf"}}))]
pub struct CsvChecked {
    pub valid: bool,
    pub would_create: u64,
    /// With `on_conflict=update`.
    pub would_update: u64,
    /// With `on_conflict=skip`.
    pub would_skip: u64,
    pub warnings: Vec<FieldError>,
    pub detected: Detected,
}

/// Upload cases as CSV
///
/// The spreadsheet uploader's rules: the first three headers are `Staff ID`,
/// `External Staff ID`, `Case ID` (matched case-insensitively), then 1 to 100
/// columns of your own data and optionally `Channel`, `Status`, `Priority`,
/// `Category`, `Occurred At` (RFC 3339 or `DD-MM-YYYY HH:MM`, UTC). At most
/// 1,000 records, 103 columns and 1,000 characters a cell by default (the
/// integration's limits, `GET /v1/limits`). Every column besides the
/// mandatory and known ones goes into the case's `data` under its header,
/// whatever it says (comments, message counts, activity: nothing is dropped).
///
/// Encodings: UTF-8 with or without BOM and UTF-16 (BOM or not, as Excel's
/// "Unicode Text" saves) are sniffed; any other is recognised by an
/// encoding detector (Windows-1252, Windows-1255, ISO-8859-2, Shift_JIS, …),
/// or named with `charset`. A file whose encoding cannot be told for sure
/// is refused (`unsupported_encoding`), never stored garbled; `detected`
/// says the encoding used and whether it was `named`, `sniffed` or
/// `detected`. Delimiter `,`, `;` or tab (detected); any line ending;
/// quoted newlines. A workbook (.xlsx, .xls) is `not_csv`: import it with
/// `POST /v1/imports`.
///
/// Every problem is reported at once (422 `invalid_csv`, each with its line
/// as `row` and its `column`), then the same validators as `POST /v1/cases`
/// run on each row, their messages in the file's column names (`Case ID`,
/// `Staff ID`). Rows with no value at all (only delimiters, as spreadsheets
/// leave below the data) are skipped with one `empty_rows_skipped` warning.
/// An External Staff ID other than the one stored for the row's Staff ID is
/// a warning (`staff_id_mismatch`): the case is stored with the staff
/// member the Staff ID names and the External Staff ID as sent. A valid
/// file becomes a new list, all or nothing.
///
/// `on_conflict` (as in `POST /v1/cases`) says what a Case ID the
/// integration sent before does: `error` (default), `skip`, or `update` —
/// re-sending a corrected file: a stored case takes only what its row
/// carries (empty cells change nothing; its `data` is merged key by key,
/// the stored columns keeping their order, new ones appended) and moves
/// into the new list.
///
/// `curl -H "Authorization: Bearer $TOKEN" -F file=@cases.csv -F list_name=November -F assign_group=$GROUP .../v1/cases/csv`
#[utoipa::path(
    tag = "cases",
    request_body(content = CaseCsvForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Imported into a new list", body = CsvImported),
        (status = 200, description = "`dry_run`: the file would import", body = CsvChecked),
        (status = 413, description = "`file_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`multiple_files`: more than one `file` part (one file per upload); `unknown_field`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`unknown_charset`: `charset` names no encoding. `invalid_csv` with every problem in `errors` (`missing_header_row`, `first_column_not_staff_id`, `second_column_not_external_staff_id`, `third_column_not_case_id`, `no_data_columns`, `no_records`, `too_many_records`, `too_many_columns`, `cell_too_long`, `short_row`, `duplicate_header`, `empty_header`, `empty_file`, `not_csv`, `unsupported_encoding`, `unknown_staff_id`, `invalid_enum`, …); `unknown_assignment`; `validation_failed`", body = Problem, content_type = "application/problem+json"),
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
    let settings = &state.settings;
    // The integration's limits are read while the file arrives.
    let (form, limits) = tokio::try_join!(
        read_form(form, settings.max_body_bytes, settings.body_timeout),
        csv_limits(&state.store, access.integration_id),
    )?;
    let upload = Upload::from_fields(&form.fields)?;
    let file = form
        .file
        .ok_or_else(|| required_field("file", "attach the CSV as the form field `file`"))?;
    let list = upload.options.list_spec()?;
    if list.is_none() && !upload.dry_run {
        return Err(required_field(
            "list_name",
            "name the list (list_name) and who may score it (assign_group, assign_team or assign_evaluator)",
        ));
    }
    let _bulk = (!upload.dry_run).then(|| state.bulk.enter()).transpose()?;
    let mut table = read_case_table(file, limits, upload.charset).await?;
    let columns_read = table.columns.is_some();
    let records = std::mem::take(&mut table.table.records);
    let problems = std::mem::take(&mut table.table.errors);
    let mut source = CsvRows::new(records, table.columns, problems);
    let run = upload.run(access, list.as_ref());
    let ingested = ingest_cases(state.services(), &run, &mut source).await?;
    let table = table.table;
    let detected = table.detected.unwrap_or_default();
    answer(
        ingested,
        columns_read,
        table.warnings,
        detected,
        upload.dry_run,
    )
}

/// The uploader's options, from the form's text fields.
struct Upload {
    options: StreamOptions,
    on_conflict: OnConflict,
    dry_run: bool,
    /// The file's encoding, as the uploader named it.
    charset: Option<&'static encoding_rs::Encoding>,
}

impl Upload {
    fn from_fields(fields: &[(String, String)]) -> Result<Self, ApiError> {
        let mut options = StreamOptions::default();
        let mut dry_run = false;
        let mut on_conflict = OnConflict::default();
        let mut named = None;
        for (name, text) in fields {
            let text = text.clone();
            match name.as_str() {
                "list_name" => options.list_name = Some(text),
                "assign_group" => options.assign_group = Some(text),
                "assign_team" => options.assign_team = Some(text),
                "assign_evaluator" => options.assign_evaluator = Some(text),
                "dry_run" => dry_run = truthy("dry_run", &text)?,
                "on_conflict" => on_conflict = parse_on_conflict(&text)?,
                "charset" => named = Some(charset(&text)?),
                other => {
                    return Err(ApiError::new(
                        ErrorCode::UnknownField,
                        format!(
                            "Unknown form field {other:?}; expected file, list_name, assign_group, assign_team, assign_evaluator, on_conflict, dry_run, charset."
                        ),
                    ));
                }
            }
        }
        Ok(Self {
            options,
            on_conflict,
            dry_run,
            charset: named,
        })
    }

    fn run<'a>(&self, access: &'a GroupAccess, list: Option<&'a ListSpec>) -> CaseRun<'a> {
        CaseRun {
            access,
            list,
            list_fields: ListFields::Parameters,
            list_source: "csv",
            on_conflict: self.on_conflict,
            dates: DateInput::Spreadsheet,
            // The uploader's rule: a drifted External Staff ID is a warning.
            drift: ExternalIdDrift::Warned,
            options: RunOptions {
                // A file breaking the CSV rules writes nothing; its rows are
                // still checked, to report every problem at once.
                writes: if self.dry_run {
                    Writes::Nothing
                } else {
                    Writes::Atomic
                },
                keep: Keep::All,
                problems: Problems::Every,
            },
            path: "csv",
        }
    }
}

/// The `on_conflict` form field: `error`, `skip` or `update` (any letter
/// case, surrounding spaces ignored); empty is the default.
fn parse_on_conflict(text: &str) -> Result<OnConflict, ApiError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "error" => Ok(OnConflict::Error),
        "skip" => Ok(OnConflict::Skip),
        "update" => Ok(OnConflict::Update),
        other => Err(ApiError::validation(
            ErrorCode::ValidationFailed,
            vec![FieldError::field(
                "on_conflict",
                ErrorCode::InvalidEnum,
                format!(
                    "{:?} is not an on_conflict; expected one of: error, skip, update",
                    excerpt(other)
                ),
            )],
        )),
    }
}

/// A 422 `validation_failed` naming a missing form field.
fn required_field(field: &str, message: &str) -> ApiError {
    ApiError::validation(
        ErrorCode::ValidationFailed,
        vec![FieldError::field(field, ErrorCode::Required, message)],
    )
}

/// The integration's CSV limits.
async fn csv_limits(store: &Store, integration: IntegrationId) -> Result<CsvLimits, ApiError> {
    let integration = store.get_integration(integration).await?;
    Ok(integration.map(|i| i.csv_limits).unwrap_or_default())
}

/// A file read as a table and its case columns.
struct CaseTable {
    table: CsvTable,
    columns: Option<CaseColumns>,
}

/// Decodes and reads the file: CPU work, off the async workers.
async fn read_case_table(
    file: Vec<u8>,
    limits: CsvLimits,
    named: Option<&'static encoding_rs::Encoding>,
) -> Result<CaseTable, ApiError> {
    web::block(move || {
        let mut table = read_table(&file, &limits, named, "cases");
        let columns = if table.errors.is_empty() || table.detected.is_some() {
            CaseColumns::read(&mut table)
        } else {
            None
        };
        CaseTable { table, columns }
    })
    .await
    .map_err(|e| ApiError::internal(anyhow::anyhow!("reading the CSV: {e}")))
}

/// The answer: the new list and its cases, what a dry run would create, or
/// every problem of the file and its rows, line by line.
fn answer(
    ingested: CasesIngested,
    columns_read: bool,
    mut warnings: Vec<FieldError>,
    detected: Detected,
    dry_run: bool,
) -> Result<HttpResponse, ApiError> {
    let CasesIngested { mut summary, list } = ingested;
    if !columns_read || !summary.errors.is_empty() {
        return Err(invalid_csv(summary.errors.listed));
    }
    // The file's warnings, then its rows' (`staff_id_mismatch`), by line.
    warnings.append(&mut summary.warnings);
    warnings.sort_by_key(|w| w.row);
    let (created, updated, skipped) = (summary.created, summary.updated, summary.skipped);
    if dry_run {
        return Ok(HttpResponse::Ok().json(CsvChecked {
            valid: true,
            would_create: created,
            would_update: updated,
            would_skip: skipped,
            warnings,
            detected,
        }));
    }
    let list =
        list.ok_or_else(|| ApiError::internal(anyhow::anyhow!("a CSV import without a list")))?;
    let cases = summary.results.into_iter().map(|a| UploadedCase {
        id: a.id,
        external_id: a.external_id,
        line: a.row,
        outcome: a.outcome,
    });
    Ok(HttpResponse::Created().json(CsvImported {
        list: UploadedList {
            id: list.id,
            name: list.name,
            assignment: ListAssignment {
                kind: list.assignment_kind.to_string(),
                id: list.assignment_id,
            },
            // The cases created or updated (an updated case moves here).
            case_count: created + updated,
        },
        created,
        updated,
        skipped,
        cases: cases.collect(),
        warnings,
        detected,
    }))
}
