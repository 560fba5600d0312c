//! Health, readiness (and outages), metrics, the OpenAPI document and Swagger UI.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{
    TcpProxy, assert_problem, body, eventually, fresh_postgres_schema, postgres_url, spawn_app,
    spawn_app_with,
};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("text"), "ok");
}

#[tokio::test]
async fn readyz_reports_each_dependency() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let report = body(response).await;
    assert_eq!(report["status"], "ready");
    assert_eq!(report["checks"]["database"], "up");
    let redis = if std::env::var("INTAKE_TEST_REDIS_URL").is_ok() {
        "up"
    } else {
        "not_configured"
    };
    assert_eq!(report["checks"]["redis"], redis);
}

#[tokio::test]
async fn readyz_stays_200_with_redis_degraded_when_redis_is_unreachable() {
    // Nothing listens on port 1. A Redis outage must not take every replica
    // out of the load balancer: the replica serves on with the database.
    let app = spawn_app_with(|env| {
        env.insert("INTAKE_REDIS_URL".into(), "redis://127.0.0.1:1".into());
    })
    .await;
    let response = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let report = body(response).await;
    assert_eq!(report["status"], "ready");
    assert_eq!(report["checks"]["redis"], "degraded");
    assert_eq!(report["checks"]["database"], "up");
    // And tokens are still checked (against the database).
    assert_eq!(app.get_admin("/v1/admin/groups").await.status(), 200);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    for _ in 0..3 {
        assert_eq!(app.get_admin("/v1/admin/groups").await.status(), 200);
    }
    let response = app.get_admin("/v1/admin/groups/not-a-uuid").await;
    assert_eq!(response.status(), 400);
    let text = app.metrics().await;
    assert!(
        text.contains(
            r#"intake_http_requests_total{method="GET",route="/v1/admin/groups",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"intake_http_requests_total{method="GET",route="/v1/admin/groups/{id}",status="400"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"intake_http_request_duration_seconds_count{method="GET",route="/v1/admin/groups"} 3"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn the_data_folder_and_the_database_are_the_owners_only() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().expect("temp dir");
    let data = parent.path().join("data");
    let data_dir = data.clone();
    let app = crate::helpers::spawn_app_with(move |env| {
        env.insert("INTAKE_DATA_DIR".into(), data_dir.display().to_string());
        // The generated secret is written into it too.
        env.remove("INTAKE_JWT_SECRET");
    })
    .await;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("jwt_secret")), 0o600);
    if crate::helpers::postgres_url().is_none() {
        for file in ["intake.db", "intake.db-wal", "intake-idempotency.db"] {
            assert_eq!(mode(&data.join(file)), 0o600, "{file}");
        }
    }
    drop(app);
}

#[tokio::test]
async fn answers_carry_security_headers_and_the_docs_a_content_security_policy() {
    let app = spawn_app().await;
    for response in [
        app.get_admin("/v1/admin/groups").await,
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("healthz"),
        app.client
            .get(app.url("/v1/nowhere"))
            .send()
            .await
            .expect("404"),
    ] {
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    }
    let docs = app
        .client
        .get(app.url("/docs/"))
        .send()
        .await
        .expect("docs");
    assert_eq!(docs.status(), 200);
    let policy = docs.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(policy.starts_with("default-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
}

#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    let app = &app;
    let brew = |i: usize| async move {
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).expect("method");
        let response = app
            .client
            .request(method, app.url(&format!("/nowhere/{i}")))
            .send()
            .await
            .expect("request");
        assert!(response.status().is_client_error());
    };
    let _ = app.metrics().await; // the scrape's own series
    brew(0).await;
    let after_one = app.metrics().await.lines().count();
    for i in 1..50 {
        brew(i).await;
    }
    let text = app.metrics().await;
    assert!(!text.contains("BREW"), "{text}");
    assert!(
        text.contains(r#"method="other",route="unmatched""#),
        "{text}"
    );
    // 49 more made-up methods and paths: not one more line.
    assert_eq!(text.lines().count(), after_one, "{text}");
}

#[tokio::test]
async fn the_openapi_document_and_swagger_ui_are_served_without_a_cdn() {
    let app = spawn_app().await;
    let doc: Value = body(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert!(doc["paths"]["/v1/admin/groups"]["post"].is_object());

    let response = app
        .client
        .get(app.url("/docs"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 308);
    assert_eq!(response.headers()["location"], "/docs/");

    let page = app
        .client
        .get(app.url("/docs/"))
        .send()
        .await
        .expect("request");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("://unpkg") && !html.contains("cdn"),
        "assets are local: {html}"
    );

    for asset in [
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-initializer.js",
    ] {
        let response = app
            .client
            .get(app.url(asset))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{asset}");
        let text = response.text().await.expect("text");
        if asset.ends_with("initializer.js") {
            assert!(text.contains("/openapi.json"), "{text}");
        }
    }
}

fn authority_of(url: &str) -> (String, SocketAddr) {
    // postgres://user[:password]@host:port/db[?…]
    let after_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    let authority_end = after_scheme.find('/').unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_end];
    let host_port = authority
        .rsplit_once('@')
        .map(|(_, hp)| hp)
        .unwrap_or(authority);
    let host_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    };
    let host_port = host_port.replace("localhost", "127.0.0.1");
    (
        authority.to_string(),
        host_port
            .parse()
            .expect("host:port of INTAKE_TEST_DATABASE_URL"),
    )
}

#[tokio::test]
async fn a_database_outage_answers_503_and_recovers_without_a_restart() {
    let Some(base) = postgres_url() else {
        eprintln!(
            "skipped: the outage test cuts a TCP connection, so it runs on PostgreSQL (INTAKE_TEST_DATABASE_URL)"
        );
        return;
    };
    let url = fresh_postgres_schema(&base).await;
    let (authority, target) = authority_of(&url);
    let proxy = TcpProxy::start(target).await;
    let user = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    let proxied = url.replacen(&authority, &format!("{user}{}", proxy.addr), 1);
    let app = spawn_app_with(|env| {
        env.insert("INTAKE_DATABASE_URL".into(), proxied);
        env.insert("INTAKE_DATABASE_TIMEOUT_MS".into(), "500".into());
    })
    .await;
    assert_eq!(app.get_admin("/v1/admin/groups").await.status(), 200);

    proxy.cut();
    let response = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 503);
    assert_eq!(body(response).await["checks"]["database"], "down");
    let response = app.get_admin("/v1/admin/groups").await;
    assert_eq!(response.headers()["retry-after"], "5");
    assert_problem(response, 503, "service_unavailable").await;

    proxy.restore().await;
    let recovered = eventually(Duration::from_secs(15), || async {
        app.get_admin("/v1/admin/groups").await.status() == 200
    })
    .await;
    assert!(
        recovered,
        "requests succeed again once the database is back"
    );
    let response = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_backend_is_the_one_the_environment_names() {
    let app = spawn_app().await;
    let expected = if postgres_url().is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(app.state.store.backend(), expected);
}

/// Sends `request` on a fresh connection (waiting `pause` first for the
/// rest, if any) and reads the whole answer until the server closes.
async fn raw_exchange(address: &str, request: &[u8], pause: Option<Duration>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(host).await.expect("connect");
    // The server may refuse and close before reading everything: a failed
    // write is then expected, and the answer is read all the same.
    let _ = socket.write_all(request).await;
    if let Some(pause) = pause {
        tokio::time::sleep(pause).await;
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status, head and problem of a raw answer.
fn raw_problem(answer: &str) -> (u16, String, Value) {
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {answer:?}"));
    let status = head[9..12].parse().expect("status");
    let problem = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer:?}"));
    (status, head.to_ascii_lowercase(), problem)
}

#[tokio::test]
async fn requests_the_http_layer_refuses_are_answered_with_a_problem() {
    let app = spawn_app().await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "a 1 MiB header",
            format!(
                "GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Big: {}\r\n\r\n",
                "a".repeat(1 << 20)
            )
            .into_bytes(),
            431,
            "headers_too_large",
        ),
        (
            "200 headers",
            format!(
                "GET /healthz HTTP/1.1\r\nHost: {host}\r\n{}\r\n",
                (0..200)
                    .map(|i| format!("X-H{i}: v\r\n"))
                    .collect::<String>()
            )
            .into_bytes(),
            431,
            "headers_too_large",
        ),
        (
            "a header line without a colon",
            format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nno colon here\r\n\r\n").into_bytes(),
            400,
            "malformed_request",
        ),
        (
            "a malformed request line",
            b"GET\x01 / HTTP/1.1\r\n\r\n".to_vec(),
            400,
            "malformed_request",
        ),
    ];
    for (what, request, status, code) in cases {
        let answer = raw_exchange(&app.address, &request, None).await;
        let (got, head, problem) = raw_problem(&answer);
        assert_eq!(got, status, "{what}: {answer}");
        assert!(
            head.contains("content-type: application/problem+json"),
            "{what}: {head}"
        );
        assert!(
            head.contains("x-content-type-options: nosniff"),
            "{what}: {head}"
        );
        assert_eq!(problem["code"], code, "{what}");
        assert_eq!(problem["status"], status, "{what}");
        assert_eq!(problem["type"], format!("/docs/errors#{code}"), "{what}");
        let id = problem["request_id"].as_str().expect("request_id");
        assert!(
            head.contains(&format!("x-request-id: {id}")),
            "{what}: {head}"
        );
    }

    // A head that never ends: 408 once the head timeout (5 s) passes.
    let answer = raw_exchange(
        &app.address,
        format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n").as_bytes(),
        Some(Duration::from_secs(6)),
    )
    .await;
    let (status, _, problem) = raw_problem(&answer);
    assert_eq!(status, 408, "{answer}");
    assert_eq!(problem["code"], "header_timeout");

    // A good request on the same server is answered as before.
    let answer = raw_exchange(
        &app.address,
        format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        None,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok"), "{answer}");
}
