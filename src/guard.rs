//! The gate of every `/v1` request, before its handler runs:
//!
//! 1. the bearer token is verified once (the handler's [`Authorized`]
//!    extractor takes the result instead of verifying it again);
//! 2. an integration's request is counted against its rate limit: past it
//!    the answer is 429 `rate_limited`, and every answer to an integration
//!    carries `RateLimit-Policy` and `RateLimit`;
//! 3. a `POST`, `PUT` or `PATCH` with an `Idempotency-Key` claims the key
//!    before any work starts, or replays the answer of the request that
//!    used it first, or is refused (another request with the key, or the
//!    same request still running).
//!
//! [`Authorized`]: crate::auth::Authorized

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use futures_util::Stream;
use sha2::{Digest, Sha256};

use crate::auth::{Authentication, Principal};
use crate::error::{ApiError, ErrorCode, Transient};
use crate::idempotency::{Claim, Lease, StoredAnswer, valid_key};
use crate::rate_limit::{Decision, RatePolicy};
use crate::startup::AppState;

type BoxedBody = Pin<Box<dyn Stream<Item = Result<Bytes, actix_web::error::PayloadError>>>>;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The headers of an answer that a replay repeats.
const REPLAYED_HEADERS: [HeaderName; 3] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::CONTENT_DISPOSITION,
];

pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if !req.path().starts_with("/v1/") {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    if let Some(error) = encoded_control_character(&req) {
        return Ok(problem(req, error));
    }
    if !req.headers().contains_key(header::AUTHORIZATION) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let authenticated = state.auth.authenticate_request(req.request()).await;
    let principal = authenticated.as_ref().ok().map(|(p, _)| p.clone());
    req.extensions_mut()
        .insert(Authentication(Some(authenticated)));

    // Rate limit: integrations only (the admin API is the operators').
    let mut rate = None;
    if let Some(Principal::Integration(integration)) = &principal {
        let policy = integration.rate_limit;
        let decision = state.rate_limiter.check(integration.id, policy).await;
        if !decision.allowed {
            let retry_after = decision.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            let error = ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "This integration may send {} requests per second (bursts of {}); retry in {retry_after} s.",
                    policy.per_second, policy.burst
                ),
            )
            .with_header(header::RETRY_AFTER, retry_after.to_string());
            let mut response = error.error_response();
            rate_headers(response.headers_mut(), policy, decision);
            return Ok(req.into_response(response));
        }
        rate = Some((policy, decision));
    }

    let key = req.headers().get(IDEMPOTENCY_KEY).cloned();
    let idempotent = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH);
    let mut response = match (key, principal) {
        (Some(key), Some(principal)) if idempotent => {
            with_idempotency_key(&state, &principal, key, req, next).await?
        }
        _ => next.call(req).await?.map_into_boxed_body(),
    };
    if let Some((policy, decision)) = rate {
        rate_headers(response.headers_mut(), policy, decision);
    }
    Ok(response)
}

/// Whether `text` holds a percent-encoded control character (`%00` to
/// `%1F`, `%7F`): no path segment or query value of the API may carry one
/// (PostgreSQL cannot even store a NUL).
fn has_encoded_control(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1].to_ascii_uppercase(), w[2].to_ascii_uppercase()),
                (b'0' | b'1', b'0'..=b'9' | b'A'..=b'F') | (b'7', b'F')
            )
    })
}

fn encoded_control_character(req: &ServiceRequest) -> Option<ApiError> {
    if has_encoded_control(req.path()) {
        return Some(ApiError::new(
            ErrorCode::InvalidPathParameter,
            "The path holds a control character (e.g. %00); no identifier of the API has one.",
        ));
    }
    if has_encoded_control(req.query_string()) {
        return Some(ApiError::new(
            ErrorCode::InvalidQuery,
            "A query parameter holds a control character (e.g. %00); no filter or option of the API takes one.",
        ));
    }
    None
}

/// `RateLimit-Policy` (the quota: a burst per window) and `RateLimit` (what
/// is left of it, and in how many seconds it is whole again), in the
/// structured-field form of the IETF draft.
fn rate_headers(headers: &mut header::HeaderMap, policy: RatePolicy, decision: Decision) {
    if policy.is_unlimited() {
        return;
    }
    let policy_value = format!(
        "\"integration\";q={};w={}",
        policy.burst,
        policy.window_seconds()
    );
    let reset = decision.reset.as_secs_f64().ceil() as u64;
    let value = format!("\"integration\";r={};t={reset}", decision.remaining);
    for (name, value) in [("ratelimit-policy", policy_value), ("ratelimit", value)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

fn owner(principal: &Principal) -> String {
    match principal {
        Principal::Admin(_) => "admin".to_string(),
        Principal::Integration(integration) => format!("integration:{}", integration.id),
    }
}

fn hex(digest: impl AsRef<[u8]>) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The media type of the request, without its parameters (a multipart
/// boundary differs from one `curl -F` to the next).
fn media_type(req: &ServiceRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The boundary of a multipart body.
fn multipart_boundary(req: &ServiceRequest) -> Option<Vec<u8>> {
    let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    value.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').as_bytes().to_vec())
            .filter(|b| !b.is_empty())
    })
}

/// What identifies a request apart from its body: method, path, query and
/// media type.
fn fingerprint(req: &ServiceRequest) -> String {
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str());
    hasher.update(b" ");
    hasher.update(req.path());
    hasher.update(b"?");
    hasher.update(req.query_string());
    hasher.update(b" ");
    hasher.update(media_type(req));
    hex(hasher.finalize())
}

/// The SHA-256 of a body, fed chunk by chunk. In a multipart body every
/// occurrence of the boundary counts as one fixed marker, so that the same
/// form sent again with a new boundary hashes the same.
#[derive(Clone)]
struct BodyHasher {
    hasher: Sha256,
    boundary: Option<Vec<u8>>,
    /// The end of the last chunk, which may begin a boundary.
    carry: Vec<u8>,
}

impl BodyHasher {
    fn new(boundary: Option<Vec<u8>>) -> Self {
        Self {
            hasher: Sha256::new(),
            boundary,
            carry: Vec::new(),
        }
    }

    fn update(&mut self, chunk: &[u8]) {
        let Some(boundary) = &self.boundary else {
            self.hasher.update(chunk);
            return;
        };
        let mut buffer = std::mem::take(&mut self.carry);
        buffer.extend_from_slice(chunk);
        let mut at = 0;
        while let Some(found) = memchr::memmem::find(&buffer[at..], boundary) {
            self.hasher.update(&buffer[at..at + found]);
            self.hasher.update(b"\0boundary\0");
            at += found + boundary.len();
        }
        // What could be the start of a boundary waits for the next chunk.
        let keep = (boundary.len() - 1).min(buffer.len() - at);
        let end = buffer.len() - keep;
        self.hasher.update(&buffer[at..end]);
        self.carry = buffer[end..].to_vec();
    }

    fn finish(mut self) -> String {
        let carry = std::mem::take(&mut self.carry);
        self.hasher.update(&carry);
        hex(self.hasher.finalize())
    }
}

fn problem(req: ServiceRequest, error: ApiError) -> ServiceResponse<BoxBody> {
    let response = error.error_response();
    req.into_response(response)
}

async fn with_idempotency_key(
    state: &web::Data<AppState>,
    principal: &Principal,
    key: HeaderValue,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(key) = key
        .to_str()
        .ok()
        .filter(|k| valid_key(k))
        .map(str::to_string)
    else {
        return Ok(problem(
            req,
            ApiError::new(
                ErrorCode::InvalidIdempotencyKey,
                "An Idempotency-Key is 1 to 255 visible ASCII characters (a UUID is a good one).",
            ),
        ));
    };
    let owner = owner(principal);
    let fingerprint = fingerprint(&req);
    let claim = match state.idempotency.claim(&owner, &key, &fingerprint).await {
        Ok(claim) => claim,
        Err(e) => {
            return Ok(problem(
                req,
                ApiError::unavailable("idempotency key store", e),
            ));
        }
    };
    let reused = || {
        ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "This Idempotency-Key was used for another request (method, path, query or body); use a new key for a new request.",
        )
    };
    let lease = match claim {
        Claim::Running {
            fingerprint: theirs,
            retry_after,
        } => {
            if theirs != fingerprint {
                return Ok(problem(req, reused()));
            }
            let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            let error = ApiError::new(
                ErrorCode::IdempotencyKeyInUse,
                "A request with this Idempotency-Key is still running; retry once it has finished.",
            )
            .with_header(header::RETRY_AFTER, seconds.to_string());
            return Ok(problem(req, error));
        }
        Claim::Done {
            fingerprint: theirs,
            body_hash,
            answer,
        } => {
            if theirs != fingerprint {
                return Ok(problem(req, reused()));
            }
            let payload = req.take_payload();
            let hasher = BodyHasher::new(multipart_boundary(&req));
            let hash = match hash_whole_body(state, payload, hasher).await {
                Ok(hash) => hash,
                Err(error) => return Ok(problem(req, error)),
            };
            if hash != body_hash {
                return Ok(problem(req, reused()));
            }
            return Ok(req.into_response(replay(answer)));
        }
        Claim::Taken(lease) => lease,
    };

    let mut holding = Holding::new(state.clone(), lease);
    let body = Rc::new(RefCell::new(BodyHash::new(&req)));
    let (http_req, payload) = req.into_parts();
    let hashing = Hashing {
        shared: body.clone(),
        inner: payload,
    };
    let req = ServiceRequest::from_parts(http_req, Payload::from(Box::pin(hashing) as BoxedBody));
    let response = next.call(req).await?.map_into_boxed_body();

    let status = response.status();
    let transient = status.is_server_error()
        || response.response().extensions().contains::<Transient>()
        || response.response().error().is_some_and(|e| {
            let status = e.as_response_error().status_code();
            status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT
        });
    if transient {
        // The retry runs again: the key is freed before the answer leaves.
        holding.release().await;
        return Ok(response);
    }
    let mut body_hash = body.borrow().finished.clone();
    if body_hash.is_none() && status.is_success() {
        // The handler answered before the end of the body (what follows its
        // last part): the rest is read so that a retry can be compared.
        let rest = body.borrow_mut().inner.take();
        if let Some(rest) = rest {
            let hasher = body.borrow().hasher.clone();
            body_hash = finish_hash(state, rest, hasher).await.ok();
        }
    }
    let Some(body_hash) = body_hash else {
        // Answered before its body was read (e.g. 413): not kept.
        holding.release().await;
        return Ok(response);
    };
    let (http_req, http_res) = response.into_parts();
    let (http_res, answer_body) = http_res.into_parts();
    let bytes = match actix_web::body::to_bytes(answer_body).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return Err(actix_web::error::ErrorInternalServerError(e.to_string()));
        }
    };
    let answer = StoredAnswer {
        status: status.as_u16(),
        headers: REPLAYED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = http_res.headers().get(name)?.to_str().ok()?;
                Some((name.as_str().to_string(), value.to_string()))
            })
            .collect(),
        body: bytes.to_vec(),
    };
    if let Some(lease) = holding.lease.take() {
        match state
            .idempotency
            .complete(&lease, &body_hash, &answer)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("an idempotency key's lease ran out before its answer was stored")
            }
            Err(e) => tracing::warn!(error = %e, "an idempotent answer was not stored"),
        }
    }
    let http_res = http_res.set_body(BoxBody::new(bytes));
    Ok(ServiceResponse::new(http_req, http_res))
}

/// The stored answer, as first given, marked as a replay.
fn replay(answer: StoredAnswer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    for (name, value) in &answer.headers {
        response.insert_header((name.as_str(), value.as_str()));
    }
    response.insert_header((IDEMPOTENT_REPLAYED, "true"));
    response.body(answer.body)
}

/// The largest body hashed to compare a retry with its first request.
fn body_limit(state: &AppState) -> u64 {
    (state.settings.max_body_bytes as u64)
        .max(state.settings.max_stream_bytes)
        .max(state.settings.import_max_bytes)
}

/// Reads a retry's whole body only to hash it.
async fn hash_whole_body(
    state: &AppState,
    payload: Payload,
    hasher: BodyHasher,
) -> Result<String, ApiError> {
    finish_hash(state, payload, hasher).await
}

/// Reads the rest of a body into `hasher`, and its hash.
async fn finish_hash(
    state: &AppState,
    mut payload: Payload,
    mut hasher: BodyHasher,
) -> Result<String, ApiError> {
    let limit = body_limit(state);
    let mut seen = 0u64;
    while let Some(chunk) =
        crate::ingest::input::next_chunk(&mut payload, state.settings.body_timeout).await?
    {
        seen += chunk.len() as u64;
        if seen > limit {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("The body exceeds the limit of {limit} bytes."),
            ));
        }
        hasher.update(&chunk);
    }
    Ok(hasher.finish())
}

/// A request's hold on its key: renewed while it runs, freed if it ends
/// without an answer to keep (an error to retry, a dropped connection).
struct Holding {
    state: web::Data<AppState>,
    lease: Option<Lease>,
    renewal: actix_web::rt::task::JoinHandle<()>,
}

impl Holding {
    fn new(state: web::Data<AppState>, lease: Lease) -> Self {
        let every = state.idempotency.lease() / 3;
        let renewal = {
            let (state, lease) = (state.clone(), lease.clone());
            actix_web::rt::spawn(async move {
                loop {
                    tokio::time::sleep(every.max(Duration::from_millis(50))).await;
                    match state.idempotency.renew(&lease).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(
                                "an idempotency key's lease was lost while its request ran"
                            );
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "an idempotency key's lease was not renewed")
                        }
                    }
                }
            })
        };
        Self {
            state,
            lease: Some(lease),
            renewal,
        }
    }
}

impl Holding {
    /// Frees the key now (its answer is not kept).
    async fn release(mut self) {
        self.renewal.abort();
        if let Some(lease) = self.lease.take()
            && let Err(e) = self.state.idempotency.release(&lease).await
        {
            tracing::warn!(error = %e, "an idempotency key was not freed (its lease will run out)");
        }
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.renewal.abort();
        if let Some(lease) = self.lease.take() {
            let state = self.state.clone();
            actix_web::rt::spawn(async move {
                if let Err(e) = state.idempotency.release(&lease).await {
                    tracing::warn!(error = %e, "an idempotency key was not freed (its lease will run out)");
                }
            });
        }
    }
}

/// The hash of a request body as the handler reads it.
struct BodyHash {
    hasher: BodyHasher,
    /// The hash, once the body has been read to its end.
    finished: Option<String>,
    /// The body itself, while the handler has not read it to its end.
    inner: Option<Payload>,
}

impl BodyHash {
    fn new(req: &ServiceRequest) -> Self {
        let headers = req.headers();
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let chunked = headers.contains_key(header::TRANSFER_ENCODING);
        let hasher = BodyHasher::new(multipart_boundary(req));
        // No body at all: its hash is known before anything is read.
        let finished =
            (length == Some(0) || (length.is_none() && !chunked)).then(|| hasher.clone().finish());
        Self {
            hasher,
            finished,
            inner: None,
        }
    }
}

/// The request's payload, hashed as the handler reads it.
struct Hashing {
    shared: Rc<RefCell<BodyHash>>,
    inner: Payload,
}

impl Stream for Hashing {
    type Item = Result<Bytes, actix_web::error::PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => this.shared.borrow_mut().hasher.update(chunk),
            Poll::Ready(None) => {
                let mut shared = this.shared.borrow_mut();
                if shared.finished.is_none() {
                    let hash = shared.hasher.clone().finish();
                    shared.finished = Some(hash);
                }
            }
            _ => {}
        }
        polled
    }
}

impl Drop for Hashing {
    fn drop(&mut self) {
        // Unread bytes stay with the middleware, which may read them on.
        let mut shared = self.shared.borrow_mut();
        if shared.finished.is_none() {
            shared.inner = Some(std::mem::replace(&mut self.inner, Payload::None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(boundary: Option<&str>, chunks: &[&[u8]]) -> String {
        let mut hasher = BodyHasher::new(boundary.map(|b| b.as_bytes().to_vec()));
        for chunk in chunks {
            hasher.update(chunk);
        }
        hasher.finish()
    }

    #[test]
    fn a_form_hashes_the_same_whatever_its_boundary_and_chunks() {
        let form = |b: &str| {
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\na,b\r\n--{b}--\r\n"
            )
        };
        let one = form("XyZ123");
        let other = form("------------------------d74496d66958873e");
        let reference = hash(Some("XyZ123"), &[one.as_bytes()]);
        assert_eq!(
            hash(
                Some("------------------------d74496d66958873e"),
                &[other.as_bytes()]
            ),
            reference
        );
        // Cut anywhere, even inside a boundary.
        for cut in 0..one.len() {
            let (a, b) = one.as_bytes().split_at(cut);
            assert_eq!(hash(Some("XyZ123"), &[a, b]), reference, "cut at {cut}");
        }
        // Another content is another hash.
        let changed = one.replace("a,b", "a,c");
        assert_ne!(hash(Some("XyZ123"), &[changed.as_bytes()]), reference);
    }

    #[test]
    fn encoded_control_characters_are_found_in_any_case() {
        for text in ["staff_id=%00", "a%1fb", "x=%7f", "%0A", "%0d%0a"] {
            assert!(has_encoded_control(text), "{text}");
        }
        for text in ["staff_id=A-1", "name=%20Ann%C3%A9", "%25", "%2F", "100%"] {
            assert!(!has_encoded_control(text), "{text}");
        }
    }

    #[test]
    fn a_plain_body_is_its_sha256() {
        assert_eq!(
            hash(None, &[b"ab", b"c"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
