//! `/v1/campaigns/{id}/customers`: upserting customers in bulk (JSON,
//! NDJSON, CSV), adding one, and reading them back.

use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Authorized, CustomersCreate, CustomersRead, CustomersWrite};
use crate::domain::access::GroupAccess;
use crate::domain::canonical_enum;
use crate::domain::customer::{CustomerInput, CustomerOptions, UniqueMode, normalize_phone};
use crate::error::{ApiError, ErrorCode, FieldError, Problem, excerpt, json_body_error};
use crate::ids::CampaignId;
use crate::ingest::cases::FIRST_BATCH;
use crate::ingest::csv::{Detected, charset, invalid_csv, read_table};
use crate::ingest::customer_csv::CustomerColumns;
use crate::ingest::customers::{
    CustomerIngest, CustomerOutcome, CustomerResult, CustomersSummary, UploadSpec, ingest_customers,
};
use crate::ingest::engine::{Commits, Keep, Problems, RunOptions, Summary, Writes};
use crate::ingest::ndjson::NdjsonLines;
use crate::ingest::sources::{CsvRows, Listed, Ndjson};
use crate::routes::extract::body::{
    BodyKind, body_kind, parse_off_the_worker, payload_stream, read_body,
};
use crate::routes::extract::form::{read_form, truthy};
use crate::routes::{Page, PageQuery};
use crate::startup::AppState;
use crate::store::customers::{Customer, CustomerFilter};
use crate::store::models::Campaign;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(upsert_customers)
        .service(add_customer)
        .service(upload_customers_csv)
        .service(list_customers);
}

/// The campaign, if the caller's groups hold it.
async fn campaign(
    state: &AppState,
    access: &GroupAccess,
    id: CampaignId,
) -> Result<Campaign, ApiError> {
    access
        .visible(state.store.get_campaign(id).await?)
        .ok_or_else(|| ApiError::new(ErrorCode::CampaignNotFound, "No campaign has this id."))
}

/// A bulk upsert of customers into one campaign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "status": "new",
    "options": {"international_format": false, "override_existing": true, "unique_mode": "skip_if_elsewhere"},
    "customers": [
        {"name": "Dana Levi", "phone": "050-234-5678", "agent": "Jana Novak"},
        {"name": "Tom Cohen", "phone": "+972 52 345 6789", "follow_up_at": "2026-11-24T09:30:00+02:00", "fields": {"Plan": "Gold"}}
    ]
}))]
pub struct CustomersRequest {
    /// The status of every customer of the upload: one of the campaign's
    /// statuses (default its first, usually `new`).
    pub status: Option<String>,
    #[serde(default)]
    pub options: CustomerOptions,
    /// `true`: any failed row fails the request (422) and nothing is
    /// written. Default `false`: every row gets its own outcome.
    #[serde(default)]
    pub atomic: bool,
    /// No limit beyond the body limit.
    pub customers: Vec<CustomerInput>,
}

/// Options of an NDJSON stream (a JSON body carries them itself).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CustomerStreamOptions {
    /// NDJSON: the upload's status.
    pub status: Option<String>,
    /// NDJSON: see `CustomerOptions`.
    pub international_format: Option<bool>,
    pub override_existing: Option<bool>,
    pub update_contact_allowed: Option<bool>,
    pub reset_status: Option<bool>,
    pub unique_mode: Option<UniqueMode>,
    /// NDJSON: `true` writes all or nothing.
    pub atomic: Option<bool>,
}

impl CustomersRequest {
    fn parse(body: web::Bytes) -> Result<Self, ApiError> {
        let request =
            serde_json::from_slice::<CustomersRequest>(&body).map_err(|e| json_body_error(&e))?;
        if request.customers.is_empty() {
            return Err(ApiError::validation(
                ErrorCode::ValidationFailed,
                vec![FieldError::field(
                    "customers",
                    ErrorCode::Required,
                    "`customers` must hold at least one customer",
                )],
            ));
        }
        Ok(request)
    }

    fn spec(&self) -> UploadSpec {
        UploadSpec {
            status: self.status.clone(),
            options: self.options.clone(),
            atomic: self.atomic,
            spreadsheet_dates: false,
            option_prefix: "options.",
        }
    }
}

impl CustomerStreamOptions {
    fn spec(&self) -> UploadSpec {
        UploadSpec {
            status: self.status.clone(),
            options: CustomerOptions {
                international_format: self.international_format.unwrap_or(false),
                override_existing: self.override_existing.unwrap_or(false),
                update_contact_allowed: self.update_contact_allowed.unwrap_or(false),
                reset_status: self.reset_status.unwrap_or(false),
                unique_mode: self.unique_mode.unwrap_or_default(),
                date_format: None,
                timezone: None,
            },
            atomic: self.atomic.unwrap_or(false),
            spreadsheet_dates: false,
            option_prefix: "",
        }
    }

    fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.international_format.is_none()
            && self.override_existing.is_none()
            && self.update_contact_allowed.is_none()
            && self.reset_status.is_none()
            && self.unique_mode.is_none()
            && self.atomic.is_none()
    }
}

/// Upsert customers
///
/// Adds customers to the campaign, or updates those it holds (matched by
/// E.164 phone) as the options say; every row gets its own outcome
/// (`created`, `updated`, `skipped` with a `reason`, `failed` with
/// `errors`), and the counts add up to the rows sent. One transaction per
/// request; `atomic: true` turns any failed row into a 422 with nothing
/// written.
///
/// `application/json`: `{status?, options?, atomic?, customers: [...]}`.
/// `application/x-ndjson`: one customer per line, options in the query
/// string; the answer lists the skipped and failed rows (the first 1,000).
///
/// Options: `international_format`, `override_existing` (only the fields a
/// row carries change; custom fields are merged key by key, in the order
/// sent), `update_contact_allowed` and `reset_status` (each acts on an
/// existing customer by itself, outcome `updated`, touching only what it
/// names: `do_not_call` and `contact_allowed_at`, or the status),
/// `unique_mode` (`allow`, `move`, `skip_if_elsewhere`; "other campaigns"
/// are those of the integration's groups). A row's `do_not_call` is set on
/// a new customer, and on an existing one with `override_existing`; with
/// `update_contact_allowed`, a row sending `do_not_call: true` keeps its
/// block (the row's value wins).
#[utoipa::path(
    tag = "customers",
    params(("id" = Uuid, Path, description = "The campaign's id"), CustomerStreamOptions),
    request_body(content(
        (CustomersRequest = "application/json"),
        (CustomerInput = "application/x-ndjson", example = json!({"name": "Dana Levi", "phone": "050-234-5678"}))
    )),
    responses(
        (status = 200, description = "Every row's outcome", body = CustomersSummary),
        (status = 404, description = "`campaign_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "`body_timeout`: the body stalled (no byte for `INTAKE_BODY_TIMEOUT_MS`); nothing written", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`server_busy`: as many bulk ingestions as the server writes at once are running (streams, uploads, JSON bodies of more than 100 rows); retry after `Retry-After`. Or `service_unavailable`: the database is down", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_write`: another request changed these customers meanwhile; nothing written, retry", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: an invalid status (`invalid_status`) or option; or `atomic` with failed rows (`invalid_phone`, `unknown_agent`, `ambiguous_agent`, `duplicate_in_file`, `invalid_date`, …), nothing written", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["customers:write"]))
)]
#[put("/campaigns/{id}/customers")]
pub async fn upsert_customers(
    auth: Authorized<CustomersWrite>,
    state: web::Data<AppState>,
    id: web::Path<CampaignId>,
    req: HttpRequest,
    payload: web::Payload,
    query: web::Query<CustomerStreamOptions>,
) -> Result<HttpResponse, ApiError> {
    let access = &auth.principal.access;
    let kind = body_kind(&req)?;
    let campaign = campaign(&state, access, *id).await?;
    let services = state.services();
    let summary = match kind {
        BodyKind::Json => {
            if !query.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::InvalidQuery,
                    "With application/json the options go in the body (`status`, `options`, `atomic`).",
                ));
            }
            let body = read_body(&req, payload, &state.settings).await?.freeze();
            let request = parse_off_the_worker(body, CustomersRequest::parse).await?;
            // More than one batch holds a writer for a while: bulk.
            let _bulk = (request.customers.len() > FIRST_BATCH)
                .then(|| state.bulk.enter())
                .transpose()?;
            let spec = request.spec();
            let ingest = CustomerIngest::new(&state.store, access, &campaign, &spec).await?;
            let mut source = Listed::new(request.customers);
            let options = run_options(spec.atomic, false, Keep::All);
            ingest_customers(services, ingest, &mut source, options, "customers_json").await?
        }
        BodyKind::Ndjson => {
            let spec = query.spec();
            let _bulk = state.bulk.enter()?;
            let ingest = CustomerIngest::new(&state.store, access, &campaign, &spec).await?;
            let lines = NdjsonLines::new(
                payload_stream(payload),
                state.settings.max_body_bytes,
                state.settings.max_stream_bytes,
                state.settings.body_timeout,
            );
            let mut source = Ndjson::new(lines, "customers", "customer");
            let options = run_options(spec.atomic, false, Keep::Exceptions);
            ingest_customers(services, ingest, &mut source, options, "customers_ndjson").await?
        }
    };
    Ok(HttpResponse::Ok().json(answer(summary)?))
}

/// How a customer upload runs: one transaction, all or nothing where
/// `atomic`, nothing written in a dry run.
fn run_options(atomic: bool, dry_run: bool, keep: Keep) -> RunOptions {
    RunOptions {
        writes: match (dry_run, atomic) {
            (true, _) => Writes::Nothing,
            (false, true) => Writes::Atomic,
            (false, false) => Writes::ValidRows(Commits::Once),
        },
        keep,
        problems: Problems::FirstThousand,
    }
}

/// A run's summary as the answer, or the 422 of an atomic upload with
/// failed rows.
fn answer(summary: Summary<CustomerResult>) -> Result<CustomersSummary, ApiError> {
    if summary.rejected {
        return Err(summary.errors.into_rejection(ErrorCode::ValidationFailed));
    }
    Ok(CustomersSummary {
        created: summary.created,
        updated: summary.updated,
        skipped: summary.skipped,
        failed: summary.failed(),
        results: summary.results,
        results_not_listed: summary.results_not_listed,
    })
}

/// One new customer: the fields of `CustomerInput` and the customer's
/// `status` (default the campaign's first).
#[derive(Debug, ToSchema)]
#[schema(example = json!({"name": "Dana Levi", "phone": "050-234-5678", "status": "follow_up", "agent": "Jana Novak"}))]
#[allow(dead_code)] // documents the body, read as CustomerInput + status
pub struct NewCustomer {
    name: String,
    phone: String,
    status: Option<String>,
    agent: Option<String>,
    #[schema(format = DateTime)]
    follow_up_at: Option<String>,
    #[schema(format = DateTime)]
    source_created_at: Option<String>,
    /// The customer asked not to be called (default false).
    do_not_call: Option<bool>,
    #[schema(value_type = Option<Object>)]
    fields: Option<serde_json::Value>,
}

/// Add a customer
///
/// Adds one customer to the campaign (a national number is read in the
/// campaign's `default_region`). A phone the campaign already holds answers
/// 409 `already_exists` with the existing customer's id in `detail`.
#[utoipa::path(
    tag = "customers",
    params(("id" = Uuid, Path, description = "The campaign's id")),
    request_body(content = NewCustomer, content_type = "application/json"),
    responses(
        (status = 201, description = "The customer", body = Customer),
        (status = 404, description = "`campaign_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already_exists`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (`invalid_phone`, `unknown_agent`, `invalid_status`, …)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["customers:create"]), ("bearer" = ["customers:write"]))
)]
#[post("/campaigns/{id}/customers")]
pub async fn add_customer(
    auth: Authorized<CustomersCreate>,
    state: web::Data<AppState>,
    id: web::Path<CampaignId>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let access = &auth.principal.access;
    if !matches!(body_kind(&req)?, BodyKind::Json) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Send one customer as `Content-Type: application/json`.",
        ));
    }
    let campaign = campaign(&state, access, *id).await?;
    let body = read_body(&req, payload, &state.settings).await?;
    let (input, status) = one_customer(&body)?;
    let spec = UploadSpec {
        status,
        atomic: true,
        ..Default::default()
    };
    let ingest = CustomerIngest::new(&state.store, access, &campaign, &spec)
        .await?
        .single_row();
    let mut source = Listed::new(vec![input]);
    let options = run_options(true, false, Keep::All);
    let path = "customers_one";
    let summary = ingest_customers(state.services(), ingest, &mut source, options, path).await?;
    let result = answer(summary)?.results.into_iter().next();
    let result =
        result.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no result for one customer")))?;
    match (result.outcome, result.customer_id) {
        (CustomerOutcome::Created, Some(id)) => {
            let customer = state.store.get_customer(id).await?.ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("a created customer is missing"))
            })?;
            Ok(HttpResponse::Created().json(customer))
        }
        (_, existing) => Err(ApiError::new(
            ErrorCode::AlreadyExists,
            match existing {
                Some(id) => {
                    format!("The campaign already holds a customer with this phone ({id}).")
                }
                None => "The campaign already holds a customer with this phone.".to_string(),
            },
        )),
    }
}

/// One customer's body: its fields and its `status`.
fn one_customer(body: &[u8]) -> Result<(CustomerInput, Option<String>), ApiError> {
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| json_body_error(&e))?;
    let status = match object.remove("status") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(_) => {
            return Err(ApiError::validation(
                ErrorCode::ValidationFailed,
                vec![FieldError::field(
                    "status",
                    ErrorCode::InvalidType,
                    "status must be text",
                )],
            ));
        }
    };
    let input: CustomerInput = serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|e| json_body_error(&e))?;
    Ok((input, status))
}

/// The form of the customers uploader.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the multipart form
pub struct CustomerCsvForm {
    /// The CSV file: a header row, then one customer per line.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// The status of every customer of the file (default the campaign's first).
    #[schema(example = "new")]
    status: Option<String>,
    /// JSON object, file header → field (`name`, `phone`, `agent`,
    /// `follow_up_at`, `source_created_at`, `do_not_call`, or `fields` to keep a column as a
    /// custom field). Headers it leaves out are matched automatically.
    #[schema(example = "{}")]
    mapping: Option<String>,
    #[schema(example = false)]
    international_format: Option<bool>,
    #[schema(example = false)]
    override_existing: Option<bool>,
    #[schema(example = false)]
    update_contact_allowed: Option<bool>,
    #[schema(example = false)]
    reset_status: Option<bool>,
    #[schema(example = "allow")]
    unique_mode: Option<UniqueMode>,
    /// Default `DD-MM-YYYY HH:MM`.
    #[schema(example = "DD-MM-YYYY HH:MM")]
    date_format: Option<String>,
    /// IANA name; default the campaign's time zone.
    #[schema(example = "Europe/London")]
    timezone: Option<String>,
    /// `true`: any failed row fails the upload, nothing written.
    #[schema(example = false)]
    atomic: Option<bool>,
    /// `true`: answer the would-be outcomes, write nothing.
    #[schema(example = true)]
    dry_run: Option<bool>,
    /// The file's text encoding, by any WHATWG label (`windows-1255`,
    /// `latin1`, `utf-16le`, …). Without it: a byte-order mark, UTF-16 or
    /// UTF-8, else a detector; a file whose encoding cannot be told for
    /// sure answers `unsupported_encoding`. An unknown label: 422
    /// `unknown_charset`.
    #[schema(example = "utf-8")]
    charset: Option<String>,
}

/// The answer to a customers CSV upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomersCsvSummary {
    #[serde(flatten)]
    pub summary: CustomersSummary,
    /// Nothing was written (`dry_run`): the counts are what would happen.
    pub dry_run: bool,
    /// Extra cells ignored, rows of delimiters only skipped.
    pub warnings: Vec<FieldError>,
    pub detected: Detected,
}

/// Upload customers as CSV
///
/// The dialer's uploader: one status per file, the options as form fields,
/// headers matched by `mapping` or automatically ("Full name", "Phone
/// number", "Mobile", "Agent", "Follow-up date", "Created", "Do not call", …; other
/// columns become custom `fields`). Dates are read with `date_format` in
/// `timezone` (default `DD-MM-YYYY HH:MM` in the campaign's zone; a time
/// skipped by a daylight-saving change is moved forward by the gap, a time
/// that occurs twice is the earlier). The CSV limits of the integration
/// apply (`GET /v1/limits`). Rows are reported by their line (`row`) and
/// column. Every unmapped column is kept in `fields`, whatever its header.
/// The file is read as `POST /v1/cases/csv` reads its own: encodings
/// sniffed, detected or named with `charset` (`unsupported_encoding` when
/// it cannot be told for sure), `,`, `;` or tab, rows of delimiters only
/// skipped with an `empty_rows_skipped` warning, a workbook told to go to
/// `POST /v1/imports`, one `file` part (400 `multiple_files`).
///
/// `curl -H "Authorization: Bearer $TOKEN" -F file=@leads.csv -F status=new -F override_existing=true .../v1/campaigns/$ID/customers/csv`
#[utoipa::path(
    tag = "customers",
    params(("id" = Uuid, Path, description = "The campaign's id")),
    request_body(content = CustomerCsvForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Every row's outcome (written unless `dry_run`)", body = CustomersCsvSummary),
        (status = 404, description = "`campaign_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "`body_timeout`: the body stalled (no byte for `INTAKE_BODY_TIMEOUT_MS`); nothing written", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`server_busy`: as many bulk ingestions as the server writes at once are running (streams, uploads, JSON bodies of more than 100 rows); retry after `Retry-After`. Or `service_unavailable`: the database is down", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`file_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`multiple_files`: more than one `file` part; `unknown_field`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`unknown_charset`; `invalid_csv` (the file breaks the CSV rules: `unsupported_encoding`, `not_csv`, `too_many_records`, …), `invalid_mapping`, `missing_column`, `validation_failed` (status, options, or `atomic` with failed rows)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["customers:write"]))
)]
#[post("/campaigns/{id}/customers/csv")]
pub async fn upload_customers_csv(
    auth: Authorized<CustomersWrite>,
    state: web::Data<AppState>,
    id: web::Path<CampaignId>,
    form: Multipart,
) -> Result<HttpResponse, ApiError> {
    let access = &auth.principal.access;
    let campaign = campaign(&state, access, *id).await?;
    let settings = &state.settings;
    let form = read_form(form, settings.max_body_bytes, settings.body_timeout).await?;
    let upload = CustomerUpload::from_fields(&form.fields)?;
    let file = form.file.ok_or_else(missing_file)?;
    // Status and options first: a bad one answers before the file is read.
    let ingest = CustomerIngest::new(&state.store, access, &campaign, &upload.spec).await?;
    let integration = state.store.get_integration(access.integration_id).await?;
    let limits = integration.map(|i| i.csv_limits).unwrap_or_default();
    let _bulk = (!upload.dry_run).then(|| state.bulk.enter()).transpose()?;
    // Decoding and reading the table is CPU work: off the async workers.
    let named = upload.charset;
    let mut table = web::block(move || read_table(&file, &limits, named, "customers"))
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("reading the CSV: {e}")))?;
    if !table.errors.is_empty() {
        return Err(invalid_csv(std::mem::take(&mut table.errors)));
    }
    let columns = CustomerColumns::read(&mut table, upload.mapping.as_ref())?;
    // The header's warnings and the rows', by line.
    table.warnings.sort_by_key(|w| w.row);
    let mut source = CsvRows::new(
        std::mem::take(&mut table.records),
        Some(columns),
        Vec::new(),
    );
    let options = run_options(upload.spec.atomic, upload.dry_run, Keep::All);
    let path = "customers_csv";
    let summary = ingest_customers(state.services(), ingest, &mut source, options, path).await?;
    Ok(HttpResponse::Ok().json(CustomersCsvSummary {
        summary: answer(summary)?,
        dry_run: upload.dry_run,
        warnings: table.warnings,
        detected: table.detected.unwrap_or_default(),
    }))
}

fn missing_file() -> ApiError {
    ApiError::validation(
        ErrorCode::ValidationFailed,
        vec![FieldError::field(
            "file",
            ErrorCode::Required,
            "attach the CSV as the form field `file`",
        )],
    )
}

/// The uploader's options, from the form's text fields.
struct CustomerUpload {
    spec: UploadSpec,
    mapping: Option<serde_json::Map<String, serde_json::Value>>,
    dry_run: bool,
    /// The file's encoding, as the uploader named it.
    charset: Option<&'static encoding_rs::Encoding>,
}

impl CustomerUpload {
    fn from_fields(fields: &[(String, String)]) -> Result<Self, ApiError> {
        let mut upload = CustomerUpload {
            spec: UploadSpec {
                spreadsheet_dates: true,
                ..Default::default()
            },
            mapping: None,
            dry_run: false,
            charset: None,
        };
        for (name, value) in fields {
            let spec = &mut upload.spec;
            if customer_option(
                name,
                value,
                &mut spec.status,
                &mut upload.mapping,
                &mut spec.options,
            )? {
                continue;
            }
            match name.as_str() {
                "atomic" => upload.spec.atomic = truthy(name, value)?,
                "dry_run" => upload.dry_run = truthy(name, value)?,
                "charset" => upload.charset = Some(charset(value)?),
                other => {
                    return Err(ApiError::new(
                        ErrorCode::UnknownField,
                        format!(
                            "Unknown form field {:?}; expected file, {CUSTOMER_OPTION_FIELDS}, atomic, dry_run, charset.",
                            excerpt(other)
                        ),
                    ));
                }
            }
        }
        Ok(upload)
    }
}

/// The customers' uploader option fields (import jobs take them too).
pub(crate) const CUSTOMER_OPTION_FIELDS: &str = "status, mapping, international_format, override_existing, update_contact_allowed, reset_status, unique_mode, date_format, timezone";

/// Reads one of [`CUSTOMER_OPTION_FIELDS`] into its place; `false` when
/// `name` is not one of them.
pub(crate) fn customer_option(
    name: &str,
    value: &str,
    status: &mut Option<String>,
    mapping_given: &mut Option<serde_json::Map<String, serde_json::Value>>,
    options: &mut CustomerOptions,
) -> Result<bool, ApiError> {
    let given = || (!value.is_empty()).then(|| value.to_string());
    match name {
        "status" => *status = given(),
        "mapping" if !value.is_empty() => *mapping_given = Some(mapping(value)?),
        "mapping" => {}
        "international_format" => options.international_format = truthy(name, value)?,
        "override_existing" => options.override_existing = truthy(name, value)?,
        "update_contact_allowed" => options.update_contact_allowed = truthy(name, value)?,
        "reset_status" => options.reset_status = truthy(name, value)?,
        "unique_mode" => options.unique_mode = unique_mode(value)?,
        "date_format" => options.date_format = given(),
        "timezone" => options.timezone = given(),
        _ => return Ok(false),
    }
    Ok(true)
}

fn mapping(value: &str) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    serde_json::from_str(value).map_err(|e| {
        ApiError::validation(
            ErrorCode::InvalidMapping,
            vec![FieldError::field(
                "mapping",
                ErrorCode::InvalidMapping,
                format!("mapping must be a JSON object of header → field: {e}"),
            )],
        )
    })
}

fn unique_mode(value: &str) -> Result<UniqueMode, ApiError> {
    if value.is_empty() {
        return Ok(UniqueMode::Allow);
    }
    UniqueMode::parse(value).ok_or_else(|| {
        ApiError::validation(
            ErrorCode::ValidationFailed,
            vec![FieldError::field(
                "unique_mode",
                ErrorCode::InvalidEnum,
                format!(
                    "{:?} is not a unique_mode; expected allow, move or skip_if_elsewhere",
                    excerpt(value)
                ),
            )],
        )
    })
}

/// Filters of the customer collection.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    /// The customer's phone in any format (normalized as the campaign
    /// reads national numbers before the lookup).
    pub phone: Option<String>,
    /// One of the campaign's statuses.
    pub status: Option<String>,
}

/// List a campaign's customers
///
/// In creation order, a page at a time.
#[utoipa::path(
    tag = "customers",
    params(("id" = Uuid, Path, description = "The campaign's id"), CustomerQuery, PageQuery),
    responses(
        (status = 200, description = "A page of customers", body = Page<Customer>),
        (status = 400, description = "`invalid_query` (e.g. a phone that is not a phone number)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`campaign_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["customers:read"]), ("bearer" = ["customers:write"]))
)]
#[get("/campaigns/{id}/customers")]
pub async fn list_customers(
    auth: Authorized<CustomersRead>,
    state: web::Data<AppState>,
    id: web::Path<CampaignId>,
    filter: web::Query<CustomerQuery>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    let campaign = campaign(&state, &auth.principal.access, *id).await?;
    let phone = match filter
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(raw) => {
            let region = campaign.default_region.parse().map_err(|_| {
                ApiError::internal(anyhow::anyhow!("campaign with an invalid region"))
            })?;
            Some(normalize_phone(raw, region, false).map_err(|message| {
                ApiError::new(ErrorCode::InvalidQuery, format!("phone: {message}"))
            })?)
        }
    };
    let filter = CustomerFilter {
        phone,
        status: filter
            .status
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(canonical_enum),
    };
    let rows = state
        .store
        .list_customers(campaign.id, &filter, page.after_id(), page.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, page, |c| c.id)))
}
