//! The answers the HTTP layer gives before a request reaches the
//! application, as problems like every other answer.
//!
//! actix-http refuses a request it cannot parse (400), whose head is too
//! large or has too many headers (431), or whose head does not arrive in
//! time (408) by itself, with an empty body: no route, middleware or
//! `ResponseError` sees it. [`EarlyErrors`] wraps each connection's socket
//! and recognizes those answers as they are written — a status line of one
//! of the three, `content-length: 0` and no header but `connection` and
//! `date`, which no answer of the application looks like (every one carries
//! a body or at least `x-request-id` and the security headers) — and writes
//! an `application/problem+json` answer in their place, with a stable code
//! and the same security headers.
//!
//! Not covered: a malformed request pipelined behind a good one on the same
//! connection, whose refusal actix-http may write in one buffer after the
//! good one's answer; that answer goes out as actix-http wrote it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::{ErrorCode, Problem};

/// The refusals recognized, by status, with what their problem says.
const REFUSALS: [(u16, ErrorCode, &str); 3] = [
    (
        400,
        ErrorCode::MalformedRequest,
        "The request is not valid HTTP/1.1: its request line or one of its headers is malformed.",
    ),
    (
        408,
        ErrorCode::HeaderTimeout,
        "The request line and headers did not arrive in time; the connection is closed.",
    ),
    (
        431,
        ErrorCode::HeadersTooLarge,
        "The request's head is too large: at most 96 headers and 128 KiB of request line and headers are accepted.",
    ),
];

/// The longest head actix-http writes for such a refusal (status line,
/// content-length, connection, date): anything longer is not one.
const MAX_REFUSAL_HEAD: usize = 256;

/// A connection's socket that rewrites actix-http's own empty refusals.
pub struct EarlyErrors<T> {
    io: T,
    /// A replacement answer not yet written whole, and how much of it was.
    pending: Vec<u8>,
    written: usize,
}

impl<T> EarlyErrors<T> {
    pub fn new(io: T) -> Self {
        EarlyErrors {
            io,
            pending: Vec::new(),
            written: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> EarlyErrors<T> {
    /// Writes what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            match Pin::new(&mut self.io).poll_write(cx, &self.pending[self.written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.pending = Vec::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for EarlyErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for EarlyErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
            return Poll::Ready(Err(e));
        }
        if !this.pending.is_empty() {
            return Poll::Pending;
        }
        if let Some(answer) = replacement(buf) {
            this.pending = answer;
            // Taken whole: what is not written yet goes out before anything
            // else, at the next write, flush or shutdown.
            if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        std::task::ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        std::task::ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// The problem answer to write instead of `buf`, when `buf` is one of
/// actix-http's empty refusals.
fn replacement(buf: &[u8]) -> Option<Vec<u8>> {
    if buf.len() > MAX_REFUSAL_HEAD || !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(buf).ok()?;
    let mut lines = head[..head.len() - 4].split("\r\n");
    let status_line = lines.next()?;
    let rest = status_line.strip_prefix("HTTP/1.1 ")?;
    let status: u16 = rest.get(..3)?.parse().ok()?;
    let (_, code, detail) = REFUSALS.iter().find(|(s, ..)| *s == status)?;
    let mut empty = false;
    let mut date = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" if value == "0" => empty = true,
            "connection" => {}
            "date" => date = Some(value),
            _ => return None,
        }
    }
    if !empty {
        return None;
    }
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    tracing::info!(
        status,
        code = %code,
        request_id = %request_id,
        "request refused before routing"
    );
    let problem = Problem {
        type_: code.doc_url(),
        title: code.title().to_string(),
        status,
        detail: (*detail).to_string(),
        code: *code,
        request_id: request_id.clone(),
        errors: Vec::new(),
        committed: None,
    };
    let body = serde_json::to_vec(&problem).ok()?;
    let mut answer = format!(
        "{status_line}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\
         connection: close\r\nx-content-type-options: nosniff\r\nreferrer-policy: no-referrer\r\n\
         x-request-id: {request_id}\r\n",
        body.len()
    );
    if let Some(date) = date {
        answer.push_str(&format!("date: {date}\r\n"));
    }
    answer.push_str("\r\n");
    let mut answer = answer.into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    const DATE: &str = "date: Tue, 01 Dec 2026 10:00:00 GMT";

    fn split(answer: &[u8]) -> (String, serde_json::Value) {
        let text = std::str::from_utf8(answer).expect("UTF-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head");
        (
            head.to_owned(),
            serde_json::from_str(body).expect("a JSON body"),
        )
    }

    #[test]
    fn the_three_refusals_become_problems() {
        for (status, reason, code) in [
            (400, "Bad Request", "malformed_request"),
            (408, "Request Timeout", "header_timeout"),
            (431, "Request Header Fields Too Large", "headers_too_large"),
        ] {
            let refusal = format!(
                "HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n{DATE}\r\n\r\n"
            );
            let answer = replacement(refusal.as_bytes()).expect(code);
            let (head, body) = split(&answer);
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status} {reason}\r\n")),
                "{head}"
            );
            assert!(
                head.contains("content-type: application/problem+json"),
                "{head}"
            );
            assert!(head.contains(DATE), "{head}");
            assert!(head.contains("x-content-type-options: nosniff"), "{head}");
            let length = format!(
                "content-length: {}",
                serde_json::to_vec(&body).expect("JSON").len()
            );
            assert!(head.contains(&length), "{head}");
            assert_eq!(body["code"], code);
            assert_eq!(body["status"], status);
            assert_eq!(body["type"], format!("/docs/errors#{code}"));
            assert!(head.contains(&format!(
                "x-request-id: {}",
                body["request_id"].as_str().expect("request_id")
            )));
        }
    }

    #[test]
    fn answers_of_the_application_are_left_alone() {
        for answer in [
            // A body.
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}".to_owned(),
            // Other headers (every application answer has x-request-id).
            format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-request-id: a\r\n{DATE}\r\n\r\n"
            ),
            // Another status.
            format!("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n{DATE}\r\n\r\n"),
            // A streamed answer's head.
            format!("HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\n{DATE}\r\n\r\n"),
            // Not the end of a head.
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n".to_owned(),
        ] {
            assert!(replacement(answer.as_bytes()).is_none(), "{answer}");
        }
    }

    #[tokio::test]
    async fn the_replacement_is_written_whole_through_a_slow_socket() {
        // A duplex pipe of 7 bytes: every write is partial.
        let (client, mut server) = tokio::io::duplex(7);
        let mut wrapped = EarlyErrors::new(client);
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut server, &mut all)
                .await
                .expect("read");
            all
        });
        let refusal = format!(
            "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n{DATE}\r\n\r\n"
        );
        let taken = wrapped.write(refusal.as_bytes()).await.expect("write");
        assert_eq!(taken, refusal.len());
        wrapped.shutdown().await.expect("shutdown");
        drop(wrapped);
        let (head, body) = split(&reader.await.expect("reader"));
        assert!(head.starts_with("HTTP/1.1 431 "));
        assert_eq!(body["code"], "headers_too_large");
    }
}
