//! Reading an NDJSON request body line by line as it arrives, with the
//! stream's byte limit, a per-line limit, batches bounded in bytes as well
//! as in lines, and a stall timeout (memory stays bounded on a stream of
//! any length and any line length).

use actix_web::web::{Bytes, BytesMut};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode, FieldError, json_body_error, json_message};
use crate::ingest::input::next_chunk;

/// A stream of bytes an NDJSON body arrives in (a request's payload, a
/// file read in chunks).
pub trait ByteStream: futures_util::Stream<Item = std::io::Result<Bytes>> + Unpin {}

impl<S: futures_util::Stream<Item = std::io::Result<Bytes>> + Unpin> ByteStream for S {}

/// The most bytes of lines one batch takes (besides its line count): a
/// batch of long lines is cut short, so that the few batches in flight
/// (one validated, one written) hold a few megabytes whatever the lines.
pub const BATCH_BYTES: usize = 4 << 20;

/// The lines of a streamed body.
pub struct NdjsonLines<S> {
    payload: S,
    pending: BytesMut,
    /// Bytes of `pending` already searched for a line break.
    scanned: usize,
    received: u64,
    line_limit: usize,
    stream_limit: u64,
    /// How long the body may stall.
    stall: std::time::Duration,
    done: bool,
    /// Non-blank lines handed out so far (the row number of the last one).
    pub rows: u64,
}

impl<S: ByteStream> NdjsonLines<S> {
    pub fn new(
        payload: S,
        line_limit: usize,
        stream_limit: u64,
        stall: std::time::Duration,
    ) -> Self {
        Self {
            payload,
            pending: BytesMut::new(),
            scanned: 0,
            received: 0,
            line_limit,
            stream_limit,
            stall,
            done: false,
            rows: 0,
        }
    }

    /// The next non-blank line (without its line break), or `None` at the
    /// end of the stream.
    pub async fn next_line(&mut self) -> Result<Option<Bytes>, ApiError> {
        loop {
            // Only bytes not yet scanned are searched, so a long line arriving
            // in many chunks is not rescanned each time.
            if let Some(found) = self.pending[self.scanned..]
                .iter()
                .position(|b| *b == b'\n')
            {
                let end = self.scanned + found;
                self.scanned = 0;
                let mut line = self.pending.split_to(end + 1).freeze();
                line.truncate(end);
                if let Some(line) = self.non_blank(line) {
                    return Ok(Some(line));
                }
                continue;
            }
            self.scanned = self.pending.len();
            if self.pending.len() > self.line_limit {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!(
                        "Line {} is longer than the limit of {} bytes.",
                        self.rows + 1,
                        self.line_limit
                    ),
                ));
            }
            if self.done {
                self.scanned = 0;
                let rest = self.pending.split().freeze();
                return Ok(if rest.is_empty() {
                    None
                } else {
                    self.non_blank(rest)
                });
            }
            match next_chunk(&mut self.payload, self.stall).await? {
                None => self.done = true,
                Some(chunk) => {
                    self.received += chunk.len() as u64;
                    if self.received > self.stream_limit {
                        return Err(ApiError::new(
                            ErrorCode::PayloadTooLarge,
                            format!(
                                "The stream exceeds the limit of {} bytes.",
                                self.stream_limit
                            ),
                        ));
                    }
                    self.pending.extend_from_slice(&chunk);
                }
            }
        }
    }

    fn non_blank(&mut self, mut line: Bytes) -> Option<Bytes> {
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        self.rows += 1;
        Some(line)
    }

    /// Up to `size` rows (and about [`BATCH_BYTES`]) parsed as `T`: the
    /// rows that parse, and the problems of those that do not (each with
    /// its row). Empty at the end.
    pub async fn next_batch<T: DeserializeOwned>(
        &mut self,
        size: usize,
    ) -> Result<(Vec<(u64, T)>, Vec<FieldError>), ApiError> {
        let mut rows = Vec::with_capacity(size.min(1024));
        let mut broken = Vec::new();
        let mut bytes = 0;
        while rows.len() + broken.len() < size && bytes < BATCH_BYTES {
            let Some(line) = self.next_line().await? else {
                break;
            };
            bytes += line.len();
            match serde_json::from_slice::<T>(&line) {
                Ok(value) => rows.push((self.rows, value)),
                Err(e) => broken.push(FieldError {
                    row: Some(self.rows),
                    column: None,
                    field: None,
                    code: json_body_error(&e).code,
                    message: json_message(&e),
                }),
            }
        }
        Ok((rows, broken))
    }
}
