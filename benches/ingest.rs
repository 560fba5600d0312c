//! Ingestion benchmark: cases through the HTTP API against PostgreSQL,
//! compared in the same run with `psql \copy` of the same rows into the same
//! table. Prints its figures; asserts nothing.
//!
//!     cargo bench --bench ingest
//!
//! Needs PostgreSQL and `psql` (INTAKE_BENCH_DATABASE_URL, default
//! postgres://postgres@127.0.0.1:5432/intake_bench, created if missing).
//! INTAKE_BENCH_ROWS (default 100000) sets the number of cases.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use intake::auth::Scope;
use intake::settings::Settings;
use intake::startup::Application;
use serde_json::{Value, json};

const FIELDS: usize = 10;

fn case(prefix: &str, i: usize) -> Value {
    let mut data = serde_json::Map::new();
    for f in 0..FIELDS {
        data.insert(
            format!("field_{f}"),
            json!(format!("value {i} {f} lorem ipsum")),
        );
    }
    json!({"external_id": format!("{prefix}-{i}"), "staff_id": format!("S-{}", i % 10), "channel": "live_hotline",
           "priority": "medium", "occurred_at": "2026-11-20T14:05:00Z", "data": data})
}

fn rate(rows: usize, took: Duration) -> f64 {
    rows as f64 / took.as_secs_f64()
}

async fn truncate(client: &sqlx::PgPool) {
    sqlx::query("TRUNCATE cases, case_lists")
        .execute(client)
        .await
        .expect("truncate");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: usize = std::env::var("INTAKE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let url = std::env::var("INTAKE_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/intake_bench".to_string());
    let (server_url, db_name) = url.rsplit_once('/').expect("a database URL");
    let admin = sqlx::PgPool::connect(&format!("{server_url}/postgres")).await?;
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(db_name)
        .fetch_optional(&admin)
        .await?;
    if exists.is_none() {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db_name}")))
            .execute(&admin)
            .await?;
    }
    let data_dir = tempfile::tempdir()?;
    let env: Vec<(&str, String)> = vec![
        ("INTAKE_BIND", "127.0.0.1:0".into()),
        ("INTAKE_DATA_DIR", data_dir.path().display().to_string()),
        ("INTAKE_DATABASE_URL", url.clone()),
        (
            "INTAKE_JWT_SECRET",
            "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz".into(),
        ),
        ("INTAKE_MAX_BODY_BYTES", "1GiB".into()),
        ("INTAKE_LOG", "warn".into()),
    ];
    let settings = Settings::load_from(None, |k| {
        env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })?;
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let pool = sqlx::PgPool::connect(&url).await?;
    sqlx::query("TRUNCATE cases, case_lists, tokens, integration_groups, integrations, staff, teams, campaigns, groups CASCADE")
        .execute(&pool)
        .await?;

    // A group, ten agents, an integration and its token.
    let (admin_token, _) = state
        .jwt
        .mint("admin", &[Scope::Admin], Duration::from_secs(3600))?;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(&admin_token)
            .json(&body)
            .send()
    };
    let group: Value = post("/v1/admin/groups", json!({"name": "Bench"}))
        .await?
        .json()
        .await?;
    let group = group["id"].as_str().expect("group").to_string();
    let staff: Vec<Value> = (0..10)
        .map(|i| json!({"staff_id": format!("S-{i}"), "name": format!("Agent {i}"), "role": "agent", "group_id": group}))
        .collect();
    http.put(format!("{base}/v1/admin/staff"))
        .bearer_auth(&admin_token)
        .json(&json!({"staff": staff}))
        .send()
        .await?
        .error_for_status()?;
    let integration: Value = post(
        "/v1/admin/integrations",
        json!({"label": "Bench", "groups": [group]}),
    )
    .await?
    .json()
    .await?;
    let integration = integration["id"].as_str().expect("integration").to_string();
    let minted: Value = post(
        &format!("/v1/admin/integrations/{integration}/tokens"),
        json!({"scopes": ["cases:write"]}),
    )
    .await?
    .json()
    .await?;
    let token = minted["token"].as_str().expect("token").to_string();

    println!(
        "intake ingestion benchmark: {rows} cases, {FIELDS} data fields each, PostgreSQL at {url}"
    );
    let mut results: Vec<(&str, f64)> = Vec::new();

    // psql \copy of the same rows (text format) into the same table.
    truncate(&pool).await;
    let group_id = group.clone();
    let tsv = tempfile::NamedTempFile::new()?;
    {
        let mut out = std::io::BufWriter::new(tsv.as_file());
        let now = "2026-11-22T00:00:00Z";
        for i in 0..rows {
            let c = case("C", i);
            writeln!(
                out,
                "{}\t{}\t{}\t\\N\t\\N\t{integration}\t{group_id}\tlive_hotline\topen\tmedium\t\\N\t2026-11-20T14:05:00Z\t{}\t{now}\t{now}",
                uuid::Uuid::now_v7(),
                c["external_id"].as_str().unwrap_or_default(),
                c["staff_id"].as_str().unwrap_or_default(),
                c["data"].to_string().replace('\\', "\\\\"),
            )?;
        }
    }
    let started = Instant::now();
    let status = Command::new("psql")
        .arg(&url)
        .arg("-q")
        .arg("-c")
        .arg(format!(
            "\\copy cases (id, external_id, staff_id, external_staff_id, list_id, integration_id, group_id, channel, status, priority, category, occurred_at, data, created_at, updated_at) FROM '{}'",
            tsv.path().display()
        ))
        .status()?;
    anyhow::ensure!(status.success(), "psql \\copy failed");
    let copy_rate = rate(rows, started.elapsed());
    results.push(("psql \\copy (reference)", copy_rate));

    // JSON, one request.
    truncate(&pool).await;
    let cases: Vec<Value> = (0..rows).map(|i| case("J", i)).collect();
    let body = serde_json::to_vec(&json!({"cases": cases}))?;
    let started = Instant::now();
    let response = http
        .post(format!("{base}/v1/cases"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(response.status() == 201, "JSON: {}", response.text().await?);
    let _ = response.bytes().await?;
    results.push((
        "POST /v1/cases JSON, 1 request",
        rate(rows, started.elapsed()),
    ));

    // JSON in requests of 10,000.
    truncate(&pool).await;
    let bodies: Vec<Vec<u8>> = (0..rows)
        .collect::<Vec<_>>()
        .chunks(10_000)
        .map(|chunk| {
            let cases: Vec<Value> = chunk.iter().map(|i| case("K", *i)).collect();
            serde_json::to_vec(&json!({"cases": cases})).unwrap_or_default()
        })
        .collect();
    let started = Instant::now();
    for body in bodies {
        let response = http
            .post(format!("{base}/v1/cases"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 201,
            "JSON batch: {}",
            response.text().await?
        );
        let _ = response.bytes().await?;
    }
    results.push((
        "POST /v1/cases JSON, 10,000 a request",
        rate(rows, started.elapsed()),
    ));

    // NDJSON, one stream.
    truncate(&pool).await;
    let mut ndjson = Vec::new();
    for i in 0..rows {
        serde_json::to_writer(&mut ndjson, &case("N", i))?;
        ndjson.push(b'\n');
    }
    let started = Instant::now();
    let response = http
        .post(format!("{base}/v1/cases"))
        .bearer_auth(&token)
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 201,
        "NDJSON: {}",
        response.text().await?
    );
    results.push((
        "POST /v1/cases NDJSON, 1 stream",
        rate(rows, started.elapsed()),
    ));

    // The CSV uploader at its limits: 1,000 records x 103 columns.
    let mut csv = String::from("Staff ID,External Staff ID,Case ID");
    for c in 0..100 {
        csv.push_str(&format!(",Column {c}"));
    }
    csv.push('\n');
    for i in 0..1000 {
        csv.push_str(&format!("S-{},,CSV-{{run}}-{i}", i % 10));
        for c in 0..100 {
            csv.push_str(&format!(",v{c}"));
        }
        csv.push('\n');
    }
    let mut timings = Vec::new();
    for run in 0..10 {
        truncate(&pool).await;
        let file = csv.replace("{run}", &run.to_string());
        let boundary = "bench-boundary";
        let mut form = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"list_name\"\r\n\r\nBench\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"assign_group\"\r\n\r\n{group}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.csv\"\r\nContent-Type: text/csv\r\n\r\n"
        )
        .into_bytes();
        form.extend_from_slice(file.as_bytes());
        form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let started = Instant::now();
        let response = http
            .post(format!("{base}/v1/cases/csv"))
            .bearer_auth(&token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(form)
            .send()
            .await?;
        anyhow::ensure!(response.status() == 201, "CSV: {}", response.text().await?);
        let _ = response.bytes().await?;
        timings.push(started.elapsed());
    }
    timings.sort();

    println!();
    println!("{:<42} {:>12} {:>10}", "path", "cases/s", "x COPY");
    for (name, r) in &results {
        println!("{name:<42} {r:>12.0} {:>10.2}", r / copy_rate);
    }
    println!();
    println!(
        "CSV upload, 1,000 records x 103 columns: median {:.1} ms (min {:.1}, max {:.1}) over {} runs",
        timings[timings.len() / 2].as_secs_f64() * 1000.0,
        timings[0].as_secs_f64() * 1000.0,
        timings[timings.len() - 1].as_secs_f64() * 1000.0,
        timings.len()
    );
    drop(handle.stop(true));
    Ok(())
}
