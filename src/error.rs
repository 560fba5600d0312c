//! The error model: one table of stable codes, each with its HTTP status,
//! answered as RFC 9457 `application/problem+json`.
//!
//! Codes are a public contract: they are never renamed or reused. The same
//! enum names the problem of a whole request (`Problem::code`) and of one
//! item inside it (`FieldError::code`).

use std::fmt;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How many characters of a caller's input an error message may quote.
pub const EXCERPT_CHARS: usize = 100;

/// The page that explains every code (served by this server).
pub const ERRORS_PAGE: &str = "/docs/errors";

/// Seconds a client is asked to wait when a dependency is down.
pub const RETRY_AFTER_SECONDS: u64 = 5;

macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = ($status:expr, $title:literal), )+) => {
        /// Every stable error code, with its HTTP status in the table of
        /// `ErrorCode::status`. Codes inside `errors[]` (per field or row)
        /// answer within a 422 (or 200 for non-atomic requests).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $( $(#[doc = $doc])* $variant, )+
        }

        impl ErrorCode {
            /// Every code, in table order (documentation and tests).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The HTTP status a request answers with when this is its code.
            pub fn status(self) -> StatusCode {
                match self { $( ErrorCode::$variant => $status, )+ }
            }

            /// A short, fixed human summary of the code.
            pub fn title(self) -> &'static str {
                match self { $( ErrorCode::$variant => $title, )+ }
            }

            /// What the code means (its documentation, one paragraph).
            pub fn description(self) -> &'static str {
                match self { $( ErrorCode::$variant => concat!($($doc, "\n"),*), )+ }
            }
        }
    };
}

error_codes! {
    // Request shape
    /// The body is not valid JSON (syntax error or truncated).
    MalformedJson = (StatusCode::BAD_REQUEST, "Malformed JSON"),
    /// The JSON is well-formed but does not have the expected shape.
    InvalidBody = (StatusCode::BAD_REQUEST, "Invalid request body"),
    /// The body has a field this endpoint does not know.
    UnknownField = (StatusCode::BAD_REQUEST, "Unknown field"),
    /// The `Content-Type` is not one this endpoint accepts.
    UnsupportedMediaType = (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type"),
    /// The body is larger than the configured limit.
    PayloadTooLarge = (StatusCode::PAYLOAD_TOO_LARGE, "Payload too large"),
    /// The request is not valid HTTP/1.1 (a malformed request line or
    /// header), refused before routing.
    MalformedRequest = (StatusCode::BAD_REQUEST, "Malformed request"),
    /// The request's head (request line and headers) is too large or has
    /// too many headers.
    HeadersTooLarge = (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "Request headers too large"),
    /// The request line and headers did not arrive in time.
    HeaderTimeout = (StatusCode::REQUEST_TIMEOUT, "Request head timed out"),
    /// A query parameter is missing, malformed or out of range.
    InvalidQuery = (StatusCode::BAD_REQUEST, "Invalid query parameter"),
    /// A path parameter is malformed (e.g. not a UUID).
    InvalidPathParameter = (StatusCode::BAD_REQUEST, "Invalid path parameter"),
    /// The pagination cursor was not issued by this API.
    InvalidCursor = (StatusCode::BAD_REQUEST, "Invalid cursor"),
    /// No route has this path.
    RouteNotFound = (StatusCode::NOT_FOUND, "Route not found"),
    /// The path exists, but not with this method (see `Allow`).
    MethodNotAllowed = (StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),

    // Authentication and access
    /// No bearer token, or one that is malformed, expired, revoked or not ours.
    InvalidToken = (StatusCode::UNAUTHORIZED, "Invalid token"),
    /// The token is valid but lacks the scope this route needs.
    InsufficientScope = (StatusCode::FORBIDDEN, "Insufficient scope"),
    /// The integration was disabled or deleted (an import job it started
    /// stops with this).
    IntegrationDisabled = (StatusCode::FORBIDDEN, "Integration disabled"),

    // Validation
    /// One or more fields are invalid; see `errors`.
    ValidationFailed = (StatusCode::UNPROCESSABLE_ENTITY, "Validation failed"),
    /// A required field is missing or empty.
    Required = (StatusCode::UNPROCESSABLE_ENTITY, "Required field missing"),
    /// A value is longer than its field allows.
    TooLong = (StatusCode::UNPROCESSABLE_ENTITY, "Value too long"),
    /// A value is not one of the allowed values.
    InvalidEnum = (StatusCode::UNPROCESSABLE_ENTITY, "Invalid value"),
    /// A list repeats a value that must be unique.
    DuplicateValue = (StatusCode::UNPROCESSABLE_ENTITY, "Duplicate value"),
    /// Not an ISO 3166-1 alpha-2 country code with a phone numbering plan.
    InvalidRegion = (StatusCode::UNPROCESSABLE_ENTITY, "Invalid region"),
    /// Not an IANA time zone name.
    InvalidTimezone = (StatusCode::UNPROCESSABLE_ENTITY, "Invalid time zone"),
    /// The group does not exist.
    UnknownGroup = (StatusCode::UNPROCESSABLE_ENTITY, "Unknown group"),
    /// The team does not exist in the given group.
    UnknownTeam = (StatusCode::UNPROCESSABLE_ENTITY, "Unknown team"),
    /// Too many items in one request.
    TooManyItems = (StatusCode::UNPROCESSABLE_ENTITY, "Too many items"),
    /// A number outside its allowed range.
    OutOfRange = (StatusCode::UNPROCESSABLE_ENTITY, "Value out of range"),
    /// Not a scope an integration token can carry.
    InvalidScope = (StatusCode::UNPROCESSABLE_ENTITY, "Invalid scope"),
    /// A value of the wrong JSON type (e.g. a boolean where text belongs).
    InvalidType = (StatusCode::UNPROCESSABLE_ENTITY, "Invalid type"),
    /// Text with a control character (a NUL, an escape, …; free text may
    /// hold line breaks and tabs).
    ControlCharacter = (StatusCode::UNPROCESSABLE_ENTITY, "Control character"),
    /// A date that is not in the expected format.
    InvalidDate = (StatusCode::UNPROCESSABLE_ENTITY, "Invalid date"),

    // Cases
    /// A case without its `external_id` (the client's Case ID).
    MissingExternalId = (StatusCode::UNPROCESSABLE_ENTITY, "Missing Case ID"),
    /// A case with neither `staff_id` nor `external_staff_id`.
    MissingStaffId = (StatusCode::UNPROCESSABLE_ENTITY, "Missing Staff ID"),
    /// The Staff ID (or External Staff ID) is not a staff member of the integration's groups.
    UnknownStaffId = (StatusCode::UNPROCESSABLE_ENTITY, "Unknown Staff ID"),
    /// `staff_id` and `external_staff_id` name two different staff members.
    /// A warning in the CSV uploader and import jobs: the case is stored
    /// with the staff member the Staff ID names and the External Staff ID
    /// as sent.
    StaffIdMismatch = (StatusCode::UNPROCESSABLE_ENTITY, "Staff IDs disagree"),
    /// The External Staff ID belongs to more than one staff member: send `staff_id`.
    AmbiguousExternalStaffId = (StatusCode::UNPROCESSABLE_ENTITY, "Ambiguous External Staff ID"),
    /// The staff member is inactive.
    StaffInactive = (StatusCode::UNPROCESSABLE_ENTITY, "Staff member inactive"),
    /// The `automated_hotline` channel cannot be imported.
    ChannelNotImportable = (StatusCode::UNPROCESSABLE_ENTITY, "Channel not importable"),
    /// A category that is not configured (`/v1/admin/categories`).
    UnknownCategory = (StatusCode::UNPROCESSABLE_ENTITY, "Unknown category"),
    /// A custom data column with an empty name.
    EmptyDataKey = (StatusCode::UNPROCESSABLE_ENTITY, "Empty data key"),
    /// Two custom data columns with the same name.
    DuplicateDataKey = (StatusCode::UNPROCESSABLE_ENTITY, "Duplicate data key"),
    /// The integration already has a case with this `external_id` (`on_conflict: error`).
    DuplicateExternalId = (StatusCode::CONFLICT, "Case ID already exists"),
    /// The same `external_id` appears twice in one request.
    DuplicateInRequest = (StatusCode::UNPROCESSABLE_ENTITY, "Duplicate in request"),
    /// The list's assignment names a group, team or evaluator the integration cannot see.
    UnknownAssignment = (StatusCode::UNPROCESSABLE_ENTITY, "Unknown assignment"),

    // Customers
    /// A phone number that cannot be read as a valid number (E.164 after normalization).
    InvalidPhone = (StatusCode::UNPROCESSABLE_ENTITY, "Invalid phone number"),
    /// No active agent of the campaign's group has this exact name.
    UnknownAgent = (StatusCode::UNPROCESSABLE_ENTITY, "Unknown agent"),
    /// Several active agents of the campaign's group have this exact name.
    AmbiguousAgent = (StatusCode::UNPROCESSABLE_ENTITY, "Ambiguous agent"),
    /// The same phone number appears earlier in the upload.
    DuplicateInFile = (StatusCode::UNPROCESSABLE_ENTITY, "Duplicate in file"),
    /// The campaign already holds a customer with this phone (skip reason, or 409 for one customer).
    AlreadyExists = (StatusCode::CONFLICT, "Customer already exists"),
    /// Another campaign holds this phone (`unique_mode: skip_if_elsewhere`; a skip reason).
    ExistsInOtherCampaign = (StatusCode::OK, "Exists in another campaign"),
    /// A status that is not one of the campaign's statuses.
    InvalidStatus = (StatusCode::UNPROCESSABLE_ENTITY, "Invalid status"),
    /// The `mapping` names a header the file does not have, or a field that does not exist.
    InvalidMapping = (StatusCode::UNPROCESSABLE_ENTITY, "Invalid mapping"),
    /// A column the upload needs (name, phone) is neither mapped nor found.
    MissingColumn = (StatusCode::UNPROCESSABLE_ENTITY, "Missing column"),
    /// A `date_format` that cannot be read.
    InvalidDateFormat = (StatusCode::UNPROCESSABLE_ENTITY, "Invalid date format"),
    /// A concurrent request wrote some of these rows first; nothing of this request was written. Retry.
    ConcurrentWrite = (StatusCode::CONFLICT, "Concurrent write"),

    // CSV uploads (each item of `errors` has its line as `row`, and its `column`)
    /// The file breaks the CSV rules; every problem is in `errors`.
    InvalidCsv = (StatusCode::UNPROCESSABLE_ENTITY, "Invalid CSV"),
    /// The uploaded file is neither CSV nor a workbook this service reads.
    UnsupportedFileType = (StatusCode::UNPROCESSABLE_ENTITY, "Unsupported file type"),
    /// The first line looks like data, not headers.
    MissingHeaderRow = (StatusCode::UNPROCESSABLE_ENTITY, "Missing header row"),
    /// Column 1 is not `Staff ID`.
    FirstColumnNotStaffId = (StatusCode::UNPROCESSABLE_ENTITY, "First column is not Staff ID"),
    /// Column 2 is not `External Staff ID`.
    SecondColumnNotExternalStaffId = (StatusCode::UNPROCESSABLE_ENTITY, "Second column is not External Staff ID"),
    /// Column 3 is not `Case ID`.
    ThirdColumnNotCaseId = (StatusCode::UNPROCESSABLE_ENTITY, "Third column is not Case ID"),
    /// Only the mandatory (and known) columns: no data to score.
    NoDataColumns = (StatusCode::UNPROCESSABLE_ENTITY, "No data columns"),
    /// A header row and nothing else.
    NoRecords = (StatusCode::UNPROCESSABLE_ENTITY, "No records"),
    /// More records than the integration's limit (default 1,000).
    TooManyRecords = (StatusCode::UNPROCESSABLE_ENTITY, "Too many records"),
    /// More columns than the integration's limit (default 103).
    TooManyColumns = (StatusCode::UNPROCESSABLE_ENTITY, "Too many columns"),
    /// A cell longer than the integration's limit (default 1,000 characters).
    CellTooLong = (StatusCode::UNPROCESSABLE_ENTITY, "Cell too long"),
    /// A quoted cell is never closed (`row`: the line where its quote opens).
    UnterminatedQuote = (StatusCode::UNPROCESSABLE_ENTITY, "Unterminated quote"),
    /// A record with fewer cells than there are headers.
    ShortRow = (StatusCode::UNPROCESSABLE_ENTITY, "Short row"),
    /// Two columns share a name.
    DuplicateHeader = (StatusCode::UNPROCESSABLE_ENTITY, "Duplicate header"),
    /// A header cell is blank.
    EmptyHeader = (StatusCode::UNPROCESSABLE_ENTITY, "Empty header"),
    /// The file is larger than the upload limit.
    FileTooLarge = (StatusCode::PAYLOAD_TOO_LARGE, "File too large"),
    /// The file holds nothing.
    EmptyFile = (StatusCode::UNPROCESSABLE_ENTITY, "Empty file"),
    /// The file is not text (a workbook sent to a CSV uploader is told so:
    /// import it with `POST /v1/imports`).
    NotCsv = (StatusCode::UNPROCESSABLE_ENTITY, "Not a CSV file"),
    /// The file's text encoding cannot be read, or cannot be told for sure
    /// (save it as CSV UTF-8, or name it with `charset`).
    UnsupportedEncoding = (StatusCode::UNPROCESSABLE_ENTITY, "Unsupported encoding"),
    /// Warning: a record has more cells than headers; the extra cells are ignored.
    ExtraCells = (StatusCode::OK, "Extra cells ignored"),
    /// Formerly the warning of a column of messages, comments or activity
    /// logs; no longer answered: every column is kept.
    IgnoredColumn = (StatusCode::OK, "Column ignored"),
    /// Warning: rows with no value at all (only delimiters, as spreadsheets
    /// write formatted empty rows) were skipped; the message counts them
    /// and lists their lines.
    EmptyRowsSkipped = (StatusCode::OK, "Empty rows skipped"),
    /// The `charset` form field is not a known encoding label.
    UnknownCharset = (StatusCode::UNPROCESSABLE_ENTITY, "Unknown charset"),
    /// The form has more than one `file` part: one file per upload.
    MultipleFiles = (StatusCode::BAD_REQUEST, "Multiple files"),

    // Resources
    /// No group with this id.
    GroupNotFound = (StatusCode::NOT_FOUND, "Group not found"),
    /// No team with this id.
    TeamNotFound = (StatusCode::NOT_FOUND, "Team not found"),
    /// No staff member with this Staff ID.
    StaffNotFound = (StatusCode::NOT_FOUND, "Staff member not found"),
    /// No category with this id.
    CategoryNotFound = (StatusCode::NOT_FOUND, "Category not found"),
    /// No campaign with this id (or none the caller may see).
    CampaignNotFound = (StatusCode::NOT_FOUND, "Campaign not found"),
    /// No integration with this id.
    IntegrationNotFound = (StatusCode::NOT_FOUND, "Integration not found"),
    /// No token with this jti for this integration.
    TokenNotFound = (StatusCode::NOT_FOUND, "Token not found"),
    /// No case with this id (or none the caller may see).
    CaseNotFound = (StatusCode::NOT_FOUND, "Case not found"),
    /// No case list with this id (or none the caller may see).
    ListNotFound = (StatusCode::NOT_FOUND, "List not found"),
    /// No import job with this id (or none of the caller's integration).
    ImportNotFound = (StatusCode::NOT_FOUND, "Import job not found"),
    /// The import job is not in a state that allows this: only a job
    /// awaiting confirmation (and not expired) is confirmed; only one not
    /// finished is cancelled.
    ImportStateConflict = (StatusCode::CONFLICT, "Import job in another state"),
    /// Another staff member already has this Staff ID.
    DuplicateStaffId = (StatusCode::CONFLICT, "Staff ID already exists"),
    /// Another resource of this kind already has this name.
    DuplicateName = (StatusCode::CONFLICT, "Name already exists"),
    /// The resource is still referenced (e.g. a group with teams or staff).
    ResourceInUse = (StatusCode::CONFLICT, "Resource in use"),

    // Service
    /// The database is unreachable; retry after `Retry-After` seconds.
    ServiceUnavailable = (StatusCode::SERVICE_UNAVAILABLE, "Service unavailable"),
    /// As many bulk ingestions as the server writes at once are running;
    /// retry after `Retry-After` seconds (small requests are still served).
    ServerBusy = (StatusCode::SERVICE_UNAVAILABLE, "Server busy"),
    /// The request body stalled: no byte arrived for longer than the
    /// configured body timeout.
    BodyTimeout = (StatusCode::REQUEST_TIMEOUT, "Body timed out"),
    /// The integration sent more requests than its rate limit lets
    /// through; retry after `Retry-After` seconds (see the `RateLimit` headers).
    RateLimited = (StatusCode::TOO_MANY_REQUESTS, "Rate limited"),
    /// An unexpected error; the request id identifies it in the logs.
    InternalError = (StatusCode::INTERNAL_SERVER_ERROR, "Internal error"),

    // Idempotency
    /// The `Idempotency-Key` header is not 1 to 255 visible ASCII characters.
    InvalidIdempotencyKey = (StatusCode::BAD_REQUEST, "Invalid idempotency key"),
    /// The `Idempotency-Key` was used for another request (method, path, query or body).
    IdempotencyKeyReused = (StatusCode::UNPROCESSABLE_ENTITY, "Idempotency key reused"),
    /// A request with this `Idempotency-Key` is still running; retry after `Retry-After` seconds.
    IdempotencyKeyInUse = (StatusCode::CONFLICT, "Idempotency key in use"),
}

impl ErrorCode {
    /// The page (and anchor) that explains this code, as the problem's `type`.
    pub fn doc_url(self) -> String {
        format!("{ERRORS_PAGE}#{self}")
    }

    /// Whether an answer with this code says "try again" rather than what
    /// the request did: such an answer is never kept for an idempotency key.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorCode::ServiceUnavailable
                | ErrorCode::ServerBusy
                | ErrorCode::BodyTimeout
                | ErrorCode::ConcurrentWrite
                | ErrorCode::RateLimited
                | ErrorCode::IdempotencyKeyInUse
                | ErrorCode::InternalError
        )
    }
}

/// Marks an answer that says "try again" (see [`ErrorCode::is_transient`]).
#[derive(Clone, Copy, Debug)]
pub struct Transient;

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The serde name is the stable code.
        let value = serde_json::to_value(self).map_err(|_| fmt::Error)?;
        f.write_str(value.as_str().unwrap_or_default())
    }
}

/// A column named by its header or by its 1-based index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Column {
    Name(String),
    Index(usize),
}

/// One problem inside a request: a field, a row, a cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// 1-based index of the item (array index, NDJSON line, or CSV line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// CSV column: header name or 1-based index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<Column>,
    /// The field, as a JSON path where nested (`staff[2].group_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub code: ErrorCode,
    pub message: String,
}

impl FieldError {
    pub fn field(field: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            row: None,
            column: None,
            field: Some(field.into()),
            code,
            message: message.into(),
        }
    }

    pub fn at_row(mut self, row: u64) -> Self {
        self.row = Some(row);
        self
    }
}

/// The body of every error answer (`application/problem+json`, RFC 9457).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "/docs/errors#validation_failed",
    "title": "Validation failed",
    "status": 422,
    "detail": "1 field is invalid",
    "code": "validation_failed",
    "request_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "errors": [{"field": "timezone", "code": "invalid_timezone", "message": "\"Mars/Base\" is not an IANA time zone name"}]
}))]
pub struct Problem {
    /// Where the code is explained: `/docs/errors#<code>`, a page this
    /// server serves (a URI reference, relative to the API's address).
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: ErrorCode,
    /// Identifies the request in logs and traces (the `X-Request-Id` header).
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// A non-atomic stream that stopped midway: what its earlier batches
    /// committed (those rows are stored; the rest of the stream is not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed: Option<Committed>,
}

tokio::task_local! {
    /// The id of the request being handled (set by the telemetry
    /// middleware), for error bodies built deep down.
    pub static REQUEST_ID: String;
}

/// The current request's id, or `"none"` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "none".to_string())
}

/// Rows a request committed before it stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Committed {
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    /// The last row (line) committed; the rows after it were not written.
    pub through_row: u64,
}

/// An error answer in the making. Handlers return `Result<_, ApiError>`.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub committed: Option<Committed>,
    headers: Vec<(header::HeaderName, String)>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            committed: None,
            headers: Vec::new(),
        }
    }

    /// A 422 (or the given code's status) listing every problem found.
    pub fn validation(code: ErrorCode, errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => errors[0].message.clone(),
            n => format!("{n} problems were found; see `errors`"),
        };
        Self::new(code, detail).with_errors(errors)
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// An unexpected failure: logged here with its whole cause chain, answered
    /// as an opaque 500.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        let error = error.into();
        tracing::error!(error = format!("{error:#}"), "internal error");
        Self::new(
            ErrorCode::InternalError,
            "An unexpected error occurred; quote the request id when you report it.",
        )
    }

    /// A dependency is down: 503 with `Retry-After`.
    pub fn unavailable(what: &str, error: impl fmt::Display) -> Self {
        tracing::warn!(error = %error, "{what} unavailable");
        Self::new(
            ErrorCode::ServiceUnavailable,
            format!("The {what} is unavailable; retry in a few seconds."),
        )
        .with_header(header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string())
    }

    pub fn problem(&self) -> Problem {
        Problem {
            type_: self.code.doc_url(),
            title: self.code.title().to_string(),
            status: self.code.status().as_u16(),
            detail: self.detail.clone(),
            code: self.code,
            request_id: current_request_id(),
            errors: self.errors.clone(),
            committed: self.committed,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        for (name, value) in &self.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        let mut response = response.json(self.problem());
        if self.code.is_transient() {
            response.extensions_mut().insert(Transient);
        }
        response
    }
}

/// The first [`EXCERPT_CHARS`] characters of a caller's input, for messages.
pub fn excerpt(input: &str) -> String {
    let mut chars = input.chars();
    let head: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// A body (or NDJSON line) that is not the expected JSON: `malformed_json`
/// for broken syntax, `unknown_field` or `invalid_body` for a wrong shape.
/// serde's message says where (line and column).
pub fn json_body_error(e: &serde_json::Error) -> ApiError {
    json_part_error(e, None)
}

/// [`json_body_error`] for one part of the body, named by `part` (`cases[3]`,
/// whose line and column the message then counts from).
pub fn json_part_error(e: &serde_json::Error, part: Option<&str>) -> ApiError {
    use serde_json::error::Category;
    let part = part.map(|p| format!("{p}: ")).unwrap_or_default();
    let message = json_message(e);
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            ErrorCode::MalformedJson,
            format!("The body is not valid JSON ({part}{message})."),
        ),
        Category::Data => {
            let code = if message.starts_with("unknown field") {
                ErrorCode::UnknownField
            } else {
                ErrorCode::InvalidBody
            };
            ApiError::new(
                code,
                format!("The body does not have the expected shape: {part}{message}"),
            )
        }
    }
}

/// The longest part of serde's message kept: it quotes the caller's input
/// (an unknown key, a string of the wrong type) whole, and a 60 MB value
/// would otherwise be echoed, and held once per listed error.
const JSON_MESSAGE_CHARS: usize = 300;

/// serde's message for `e`, cut to [`JSON_MESSAGE_CHARS`], with where it
/// was found (line and column).
pub fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let place = format!(" at line {} column {}", e.line(), e.column());
    let what = full.strip_suffix(&place).unwrap_or(&full);
    let mut chars = what.chars();
    let mut message: String = chars.by_ref().take(JSON_MESSAGE_CHARS).collect();
    if chars.next().is_some() {
        message.push('…');
    }
    if e.line() != 0 {
        message.push_str(&place);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_snake_case_and_have_a_status() {
        assert_eq!(
            ErrorCode::DuplicateStaffId.to_string(),
            "duplicate_staff_id"
        );
        assert_eq!(
            ErrorCode::PayloadTooLarge.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.to_string()), "duplicate code {code}");
        }
    }

    #[test]
    fn excerpt_keeps_the_first_hundred_characters() {
        let long = "é".repeat(3_000_000);
        let quoted = excerpt(&long);
        assert_eq!(quoted.chars().count(), EXCERPT_CHARS + 1);
        assert_eq!(excerpt("short"), "short");
    }
}
