//! Many clients at once: no pool deadlock, admission control for bulk
//! work, bodies that stall, wide headers, truthful concurrent writes.
//!
//! Test apps have four database connections (see `helpers::test_env`), so
//! two dozen concurrent requests are six times the pool.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, assert_problem, body, form, spawn_app_with};

/// One group with agent A-1, an integration of it with a token for cases
/// and customers, and two campaigns.
struct World {
    app: TestApp,
    group: String,
    integration: String,
    token: String,
    campaigns: [String; 2],
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
    let (token, _) = app
        .mint(
            &integration,
            &[
                "cases:write",
                "cases:read",
                "customers:write",
                "customers:read",
            ],
        )
        .await;
    let campaigns = [
        app.create_campaign(&group, "North").await,
        app.create_campaign(&group, "South").await,
    ];
    World {
        app,
        group,
        integration,
        token,
        campaigns,
    }
}

impl World {
    async fn post_cases(&self, request: Value) -> (StatusCode, Value) {
        let response = self
            .app
            .client
            .post(self.app.url("/v1/cases"))
            .bearer_auth(&self.token)
            .json(&request)
            .send()
            .await
            .expect("request");
        (response.status(), body(response).await)
    }

    /// Opens an NDJSON `request` (`POST /v1/cases`, say) with a chunked
    /// body on a connection of the test's own, sends `first` as its first
    /// chunk (none if empty: an empty chunk would end the body) and leaves
    /// the body open (the stream goes on, or ends, by what the test writes
    /// next).
    async fn open_stream(&self, request: &str, first: &str) -> tokio::net::TcpStream {
        let address = self.app.address.trim_start_matches("http://").to_string();
        let mut open = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        let mut head = format!(
            "{request} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n",
            self.token
        );
        if !first.is_empty() {
            head.push_str(&format!("{:x}\r\n{first}\r\n", first.len()));
        }
        open.write_all(head.as_bytes()).await.expect("send");
        open
    }

    async fn post_ndjson(&self, query: &str, lines: Vec<String>) -> (StatusCode, Value) {
        let response = self
            .app
            .client
            .post(self.app.url(&format!("/v1/cases?{query}")))
            .bearer_auth(&self.token)
            .header("content-type", "application/x-ndjson")
            .body(lines.join("\n"))
            .send()
            .await
            .expect("request");
        (response.status(), body(response).await)
    }

    async fn put_customers(&self, campaign: &str, request: Value) -> (StatusCode, Value) {
        let response = self
            .app
            .client
            .put(self.app.url(&format!("/v1/campaigns/{campaign}/customers")))
            .bearer_auth(&self.token)
            .json(&request)
            .send()
            .await
            .expect("request");
        (response.status(), body(response).await)
    }

    /// One value read from the app's own database.
    async fn count(&self, sql: &str) -> i64 {
        let (n,): (i64,) = match &self.app.state.store.reads {
            intake::store::Pool::Sqlite(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
                .expect("sql"),
            intake::store::Pool::Postgres(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
                .expect("sql"),
        };
        n
    }

    async fn execute(&self, sql: &str) {
        match &self.app.state.store.reads {
            intake::store::Pool::Sqlite(pool) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(pool)
                    .await
                    .expect("sql");
            }
            intake::store::Pool::Postgres(pool) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(pool)
                    .await
                    .expect("sql");
            }
        }
    }
}

fn case(id: &str) -> Value {
    json!({"external_id": id, "staff_id": "A-1", "channel": "form", "data": {"n": 1}})
}

fn customers(phones: std::ops::Range<u32>, name: &str) -> Vec<Value> {
    phones
        .map(|i| json!({"name": format!("{name} {i}"), "phone": format!("+4420794{i:05}")}))
        .collect()
}

#[tokio::test]
async fn six_times_the_pool_of_concurrent_writers_all_succeed() {
    // Each writer holds a connection while it validates the next batch: with
    // one pool, as many such requests as connections waited for each other
    // until the acquire timeout (503) — the service fell over at 16 clients.
    let w = world_with(|env| {
        env.insert("INTAKE_MAX_BULK_REQUESTS".into(), "16".into());
    })
    .await;
    let singles = (0..12).map(|i| w.post_cases(json!({"cases": [case(&format!("S-{i}"))]})));
    let bulks = (0..4).map(|b| {
        let cases: Vec<Value> = (0..300).map(|i| case(&format!("B-{b}-{i}"))).collect();
        w.post_cases(json!({"cases": cases}))
    });
    let streams = (0..4).map(|s| {
        let lines = (0..250)
            .map(|i| case(&format!("N-{s}-{i}")).to_string())
            .collect();
        w.post_ndjson("atomic=true", lines)
    });
    let upserts = (0..4).map(|u| {
        let campaign = &w.campaigns[u % 2];
        w.put_customers(
            campaign,
            json!({"customers": customers(u as u32 * 1000..u as u32 * 1000 + 250, "Lead")}),
        )
    });
    let (singles, bulks, streams, upserts) = tokio::join!(
        join_all(singles),
        join_all(bulks),
        join_all(streams),
        join_all(upserts)
    );
    for (status, answer) in singles.iter().chain(&bulks).chain(&streams) {
        assert_eq!(*status, StatusCode::CREATED, "{answer}");
    }
    for (status, answer) in &upserts {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        assert_eq!(answer["created"], 250, "{answer}");
    }
    assert_eq!(
        w.count("SELECT COUNT(*) FROM cases").await,
        12 + 4 * 300 + 4 * 250
    );
    assert_eq!(w.count("SELECT COUNT(*) FROM customers").await, 4 * 250);
}

#[tokio::test]
async fn past_capacity_a_bulk_request_is_turned_away_at_once_and_small_ones_still_pass() {
    let w = world_with(|env| {
        env.insert("INTAKE_MAX_BULK_REQUESTS".into(), "1".into());
    })
    .await;
    // A stream that stays open until told to end holds the only place (a
    // chunked body, on a connection of the test's own).
    let mut open = w
        .open_stream("POST /v1/cases", &format!("{}\n", case("OPEN-1")))
        .await;
    // Once the server has taken the stream's place, a second is refused.
    assert!(
        crate::helpers::eventually(Duration::from_secs(20), || async {
            w.app.state.bulk.running() == 1
        })
        .await,
        "the open stream takes the place"
    );
    let (status, answer) = w
        .post_ndjson("atomic=true", vec![case("SECOND").to_string()])
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    let refused = answer;
    assert_eq!(refused["code"], "server_busy", "{refused}");
    // The answer says when to come back.
    let response = w
        .app
        .client
        .post(w.app.url("/v1/cases"))
        .bearer_auth(&w.token)
        .header("content-type", "application/x-ndjson")
        .body(case("THIRD").to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_problem(response, 503, "server_busy").await;
    // Small requests are not bulk: served meanwhile.
    let (status, answer) = w.post_cases(json!({"cases": [case("SMALL-1")]})).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    // The stream ends; its place is free again.
    let last = format!("{}\n", case("OPEN-2"));
    open.write_all(format!("{:x}\r\n{last}\r\n0\r\n\r\n", last.len()).as_bytes())
        .await
        .expect("send");
    let mut answer = vec![0u8; 4096];
    let read = open.read(&mut answer).await.expect("answer");
    let answer = String::from_utf8_lossy(&answer[..read]).to_string();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let (status, answer) = w
        .post_ndjson("atomic=true", vec![case("AFTER").to_string()])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(
        w.count("SELECT COUNT(*) FROM cases WHERE external_id IN ('OPEN-1', 'OPEN-2', 'SMALL-1', 'AFTER')")
            .await,
        4
    );
}

#[tokio::test]
async fn on_sqlite_a_small_request_held_up_by_a_bulk_write_is_answered_503_with_retry_after() {
    // SQLite has one writer. A stream whose first batch is written holds it
    // while the rest of its body comes; a single case waits for it, and past
    // INTAKE_DATABASE_TIMEOUT_MS it is answered 503 with Retry-After (not
    // held until the client gives up). On PostgreSQL it finds another writer.
    let w = world_with(|env| {
        env.insert("INTAKE_DATABASE_TIMEOUT_MS".into(), "300".into());
    })
    .await;
    if w.app.state.store.backend() != "sqlite" {
        eprintln!("skipped: SQLite's one writer (PostgreSQL serves the single beside the stream)");
        return;
    }
    // One batch and one line more: the first batch is written, the stream
    // then waits for its next line.
    let first: String = (0..5_001)
        .map(|i| format!("{}\n", case(&format!("HOLD-{i}"))))
        .collect();
    let open = w.open_stream("POST /v1/cases", &first).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    let refused = loop {
        n += 1;
        let response = w
            .app
            .client
            .post(w.app.url("/v1/cases"))
            .bearer_auth(&w.token)
            .json(&json!({"cases": [case(&format!("LATE-{n}"))]}))
            .send()
            .await
            .expect("request");
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            break response;
        }
        // Until the stream takes the writer, singles are written.
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(
            std::time::Instant::now() < deadline,
            "the stream never held the writer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let problem = assert_problem(refused, 503, "service_unavailable").await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("No database connection came free")),
        "{problem}"
    );
    // The client goes away: the stream is rolled back, the writer free.
    drop(open);
    assert!(
        crate::helpers::eventually(Duration::from_secs(20), || async {
            w.post_cases(json!({"cases": [case("AFTER-HOLD")]})).await.0 == StatusCode::CREATED
        })
        .await,
        "singles are written again once the stream is gone"
    );
    assert_eq!(
        w.count("SELECT COUNT(*) FROM cases WHERE external_id LIKE 'HOLD-%'")
            .await,
        0
    );
}

/// Sends `head` and `body` on a raw connection and answers the status line
/// and the rest of the answer.
async fn raw_request(app: &TestApp, head: String, body: &[u8]) -> String {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(body).await.expect("body");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).to_string()
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408_and_the_connection_closed() {
    let w = world_with(|env| {
        env.insert("INTAKE_BODY_TIMEOUT_MS".into(), "300".into());
    })
    .await;
    let started = std::time::Instant::now();
    for (path, content_type) in [
        ("/v1/cases", "application/json"),
        ("/v1/cases", "application/x-ndjson"),
    ] {
        // The body announces a megabyte and sends a dozen bytes.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\nContent-Type: {content_type}\r\nContent-Length: 1048576\r\n\r\n",
            w.token
        );
        let answer = raw_request(&w.app, head, b"{\"cases\": [").await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("body_timeout"), "{answer}");
    }
    // The multipart uploader too.
    let (content_type, full) = form(&[
        ("file", b"Staff ID,External Staff ID,Case ID,X\n"),
        ("dry_run", b"true"),
    ]);
    let head = format!(
        "POST /v1/cases/csv HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        w.token,
        full.len() + 1000
    );
    let answer = raw_request(&w.app, head, &full[..full.len() / 2]).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // Given up on, not held: well before the 20 s the test would wait.
    assert!(started.elapsed() < Duration::from_secs(15));
    // Nothing was written.
    assert_eq!(w.count("SELECT COUNT(*) FROM cases").await, 0);
}

#[tokio::test]
async fn a_header_far_wider_than_the_limit_is_refused_at_the_first_limit_hit() {
    // The duplicate-header check compared every header with every other:
    // 160,000 columns took 33 s, a million blocked a worker for minutes
    // (and /healthz with it).
    let w = world_with(|_| {}).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let mut header = String::from("Staff ID,External Staff ID,Case ID");
    for i in 0..400_000 {
        header.push_str(&format!(",c{i}"));
    }
    header.push_str("\nA-1,crm-1,T-1,x\n");
    let (content_type, upload) = form(&[("file", header.as_bytes()), ("dry_run", b"true")]);
    let cases = client
        .post(w.app.url("/v1/cases/csv"))
        .bearer_auth(&w.token)
        .header("content-type", content_type.clone())
        .body(upload.clone())
        .send();
    let customers = client
        .post(
            w.app
                .url(&format!("/v1/campaigns/{}/customers/csv", w.campaigns[0])),
        )
        .bearer_auth(&w.token)
        .header("content-type", content_type)
        .body(upload)
        .send();
    // The workers stay free meanwhile.
    let health = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.get(w.app.url("/healthz")).send().await
    };
    let (cases, customers, health) = tokio::join!(cases, customers, health);
    assert_eq!(health.expect("healthz").status(), 200);
    for response in [cases, customers] {
        let problem = assert_problem(response.expect("answered"), 422, "invalid_csv").await;
        let codes: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["code"].as_str())
            .collect();
        assert_eq!(codes, ["too_many_columns"], "{problem}");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("400003 columns")),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn concurrent_upserts_of_the_same_phones_answer_what_was_stored() {
    // Four uploads of the same 300 phones with override_existing: each
    // decided "created" from its lookups and answered new ids, of which
    // three quarters never existed.
    let w = world_with(|env| {
        env.insert("INTAKE_MAX_BULK_REQUESTS".into(), "8".into());
    })
    .await;
    let campaign = &w.campaigns[0];
    let uploads = (0..4).map(|u| {
        w.put_customers(
            campaign,
            json!({"options": {"override_existing": true}, "customers": customers(0..300, &format!("Upload {u}"))}),
        )
    });
    let answers = join_all(uploads).await;
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        assert_eq!(
            answer["created"].as_u64().unwrap_or(0) + answer["updated"].as_u64().unwrap_or(0),
            300,
            "{answer}"
        );
        created += answer["created"].as_u64().expect("created");
        for result in answer["results"].as_array().expect("results") {
            ids.insert(result["customer_id"].as_str().expect("id").to_string());
        }
    }
    // Each phone was created once, and every id answered is stored.
    assert_eq!(created, 300);
    assert_eq!(ids.len(), 300);
    assert_eq!(w.count("SELECT COUNT(*) FROM customers").await, 300);
    let list = w
        .app
        .get_as(
            &w.token,
            &format!("/v1/campaigns/{campaign}/customers?limit=1000"),
        )
        .await;
    let stored: std::collections::HashSet<String> = body(list).await["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(stored, ids);

    // Without override_existing, the losers skip what the winner created.
    let campaign = &w.campaigns[1];
    let uploads = (0..4).map(|u| {
        w.put_customers(
            campaign,
            json!({"customers": customers(0..200, &format!("U{u}"))}),
        )
    });
    let answers = join_all(uploads).await;
    let mut created = 0;
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        created += answer["created"].as_u64().expect("created");
        assert_eq!(
            answer["created"].as_u64().unwrap_or(0) + answer["skipped"].as_u64().unwrap_or(0),
            200,
            "{answer}"
        );
    }
    assert_eq!(created, 200);
}

/// Eight concurrent uploads of the same 150 phones with `options`, four
/// into each of the two campaigns, alternating.
async fn uploads_into_both_campaigns(w: &World, options: Value) -> Vec<(StatusCode, Value)> {
    join_all((0..8).map(|i| {
        w.put_customers(
            &w.campaigns[i % 2],
            json!({"options": options, "customers": customers(0..150, &format!("Upload {i}"))}),
        )
    }))
    .await
}

#[tokio::test]
async fn concurrent_moves_between_two_campaigns_never_deadlock() {
    // unique_mode=move deletes the phones from the other campaigns and
    // writes them here: two requests moving the same phones in opposite
    // directions locked rows in opposite orders (500 "deadlock detected").
    let w = world_with(|env| {
        env.insert("INTAKE_MAX_BULK_REQUESTS".into(), "16".into());
    })
    .await;
    let answers = uploads_into_both_campaigns(
        &w,
        json!({"unique_mode": "move", "override_existing": true}),
    )
    .await;
    for (status, answer) in answers {
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    // Each phone is in exactly one campaign.
    assert_eq!(w.count("SELECT COUNT(*) FROM customers").await, 150);
    assert_eq!(
        w.count("SELECT COUNT(DISTINCT phone) FROM customers").await,
        150
    );
}

#[tokio::test]
async fn concurrent_skip_if_elsewhere_uploads_into_two_campaigns_store_each_phone_once() {
    // unique_mode=skip_if_elsewhere decided "elsewhere" from the batch's
    // lookups: two uploads of the same new phones into two campaigns both
    // saw none elsewhere and both created them.
    let w = world_with(|env| {
        env.insert("INTAKE_MAX_BULK_REQUESTS".into(), "16".into());
    })
    .await;
    let answers =
        uploads_into_both_campaigns(&w, json!({"unique_mode": "skip_if_elsewhere"})).await;
    let mut created = std::collections::HashSet::new();
    for (status, answer) in answers {
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            answer["created"].as_u64().unwrap_or(0) + answer["skipped"].as_u64().unwrap_or(0),
            150,
            "{answer}"
        );
        for result in answer["results"].as_array().expect("results") {
            match result["outcome"].as_str() {
                Some("created") => {
                    assert!(
                        created.insert(result["customer_id"].as_str().expect("id").to_string()),
                        "{result}"
                    );
                }
                Some("skipped") => assert!(
                    matches!(
                        result["reason"].as_str(),
                        Some("exists_in_other_campaign" | "already_exists")
                    ),
                    "{result}"
                ),
                _ => panic!("{result}"),
            }
        }
    }
    // Each phone is in exactly one campaign, created once, under the id
    // its creator was answered.
    assert_eq!(created.len(), 150);
    assert_eq!(w.count("SELECT COUNT(*) FROM customers").await, 150);
    assert_eq!(
        w.count("SELECT COUNT(DISTINCT phone) FROM customers").await,
        150
    );
}

#[tokio::test]
async fn a_non_atomic_stream_that_stops_on_a_conflict_says_what_it_committed() {
    let w = world_with(|_| {}).await;
    // A concurrent writer's uniqueness conflict, made to happen on one Case
    // ID (the race between a batch's lookups and its write, pinned).
    let trigger = match &w.app.state.store.reads {
        intake::store::Pool::Sqlite(_) => {
            "CREATE TRIGGER boom BEFORE INSERT ON cases WHEN NEW.external_id = 'BOOM' \
             BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: cases.integration_id, cases.external_id'); END;"
        }
        intake::store::Pool::Postgres(_) => {
            "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.external_id = 'BOOM' THEN RAISE unique_violation USING MESSAGE = 'duplicate key'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER boom BEFORE INSERT ON cases FOR EACH ROW EXECUTE FUNCTION boom();"
        }
    };
    w.execute(trigger).await;
    // The first batch of a stream is 100 lines; the conflict is in the second.
    let lines: Vec<String> = (1..=150)
        .map(|i| {
            let id = if i == 130 {
                "BOOM".to_string()
            } else {
                format!("L-{i}")
            };
            case(&id).to_string()
        })
        .collect();
    let (status, problem) = w.post_ndjson("atomic=false", lines).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "duplicate_external_id", "{problem}");
    assert_eq!(
        problem["committed"],
        json!({"created": 100, "updated": 0, "skipped": 0, "through_row": 100}),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("100 cases were committed")),
        "{problem}"
    );
    assert_eq!(w.count("SELECT COUNT(*) FROM cases").await, 100);
    let _ = (&w.group, &w.integration);
}

/// A Redis server of the test's own, to pause and resume (the shared one
/// serves every other test).
struct OwnRedis {
    process: std::process::Child,
    port: u16,
}

impl OwnRedis {
    fn start() -> Option<OwnRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let process = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        Some(OwnRedis { process, port })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.process.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// `/readyz`: its status and report.
async fn readiness(app: &TestApp) -> (StatusCode, Value) {
    let response = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    (response.status(), body(response).await)
}

#[tokio::test]
async fn a_hung_redis_costs_requests_nothing_and_lets_no_revoked_token_back_in() {
    let Some(redis) = OwnRedis::start() else {
        eprintln!("skipped: redis-server is not installed");
        return;
    };
    let url = redis.url();
    let w = world_with(|env| {
        env.insert("INTAKE_REDIS_URL".into(), url);
        env.insert("INTAKE_REDIS_TIMEOUT_MS".into(), "100".into());
    })
    .await;
    let (revoked, revoked_jti) = w.app.mint(&w.integration, &["cases:read"]).await;
    let (kept, _) = w.app.mint(&w.integration, &["cases:read"]).await;
    let other = w.app.create_integration("Other", &[&w.group]).await;
    let (disabled, _) = w.app.mint(&other, &["cases:read"]).await;
    // Redis answers at first (the server started while it came up).
    assert!(
        crate::helpers::eventually(Duration::from_secs(5), || async {
            w.app.get_as(&revoked, "/v1/me").await.status() == 200
                && readiness(&w.app).await.1["checks"]["redis"] == "up"
        })
        .await
    );
    assert_eq!(w.app.get_as(&disabled, "/v1/me").await.status(), 200);

    redis.signal("-STOP");
    // Requests go on with the database: one short time-out, then the
    // breaker skips Redis (each request took 1–1.5 s before).
    let started = std::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(w.app.get_as(&kept, "/v1/me").await.status(), 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "20 requests took {:?}",
        started.elapsed()
    );
    let (status, ready) = readiness(&w.app).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a Redis outage keeps the replica in"
    );
    assert_eq!(ready["checks"]["redis"], "degraded");

    // Changes made while Redis hangs: written to the database first.
    let response = w
        .app
        .admin(
            reqwest::Method::DELETE,
            &format!(
                "/v1/admin/integrations/{}/tokens/{revoked_jti}",
                w.integration
            ),
        )
        .send()
        .await
        .expect("revoke");
    assert!(response.status().is_success(), "{}", response.status());
    let response = w
        .app
        .admin(
            reqwest::Method::PATCH,
            &format!("/v1/admin/integrations/{other}"),
        )
        .json(&json!({"enabled": false}))
        .send()
        .await
        .expect("disable");
    assert_eq!(response.status(), 200);
    assert_eq!(w.app.get_as(&revoked, "/v1/me").await.status(), 401);
    assert_eq!(w.app.get_as(&disabled, "/v1/me").await.status(), 401);

    // Redis resumes with what it cached before: neither comes back.
    redis.signal("-CONT");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        assert_eq!(w.app.get_as(&revoked, "/v1/me").await.status(), 401);
        assert_eq!(w.app.get_as(&disabled, "/v1/me").await.status(), 401);
        assert_eq!(w.app.get_as(&kept, "/v1/me").await.status(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And it is used again.
    assert!(
        crate::helpers::eventually(Duration::from_secs(15), || async {
            readiness(&w.app).await.1["checks"]["redis"] == "up"
        })
        .await
    );
}

#[tokio::test]
async fn cached_categories_follow_every_change_at_once() {
    // The small-request path reads the categories from a cache (Redis, or
    // this process): a change drops it, so the next case sees it.
    let w = world_with(|_| {}).await;
    let with_category = |id: &str| json!({"cases": [{"external_id": id, "staff_id": "A-1", "category": "Refunds"}]});
    let (status, problem) = w.post_cases(with_category("C-1")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["code"], "unknown_category");
    let created = w
        .app
        .post_admin("/v1/admin/categories", &json!({"name": "Refunds"}))
        .await;
    assert_eq!(created.status(), 201);
    let category = body(created).await["id"].as_str().expect("id").to_string();
    let (status, answer) = w.post_cases(with_category("C-2")).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let renamed = w
        .app
        .admin(
            reqwest::Method::PATCH,
            &format!("/v1/admin/categories/{category}"),
        )
        .json(&json!({"name": "Returns"}))
        .send()
        .await
        .expect("rename");
    assert_eq!(renamed.status(), 200);
    let (status, problem) = w.post_cases(with_category("C-3")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let deleted = w
        .app
        .admin(
            reqwest::Method::DELETE,
            &format!("/v1/admin/categories/{category}"),
        )
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    let returns =
        json!({"cases": [{"external_id": "C-4", "staff_id": "A-1", "category": "Returns"}]});
    let (status, problem) = w.post_cases(returns).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["code"], "unknown_category");
}

#[tokio::test]
async fn the_same_case_id_sent_by_many_clients_at_once_is_stored_once() {
    // Single cases are grouped, and a group the duplicate makes the
    // database refuse is written again request by request: the database's
    // uniqueness decides, and every loser is told (never a 500, never two).
    let w = world_with(|_| {}).await;
    let answers = join_all((0..16).map(|_| w.post_cases(json!({"cases": [case("SAME-1")]})))).await;
    let created = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{answers:?}");
    for (status, answer) in &answers {
        match status.as_u16() {
            201 => {}
            409 => assert_eq!(answer["code"], "duplicate_external_id", "{answer}"),
            422 => assert_eq!(
                answer["errors"][0]["code"], "duplicate_external_id",
                "{answer}"
            ),
            other => panic!("{other}: {answer}"),
        }
    }
    assert_eq!(w.count("SELECT COUNT(*) FROM cases").await, 1);
}

#[tokio::test]
async fn cached_staff_follow_every_change_at_once_on_every_replica() {
    // Small requests resolve staff from a cached directory of the
    // integration's groups; every change to staff replaces its generation
    // (in Redis, shared by replicas, where configured).
    let w = world_with(|_| {}).await;
    let replica = if crate::helpers::redis_url().is_some() {
        Some(crate::helpers::spawn_replica(&w.app).await)
    } else {
        None
    };
    // Without Redis a change reaches only the process that made it.
    let other = replica.as_ref().unwrap_or(&w.app);
    let post = |id: &str| w.post_cases(json!({"cases": [{"external_id": id, "staff_id": "X-1"}]}));
    let (status, problem) = post("X-A").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["code"], "unknown_staff_id");

    let created = other
        .post_admin(
            "/v1/admin/staff",
            &json!({"staff_id": "X-1", "name": "Xena", "role": "agent", "group_id": w.group}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let (status, answer) = post("X-B").await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    let patched = other
        .admin(reqwest::Method::PATCH, "/v1/admin/staff/X-1")
        .json(&json!({"active": false}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    let (status, problem) = post("X-C").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["code"], "staff_inactive");

    let elsewhere = w.app.create_group("Elsewhere").await;
    let moved = other
        .admin(reqwest::Method::PATCH, "/v1/admin/staff/X-1")
        .json(&json!({"active": true, "group_id": elsewhere}))
        .send()
        .await
        .expect("patch");
    assert_eq!(moved.status(), 200);
    let (status, problem) = post("X-D").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["code"], "unknown_staff_id");
}

#[tokio::test]
async fn one_customer_is_never_held_up_behind_a_long_upload_into_its_campaign() {
    // Uploads into one campaign are written one after another (PostgreSQL:
    // the campaign's lock); a single customer needs no such turn. (SQLite
    // writes one transaction at a time, whatever the campaign.)
    if crate::helpers::postgres_url().is_none() {
        return;
    }
    let w = world_with(|_| {}).await;
    let campaign = &w.campaigns[0];
    // A stream of more than two batches (10,000 lines each) that stays
    // open: its first batch is written (while the second is validated), and
    // the campaign's lock held, meanwhile.
    let mut open = w
        .open_stream(&format!("PUT /v1/campaigns/{campaign}/customers"), "")
        .await;
    let lines: String = customers(0..20_050, "Streamed")
        .iter()
        .map(|c| format!("{c}\n"))
        .collect();
    for chunk in lines.as_bytes().chunks(64 * 1024) {
        open.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .expect("chunk");
        open.write_all(chunk).await.expect("chunk");
        open.write_all(b"\r\n").await.expect("chunk");
    }
    assert!(
        crate::helpers::eventually(Duration::from_secs(20), || async {
            w.count("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
                .await
                > 0
        })
        .await,
        "the stream holds the campaign's lock"
    );
    let one = w
        .app
        .client
        .post(w.app.url(&format!("/v1/campaigns/{campaign}/customers")))
        .bearer_auth(&w.token)
        .json(&json!({"name": "Walk-in", "phone": "+442071234567"}))
        .send();
    let response = tokio::time::timeout(Duration::from_secs(10), one)
        .await
        .expect("answered while the upload still runs")
        .expect("request");
    assert_eq!(response.status(), 201);
    open.write_all(b"0\r\n\r\n").await.expect("end");
    let mut answer = vec![0u8; 1 << 16];
    let read = open.read(&mut answer).await.expect("answer");
    let answer = String::from_utf8_lossy(&answer[..read]).to_string();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(w.count("SELECT COUNT(*) FROM customers").await, 20_051);
}

/// How many times `command` ran on `redis` (its `INFO commandstats`).
fn redis_calls(redis: &OwnRedis, command: &str) -> u64 {
    let output = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "INFO", "commandstats"])
        .output()
        .expect("redis-cli");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_single_case_request_makes_no_redis_round_trip_for_a_pool_check() {
    // Each Redis call took a connection from the pool, which checked it
    // first with UNWATCH + PING: a round trip more for every call, three
    // for each single-case request.
    let Some(redis) = OwnRedis::start() else {
        eprintln!("skipped: redis-server is not installed");
        return;
    };
    let url = redis.url();
    let w = world_with(|env| {
        env.insert("INTAKE_REDIS_URL".into(), url);
    })
    .await;
    let case = |id: &str| json!({"external_id": id, "staff_id": "A-1"});
    assert!(
        crate::helpers::eventually(Duration::from_secs(5), || async {
            w.post_cases(json!({"cases": [case(&uuid::Uuid::new_v4().to_string())]}))
                .await
                .0
                == StatusCode::CREATED
                && redis_calls(&redis, "get") > 0
        })
        .await,
        "the server uses Redis"
    );
    let (pings, gets) = (redis_calls(&redis, "ping"), redis_calls(&redis, "get"));
    for i in 0..20 {
        let (status, answer) = w
            .post_cases(json!({"cases": [case(&format!("RT-{i}"))]}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    // Redis was used (the token check and the categories read it) ...
    assert!(redis_calls(&redis, "get") >= gets + 20);
    // ... without a check of the connection per call.
    assert_eq!(redis_calls(&redis, "ping"), pings);
    assert_eq!(
        w.count("SELECT COUNT(*) FROM cases WHERE external_id LIKE 'RT-%'")
            .await,
        20
    );
}
