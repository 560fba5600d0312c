//! The body of a request: its kind (JSON or NDJSON), read whole within
//! the limits, or handed on as a stream.

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;

use crate::error::{ApiError, ErrorCode};
use crate::ingest::input::next_chunk;
use crate::ingest::ndjson::ByteStream;

/// What a bulk body is.
pub enum BodyKind {
    Json,
    Ndjson,
}

/// The kind of a body, from its `Content-Type` (415 for any other).
pub fn body_kind(req: &HttpRequest) -> Result<BodyKind, ApiError> {
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

/// A request's payload as a byte stream for the ingestion sources.
pub fn payload_stream(payload: web::Payload) -> impl ByteStream {
    payload.map(|chunk| chunk.map_err(std::io::Error::other))
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

/// Bodies larger than this are parsed on a blocking thread.
const BLOCKING_PARSE_BYTES: usize = 1 << 20;

/// Parses a body: a large one on a blocking thread, not on a worker that
/// serves other requests meanwhile.
pub async fn parse_off_the_worker<T: Send + 'static>(
    body: web::Bytes,
    parse: fn(web::Bytes) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    if body.len() <= BLOCKING_PARSE_BYTES {
        return parse(body);
    }
    web::block(move || parse(body))
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("parsing the body: {e}")))?
}
