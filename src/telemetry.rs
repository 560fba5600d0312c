//! Logs, traces and the per-request span.
//!
//! One `tracing` subscriber: an `EnvFilter` from `INTAKE_LOG`, text or JSON
//! lines on stderr, and — when `OTEL_EXPORTER_OTLP_ENDPOINT` is set — an
//! OpenTelemetry layer exporting spans by OTLP/HTTP. Every request runs inside
//! one `http_request` span (method, route, status, latency, request id, and
//! the integration once the token is read), continued from an incoming W3C
//! `traceparent`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::error::REQUEST_ID;
use crate::metrics::Metrics;
use crate::settings::{LogFormat, Settings};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Keeps the trace exporter alive; flushes it when dropped.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("intake: flushing traces failed: {e}");
        }
    }
}

/// Installs the global subscriber (once per process).
pub fn init(settings: &Settings) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_new(&settings.log)?;
    let fmt = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => {
            use std::io::IsTerminal;
            text_layer(std::io::stderr, std::io::stderr().is_terminal()).boxed()
        }
    };

    let mut provider = None;
    let otel = match &settings.otlp_endpoint {
        Some(_) => {
            // The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and the other
            // standard OTEL_* variables) itself and appends `/v1/traces`.
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name("intake")
                .build();
            let tracer_provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource)
                .build();
            let tracer = tracer_provider.tracer("intake");
            opentelemetry::global::set_tracer_provider(tracer_provider.clone());
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            provider = Some(tracer_provider);
            Some(tracing_opentelemetry::layer().with_tracer(tracer))
        }
        None => None,
    };

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()?;
    Ok(TelemetryGuard { provider })
}

/// Headers every answer carries: no content sniffing, no referrer; and
/// for Swagger UI (`/docs`, served from this origin only, no CDN) a content
/// security policy that allows nothing from elsewhere.
fn security_headers(headers: &mut HeaderMap, docs: bool) {
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    if docs {
        headers.insert(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; \
                 img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        );
    }
}

/// The text log: one line per event, every control character of a value
/// written escaped (`\n`, `\u{1b}`), so that nothing a request carries (a
/// token's header, a path, a file name) can start a forged line.
pub fn text_layer<S, W>(writer: W, ansi: bool) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + 'static,
{
    use tracing_subscriber::field::MakeExt;
    let fields = tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let text = escape_controls(&format!("{value:?}"));
        if field.name() == "message" {
            write!(writer, "{text}")
        } else {
            write!(writer, "{field}={text}")
        }
    })
    .delimited(" ");
    tracing_subscriber::fmt::layer()
        .fmt_fields(fields)
        .with_ansi(ansi)
        .with_writer(writer)
}

/// `text` with each control character replaced by its escape.
fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// A caller's `X-Request-Id` is kept when it is short and plain.
fn incoming_request_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(REQUEST_ID_HEADER)?.to_str().ok()?.trim();
    let plain = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    plain.then(|| value.to_string())
}

/// The request's id, kept in the request's extensions.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Middleware: the request span, the request id, metrics and the access log.
pub async fn observe_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let span = tracing::info_span!(
        "http_request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        url.path = %req.path(),
        http.response.status_code = Empty,
        latency_ms = Empty,
        request_id = Empty,
        integration_id = Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&HeaderExtractor(req.headers()))
    });
    // Fails only when no OpenTelemetry layer is installed; nothing to do then.
    let _ = span.set_parent(parent);

    // The request id is the caller's, or else the trace id, so that a
    // problem's `request_id` finds the trace.
    let request_id = incoming_request_id(req.headers()).unwrap_or_else(|| {
        let context = span.context();
        let span_context = context.span().span_context().clone();
        if span_context.is_valid() {
            span_context.trace_id().to_string()
        } else {
            uuid::Uuid::new_v4().simple().to_string()
        }
    });
    span.record("request_id", request_id.as_str());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let docs = req.path().starts_with("/docs");

    let result = REQUEST_ID
        .scope(request_id.clone(), next.call(req))
        .instrument(span.clone())
        .await;

    let latency = started.elapsed();
    match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            span.record("http.response.status_code", status);
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
            }
            security_headers(response.headers_mut(), docs);
            if let Some(metrics) = metrics {
                metrics.observe_request(&method, &route, status, latency);
            }
            let latency_ms = latency.as_secs_f64() * 1000.0;
            span.record("latency_ms", latency_ms);
            span.in_scope(|| {
                if route.starts_with("/v1") || status >= 400 {
                    tracing::info!(status, latency_ms, "request completed");
                } else {
                    tracing::debug!(status, latency_ms, "request completed");
                }
            });
            Ok(response)
        }
        Err(error) => {
            span.in_scope(|| tracing::error!(%error, "request failed"));
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut buffer) = self.0.lock() {
                buffer.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_value_carrying_a_newline_cannot_forge_a_log_line() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber =
            tracing_subscriber::registry().with(text_layer(move || writer.clone(), false));
        tracing::subscriber::with_default(subscriber, || {
            let reason = "unknown variant `HS256\n2026-11-30T00:00:00Z ERROR intake: admin login`";
            tracing::info!(%reason, "token refused");
            tracing::info!("a message with \u{1b}[31m an escape and\r\na newline");
        });
        let log = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8");
        assert_eq!(log.lines().count(), 2, "{log}");
        assert!(log.contains("HS256\\n2026"), "{log}");
        assert!(!log.contains('\u{1b}'), "{log}");
        // Every line is the INFO event it was, none a forged ERROR.
        assert!(
            log.lines()
                .all(|line| line.split_whitespace().nth(1) == Some("INFO")),
            "{log}"
        );
    }
}
