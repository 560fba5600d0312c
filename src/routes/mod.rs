//! HTTP routes, one module per resource. Every handler is attribute-routed
//! and carries `#[utoipa::path]`, so the OpenAPI document is collected from
//! the handlers themselves (see [`configure`]).

pub mod admin;
pub mod campaigns;
pub mod case_csv;
pub mod cases;
pub mod customers;
pub mod health;
pub mod limits;
pub mod me;

use actix_web::dev::ResourceDef;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::{Method, header};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode, excerpt};
use crate::startup::AppState;

/// Registers every route (and so every documented operation).
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.configure(health::configure);
    cfg.service(utoipa_actix_web::scope("/v1/admin").configure(admin::configure));
    cfg.service(
        utoipa_actix_web::scope("/v1")
            .configure(me::configure)
            .configure(limits::configure)
            .configure(campaigns::configure)
            // Before `cases`: `/cases/csv` must not be taken for `/cases/{id}`.
            .configure(case_csv::configure)
            .configure(cases::configure)
            .configure(customers::configure),
    );
}

// ---- pagination -------------------------------------------------------------

pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 1_000;

/// `?cursor=&limit=` of every collection.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page; omit for the first page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
    /// Items per page, 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<u32>,
}

/// A validated page request: items after `after`, at most `limit`.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub after: Option<Uuid>,
    pub limit: u32,
}

impl PageRequest {
    /// How many rows to fetch: one more than the page, to know if another follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

impl PageQuery {
    pub fn parse(&self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!("`limit` must be from 1 to {MAX_PAGE_SIZE}; got {limit}"),
            ));
        }
        let after = match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidCursor,
                    format!("{:?} is not a cursor this API issued", excerpt(cursor)),
                )
            })?),
        };
        Ok(PageRequest { after, limit })
    }
}

/// One page of a collection, in a stable order (by creation).
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// `rows` were fetched with [`PageRequest::fetch`]; `key` is the sort key.
    pub fn from_rows(mut rows: Vec<T>, request: PageRequest, key: impl Fn(&T) -> Uuid) -> Self {
        let limit = request.limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| encode_cursor(key(last)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

fn encode_cursor(id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(cursor: &str) -> Option<Uuid> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    Uuid::from_slice(&bytes).ok()
}

/// `?group_id=` filter of collections that belong to a group.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupFilter {
    /// Only items of this group.
    pub group_id: Option<Uuid>,
}

/// For PATCH bodies: tells a field set to `null` (`Some(None)`) from an
/// absent one (`None`).
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

// ---- rejections ---------------------------------------------------------------

/// Extractor settings whose rejections answer in the problem shape.
pub fn extractor_configs(
    max_body_bytes: usize,
) -> (web::JsonConfig, web::QueryConfig, web::PathConfig) {
    let json = web::JsonConfig::default()
        .limit(max_body_bytes)
        .error_handler(|error, _req| json_rejection(error).into());
    let query =
        web::QueryConfig::default().error_handler(|error, _req| query_rejection(error).into());
    let path = web::PathConfig::default().error_handler(|error, _req| path_rejection(error).into());
    (json, query, path)
}

fn json_rejection(error: JsonPayloadError) -> ApiError {
    match error {
        JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("The body is {length} bytes; the limit is {limit} bytes."),
        ),
        JsonPayloadError::Overflow { limit } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("The body exceeds the limit of {limit} bytes."),
        ),
        JsonPayloadError::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "The body must be sent with `Content-Type: application/json`.",
        ),
        JsonPayloadError::Deserialize(e) => json_body_error(&e),
        other => ApiError::new(
            ErrorCode::InvalidBody,
            format!("The body could not be read: {other}"),
        ),
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

/// Reads a whole body, refusing more than `max_body_bytes` (413 stating
/// both figures) and a body that stalls for `body_timeout` (408). Memory
/// grows with what arrives, never with what `Content-Length` announces.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    settings: &crate::settings::Settings,
) -> Result<web::BytesMut, ApiError> {
    let limit = settings.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(length) = declared
        && length > limit
    {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("The body is {length} bytes; the limit is {limit} bytes."),
        ));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = next_chunk(&mut payload, settings.body_timeout).await? {
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("The body exceeds the limit of {limit} bytes."),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The next chunk of a body, `None` at its end; 408 `body_timeout` when
/// nothing arrives for `timeout`.
pub async fn next_chunk<S>(
    payload: &mut S,
    timeout: std::time::Duration,
) -> Result<Option<web::Bytes>, ApiError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>> + Unpin,
{
    use futures_util::StreamExt;
    match tokio::time::timeout(timeout, payload.next()).await {
        Ok(None) => Ok(None),
        Ok(Some(chunk)) => chunk.map(Some).map_err(payload_error),
        Err(_) => Err(body_timeout(timeout)),
    }
}

/// 408: the body stalled.
pub fn body_timeout(timeout: std::time::Duration) -> ApiError {
    tracing::info!(
        timeout_ms = timeout.as_millis() as u64,
        "request body stalled"
    );
    ApiError::new(
        ErrorCode::BodyTimeout,
        format!(
            "No byte of the body arrived for {} ms; the request was given up. Send the body without pauses.",
            timeout.as_millis()
        ),
    )
    .with_header(header::CONNECTION, "close")
}

/// The body could not be read (the client went away, a broken chunk).
pub fn payload_error(e: actix_web::error::PayloadError) -> ApiError {
    tracing::info!(error = %e, "request body broken off");
    ApiError::new(
        ErrorCode::InvalidBody,
        format!("The body could not be read: {e}"),
    )
}

fn query_rejection(error: QueryPayloadError) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidQuery,
        format!("The query string is invalid: {error}"),
    )
}

fn path_rejection(error: PathError) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidPathParameter,
        format!("The path is invalid: {error}"),
    )
}

// ---- unknown routes ------------------------------------------------------------

/// The documented routes and their methods, to tell a 405 from a 404.
pub struct RouteTable(Vec<(ResourceDef, Vec<Method>)>);

impl RouteTable {
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    (Method::GET, item.get.is_some()),
                    (Method::POST, item.post.is_some()),
                    (Method::PUT, item.put.is_some()),
                    (Method::PATCH, item.patch.is_some()),
                    (Method::DELETE, item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(m, present)| present.then_some(m))
                .collect();
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        RouteTable(routes)
    }

    fn allowed(&self, path: &str) -> Option<&[Method]> {
        self.0
            .iter()
            .find(|(def, _)| def.is_match(path))
            .map(|(_, methods)| methods.as_slice())
    }
}

/// Every request no route took: 405 where the path exists, else 404.
pub async fn fallback(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Err(match state.routes.allowed(req.path()) {
        Some(methods) if !methods.is_empty() => {
            let allow = methods
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{} is not allowed here; allowed: {allow}.", req.method()),
            )
            .with_header(header::ALLOW, allow)
        }
        _ => ApiError::new(ErrorCode::RouteNotFound, "No route has this path."),
    })
}
