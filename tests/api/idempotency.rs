//! Safe retries (`Idempotency-Key`) and fair use (rate limits per
//! integration), on one replica and across replicas sharing the database
//! (and Redis, where the environment configures it).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    ReplicaProcess, TestApp, assert_problem, body, count_cases, finish_ndjson_stream, ndjson_cases,
    spawn_app_with, spawn_replica, start_ndjson_stream,
};

struct World {
    app: TestApp,
    group: String,
    integration: String,
    token: String,
}

async fn world_with(
    customize: impl FnOnce(&mut std::collections::BTreeMap<String, String>),
) -> World {
    let app = spawn_app_with(customize).await;
    let group = app.create_group("Support").await;
    let response = app
        .post_admin(
            "/v1/admin/staff",
            &json!({"staff_id": "A-1", "external_id": "crm-1", "name": "Ann", "role": "agent", "group_id": group}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let integration = app.create_integration("CRM", &[&group]).await;
    let (token, _) = app.mint(&integration, &["cases:write", "cases:read"]).await;
    World {
        app,
        group,
        integration,
        token,
    }
}

async fn world() -> World {
    world_with(|_| {}).await
}

fn cases(ids: &[&str]) -> Value {
    json!({"cases": ids.iter().map(|id| json!({"external_id": id, "staff_id": "A-1"})).collect::<Vec<_>>()})
}

async fn post_keyed(
    app: &TestApp,
    token: &str,
    path: &str,
    key: &str,
    request: &Value,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(request)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn the_same_key_and_request_replay_the_first_answer_byte_for_byte() {
    let w = world().await;
    let request = cases(&["C-1", "C-2"]);
    let first = post_keyed(&w.app, &w.token, "/v1/cases", "key-1", &request).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_type = first.headers()["content-type"].clone();
    let first_body = first.bytes().await.expect("body");

    let again = post_keyed(&w.app, &w.token, "/v1/cases", "key-1", &request).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["content-type"], first_type);
    assert_eq!(again.bytes().await.expect("body"), first_body);
    assert_eq!(count_cases(&w.app).await, 2, "written once");

    // A refusal is kept too: the same invalid request answers the same.
    let invalid = json!({"cases": [{"external_id": "C-3", "staff_id": "NOBODY"}]});
    let first = post_keyed(&w.app, &w.token, "/v1/cases", "key-2", &invalid).await;
    assert_eq!(first.status(), 422);
    let first_body = first.bytes().await.expect("body");
    let again = post_keyed(&w.app, &w.token, "/v1/cases", "key-2", &invalid).await;
    assert_eq!(again.status(), 422);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.bytes().await.expect("body"), first_body);

    // Without a key, a second send is a second request.
    let response = w
        .app
        .client
        .post(w.app.url("/v1/cases"))
        .bearer_auth(&w.token)
        .json(&request)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn the_same_key_with_another_request_is_refused_and_nothing_written() {
    let w = world().await;
    let response = post_keyed(&w.app, &w.token, "/v1/cases", "key-1", &cases(&["C-1"])).await;
    assert_eq!(response.status(), 201);

    // Another body.
    let response = post_keyed(&w.app, &w.token, "/v1/cases", "key-1", &cases(&["C-2"])).await;
    assert_problem(response, 422, "idempotency_key_reused").await;
    // Another query.
    let response = post_keyed(
        &w.app,
        &w.token,
        "/v1/cases?dry_run=true",
        "key-1",
        &cases(&["C-1"]),
    )
    .await;
    assert_problem(response, 422, "idempotency_key_reused").await;
    assert_eq!(count_cases(&w.app).await, 1);

    // Keys are the integration's own: another integration's same key and
    // request run as a request of their own.
    let other = w.app.create_integration("Other", &[&w.group]).await;
    let (other_token, _) = w.app.mint(&other, &["cases:write"]).await;
    let response = post_keyed(&w.app, &other_token, "/v1/cases", "key-1", &cases(&["C-1"])).await;
    assert_eq!(response.status(), 201);
    assert!(response.headers().get("idempotent-replayed").is_none());
    assert_eq!(count_cases(&w.app).await, 2);
    let _ = &w.integration;
}

#[tokio::test]
async fn a_malformed_key_is_refused_before_anything_runs() {
    let w = world().await;
    for key in ["", "two words", &"k".repeat(256)] {
        let response = post_keyed(&w.app, &w.token, "/v1/cases", key, &cases(&["C-1"])).await;
        assert_problem(response, 400, "invalid_idempotency_key").await;
    }
    assert_eq!(count_cases(&w.app).await, 0);
}

fn ndjson_request(app: &TestApp, token: &str, key: &str, lines: usize) -> reqwest::RequestBuilder {
    let body = ndjson_cases(lines);
    app.client
        .post(app.url("/v1/cases"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .header("Content-Type", "application/x-ndjson")
        .body(body)
}

#[tokio::test]
async fn while_the_first_request_runs_the_same_key_answers_409_on_every_replica() {
    let w = world().await;
    let replica = spawn_replica(&w.app).await;
    let (socket, rest) =
        start_ndjson_stream(&w.app.address, &w.token, Some("stream-1"), 6_000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for app in [&w.app, &replica] {
        let response = ndjson_request(app, &w.token, "stream-1", 6_000)
            .send()
            .await
            .expect("request");
        assert!(response.headers().contains_key("retry-after"));
        assert_problem(response, 409, "idempotency_key_in_use").await;
    }
    let answer = finish_ndjson_stream(socket, rest).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    // Now the retry, on the other replica, replays the answer.
    let response = ndjson_request(&replica, &w.token, "stream-1", 6_000)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    assert_eq!(body(response).await["created"], 6_000);
    assert_eq!(count_cases(&w.app).await, 6_000);
}

#[tokio::test]
async fn an_answer_to_retry_is_not_kept_and_the_retry_runs_again() {
    // One bulk ingestion at a time: a second is turned away with 503.
    let w = world_with(|env| {
        env.insert("INTAKE_MAX_BULK_REQUESTS".into(), "1".into());
    })
    .await;
    let (socket, rest) = start_ndjson_stream(&w.app.address, &w.token, Some("holder"), 6_000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy = ndjson_request(&w.app, &w.token, "second", 10)
        .send()
        .await
        .expect("request");
    assert_problem(busy, 503, "server_busy").await;
    let answer = finish_ndjson_stream(socket, rest).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    // The same key and request again: run, not replayed.
    let response = w
        .app
        .client
        .post(w.app.url("/v1/cases"))
        .bearer_auth(&w.token)
        .header("Idempotency-Key", "second")
        .header("Content-Type", "application/x-ndjson")
        .body(
            (6_000..6_010)
                .map(|i| {
                    format!(
                        "{}\n",
                        json!({"external_id": format!("N-{i}"), "staff_id": "A-1"})
                    )
                })
                .collect::<String>(),
        )
        .send()
        .await
        .expect("request");
    // (A different body than the refused one would be refused as reused
    // had the 503 been kept; this one runs.)
    let status = response.status();
    let answer = body(response).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(count_cases(&w.app).await, 6_010);
}

#[tokio::test]
async fn a_replica_killed_mid_request_frees_the_key_and_the_retry_writes_once() {
    let w = world_with(|env| {
        env.insert("INTAKE_IDEMPOTENCY_LEASE_MS".into(), "1000".into());
    })
    .await;
    // A second replica in a process of its own, on the same database (and
    // Redis), to be killed.
    let mut replica = ReplicaProcess::start(&w.app, &[]).await;
    let address = format!("http://{}", replica.address);

    let (socket, _rest) = start_ndjson_stream(&address, &w.token, Some("killed"), 6_000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    replica.process.kill().expect("kill");
    let _ = replica.process.wait();
    drop(socket);

    // The retry on the surviving replica: refused while the dead one's
    // lease lasts, then run, exactly once.
    let mut answered = None;
    for _ in 0..50 {
        let response = ndjson_request(&w.app, &w.token, "killed", 6_000)
            .send()
            .await
            .expect("request");
        if response.status() == 409 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        answered = Some((response.status(), body(response).await));
        break;
    }
    let (status, answer) = answered.expect("the key was freed");
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["created"], 6_000);
    assert_eq!(count_cases(&w.app).await, 6_000);
    let response = ndjson_request(&w.app, &w.token, "killed", 6_000)
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    assert_eq!(count_cases(&w.app).await, 6_000);
}

async fn set_rate(app: &TestApp, integration: &str, per_second: f64, burst: u32) {
    let response = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/v1/admin/integrations/{integration}"),
        )
        .json(&json!({"rate_limit": {"per_second": per_second, "burst": burst}}))
        .send()
        .await
        .expect("patch");
    let status = response.status();
    let answer = body(response).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rate_limit"]["burst"], burst);
}

#[tokio::test]
async fn past_its_rate_an_integration_gets_429_and_others_do_not() {
    let w = world().await;
    set_rate(&w.app, &w.integration, 0.5, 3).await;
    let limits = body(w.app.get_as(&w.token, "/v1/limits").await).await;
    assert_eq!(limits["rate_limit"], json!({"per_second": 0.5, "burst": 3}));
    // (`/v1/limits` counted one.)
    for remaining in [1, 0] {
        let response = w.app.get_as(&w.token, "/v1/me").await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["ratelimit-policy"],
            "\"integration\";q=3;w=6"
        );
        let value = response.headers()["ratelimit"]
            .to_str()
            .expect("text")
            .to_string();
        assert!(
            value.starts_with(&format!("\"integration\";r={remaining};t=")),
            "{value}"
        );
    }
    let refused = w.app.get_as(&w.token, "/v1/me").await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert!(
        refused.headers()["ratelimit"]
            .to_str()
            .expect("text")
            .starts_with("\"integration\";r=0;")
    );
    assert_problem(refused, 429, "rate_limited").await;

    // Another integration has its own bucket (the default policy).
    let other = w.app.create_integration("Other", &[&w.group]).await;
    let (other_token, _) = w.app.mint(&other, &["cases:read"]).await;
    let response = w.app.get_as(&other_token, "/v1/me").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"integration\";q=200;w=2"
    );
    // The admin API is not counted.
    assert!(
        w.app
            .get_admin("/v1/admin/groups")
            .await
            .status()
            .is_success()
    );
}

#[tokio::test]
async fn replicas_sharing_redis_share_one_bucket() {
    if std::env::var("INTAKE_TEST_REDIS_URL").is_err() {
        eprintln!("skipped: INTAKE_TEST_REDIS_URL is not set (replicas then count each its own)");
        return;
    }
    let w = world().await;
    let replica = spawn_replica(&w.app).await;
    set_rate(&w.app, &w.integration, 0.2, 4).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { &w.app } else { &replica };
        statuses.push(app.get_as(&w.token, "/v1/me").await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429]);
}

/// A form as `curl -F` sends it, with the given boundary.
fn csv_form(boundary: &str, group: &str, csv: &str) -> (String, Vec<u8>) {
    let mut body = String::new();
    for (name, value) in [("list_name", "Uploaded"), ("assign_group", group)] {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cases.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    ));
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.into_bytes(),
    )
}

/// `POST /v1/cases/csv` of `csv` with this key and multipart boundary.
async fn upload_csv(w: &World, key: &str, boundary: &str, csv: &str) -> reqwest::Response {
    let (content_type, form) = csv_form(boundary, &w.group, csv);
    w.app
        .client
        .post(w.app.url("/v1/cases/csv"))
        .bearer_auth(&w.token)
        .header("Idempotency-Key", key)
        .header("content-type", content_type)
        .body(form)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn a_csv_upload_sent_again_with_another_boundary_is_a_replay() {
    let w = world().await;
    let csv = "Staff ID,External Staff ID,Case ID,Note\nA-1,crm-1,C-1,hello\nA-1,crm-1,C-2,again\n";
    let mut answers = Vec::new();
    for boundary in [
        "------------------------d74496d66958873e",
        "------------------------0f2c5b1e77a94d10",
    ] {
        let response = upload_csv(&w, "upload-1", boundary, csv).await;
        let replayed = response.headers().get("idempotent-replayed").cloned();
        answers.push((
            response.status(),
            replayed,
            response.bytes().await.expect("body"),
        ));
    }
    assert_eq!(answers[0].0, 201, "{:?}", answers[0].2);
    assert!(answers[0].1.is_none());
    assert_eq!(answers[1].0, 201);
    assert_eq!(
        answers[1].1.as_ref().map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(answers[1].2, answers[0].2);
    assert_eq!(count_cases(&w.app).await, 2);

    // The same key with another file: refused.
    let response = upload_csv(&w, "upload-1", "b1", &csv.replace("again", "changed")).await;
    assert_problem(response, 422, "idempotency_key_reused").await;
}
