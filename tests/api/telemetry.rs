//! Traces leave by OTLP, continuing the caller's W3C trace; logs can be JSON.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};

use crate::helpers::{eventually, intake_command, printed_token};

/// A minimal OTLP/HTTP receiver: keeps every body POSTed to /v1/traces.
async fn start_receiver() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink = received.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = HttpServer::new(move || {
        let sink = sink.clone();
        App::new().route(
            "/v1/traces",
            web::post().to(move |body: web::Bytes| {
                let sink = sink.clone();
                async move {
                    sink.lock().expect("lock").push(body.to_vec());
                    HttpResponse::Ok()
                        .content_type("application/x-protobuf")
                        .body(Vec::<u8>::new())
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}"), received)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn spans_are_exported_by_otlp_continuing_the_callers_trace() {
    let (endpoint, received) = start_receiver().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut command = intake_command();
    // Demo data first (same data folder): an integration token to call with.
    let integration_token = printed_token(
        intake_command()
            .arg("seed-demo")
            .env("INTAKE_DATA_DIR", dir.path())
            .output()
            .expect("seed-demo"),
    );
    let mut child = command
        .arg("serve")
        .env("INTAKE_DATA_DIR", dir.path())
        .env("INTAKE_BIND", format!("127.0.0.1:{port}"))
        .env("INTAKE_LOG_FORMAT", "json")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start intake");
    let stderr = child.stderr.take().expect("stderr");
    let _server = Server(child);
    let log_lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = log_lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().expect("lock").push(line);
        }
    });

    intake::install_tls_provider();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let up = eventually(Duration::from_secs(20), || async {
        client.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    assert!(up, "the server starts");

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = client
        .get(format!("{base}/v1/admin/groups"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["x-request-id"],
        trace_id,
        "without X-Request-Id, the request id is the trace id"
    );

    const ROUTE: &[u8] = b"GET /v1/admin/groups";
    let raw_trace_id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    let exported = eventually(Duration::from_secs(15), || {
        let received = received.clone();
        let raw = raw_trace_id.clone();
        async move {
            received.lock().expect("lock").iter().any(|body| {
                body.windows(raw.len()).any(|w| w == raw.as_slice())
                    && body.windows(ROUTE.len()).any(|w| w == ROUTE)
            })
        }
    })
    .await;
    assert!(
        exported,
        "the receiver got the request's span in the caller's trace"
    );

    // The span names the integration once the token is read.
    let response = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(&integration_token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let integration_id = crate::helpers::body(response).await["integration"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let logged = eventually(Duration::from_secs(5), || {
        let lines = log_lines.clone();
        let integration_id = integration_id.clone();
        async move {
            lines.lock().expect("lock").iter().any(|l| {
                serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| {
                    v["span"]["http.route"] == "/v1/me"
                        && v["span"]["integration_id"] == integration_id.as_str()
                })
            })
        }
    })
    .await;
    assert!(logged, "the access log of /v1/me names the integration");

    let lines = log_lines.lock().expect("lock").clone();
    let completed = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| {
            v["fields"]["message"] == "request completed"
                && v["span"]["http.route"] == "/v1/admin/groups"
        });
    let completed = completed
        .unwrap_or_else(|| panic!("a JSON access log line for /v1/admin/groups in {lines:#?}"));
    assert_eq!(completed["span"]["request_id"], trace_id);
    assert_eq!(completed["fields"]["status"], 401);
}
