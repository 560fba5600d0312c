//! Bytes arriving from a client or a file: the next chunk of a stream,
//! with a stall timeout, and the errors of a stream that stalls or breaks.

use std::fmt::Display;

use actix_web::http::header;
use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};

use crate::error::{ApiError, ErrorCode};

/// The next chunk of a stream, `None` at its end; 408 `body_timeout` when
/// nothing arrives for `timeout`.
pub async fn next_chunk<S, E>(
    stream: &mut S,
    timeout: std::time::Duration,
) -> Result<Option<Bytes>, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    match tokio::time::timeout(timeout, stream.next()).await {
        Ok(None) => Ok(None),
        Ok(Some(chunk)) => chunk.map(Some).map_err(|e| broken_off(&e)),
        Err(_) => Err(stalled(timeout)),
    }
}

/// 408: the body stalled.
pub fn stalled(timeout: std::time::Duration) -> ApiError {
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
pub fn broken_off(e: &dyn Display) -> ApiError {
    tracing::info!(error = %e, "request body broken off");
    ApiError::new(
        ErrorCode::InvalidBody,
        format!("The body could not be read: {e}"),
    )
}
