//! Ingestion benchmark: cases through the HTTP API against PostgreSQL,
//! compared in the same run with `psql \copy` of the same rows into the same
//! table. Prints its figures; asserts nothing.
//!
//!     cargo bench --bench ingest
//!
//! Needs PostgreSQL and `psql` (INTAKE_BENCH_DATABASE_URL, default
//! postgres://postgres@127.0.0.1:5432/intake_bench, created if missing).
//! INTAKE_BENCH_ROWS (default 100000) sets the number of cases.
//! INTAKE_BENCH_STREAM_MB=1024 instead streams that many megabytes of
//! NDJSON, generated as it is sent, and prints the process's peak RSS
//! (server and client share the process; the client holds 256 KiB at a time).

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

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

/// Rounds of the throughput runs (each path's median is reported).
const ROUNDS: usize = 5;

/// Prints each path's median rate and its ratio to the first (the
/// reference) path's median, with the range of the per-round ratios.
fn report(paths: &[(&str, Vec<f64>)], title: &str, ratio: &str) {
    let median = |rates: &[f64]| {
        let mut sorted = rates.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    };
    let reference = &paths[0].1;
    println!(
        "{title:<42} {:>12} {ratio:>10} {:>14}",
        "cases/s", "per round"
    );
    for (name, rates) in paths {
        let ratios: Vec<f64> = rates.iter().zip(reference).map(|(r, c)| r / c).collect();
        let (low, high) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
        println!(
            "{name:<42} {:>12.0} {:>10.2} {:>14}",
            median(rates),
            median(rates) / median(reference),
            format!("[{low:.2}-{high:.2}]")
        );
    }
}

fn rate(rows: usize, took: Duration) -> f64 {
    rows as f64 / took.as_secs_f64()
}

async fn truncate(client: &sqlx::PgPool) {
    // CASCADE: import jobs (and their staged rows) refer to case lists.
    sqlx::query("TRUNCATE cases, case_lists CASCADE")
        .execute(client)
        .await
        .expect("truncate");
}

/// An empty table on a quiet database: the WAL of the previous path is
/// flushed now, so that its checkpoint (or a new WAL segment) does not
/// stall whichever path runs next. Every path, the reference too, starts so.
async fn empty_and_checkpoint(client: &sqlx::PgPool) {
    truncate(client).await;
    sqlx::query("CHECKPOINT")
        .execute(client)
        .await
        .expect("checkpoint");
}

/// Sends the cases as one JSON request; answers the rate.
async fn post_json(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    prefix: &str,
    rows: usize,
) -> anyhow::Result<f64> {
    let cases: Vec<Value> = (0..rows).map(|i| case(prefix, i)).collect();
    let body = serde_json::to_vec(&json!({"cases": cases}))?;
    drop(cases);
    let started = Instant::now();
    let response = http
        .post(format!("{base}/v1/cases"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(response.status() == 201, "JSON: {}", response.text().await?);
    let _ = response.bytes().await?;
    Ok(rate(rows, started.elapsed()))
}

/// Sends the cases as one NDJSON stream; answers the rate.
async fn post_ndjson(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    prefix: &str,
    rows: usize,
) -> anyhow::Result<f64> {
    let mut ndjson = Vec::new();
    for i in 0..rows {
        serde_json::to_writer(&mut ndjson, &case(prefix, i))?;
        ndjson.push(b'\n');
    }
    let started = Instant::now();
    let response = http
        .post(format!("{base}/v1/cases"))
        .bearer_auth(token)
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 201,
        "NDJSON: {}",
        response.text().await?
    );
    let _ = response.bytes().await?;
    Ok(rate(rows, started.elapsed()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: usize = std::env::var("INTAKE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let url = common::bench_database("intake_bench").await?;
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
        // One caller sending as fast as it can: the rate limiter counts
        // every request (its cost is measured) but never refuses one.
        ("INTAKE_RATE_LIMIT_PER_SECOND", "1000000".into()),
        ("INTAKE_RATE_LIMIT_BURST", "1000000".into()),
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

    let (admin_token, _) = intake::auth::tokens::mint_admin_token(
        &state.store,
        &state.jwt,
        Duration::from_secs(3600),
        state.settings.admin_token_max_ttl,
    )
    .await?;
    intake::install_tls_provider();
    let http = reqwest::Client::new();
    let (group, integration, token) =
        common::setup(&http, &base, &admin_token, &["cases:write"]).await?;

    // A long NDJSON stream, generated as it is sent: peak memory. Run
    // alone, so that the process's peak is the stream's.
    let stream_mb: u64 = std::env::var("INTAKE_BENCH_STREAM_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // INTAKE_BENCH_LINE_BYTES pads every case to about that many bytes (a
    // long transcript): batches are then cut by bytes, not by lines.
    let line_bytes: usize = std::env::var("INTAKE_BENCH_LINE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let padding = "lorem ipsum ".repeat(line_bytes / 12);
    if stream_mb > 0 {
        let target = stream_mb * 1024 * 1024;
        let padding = std::sync::Arc::new(padding);
        let chunks = futures_util::stream::unfold((0usize, 0u64), move |(i, sent)| {
            let padding = padding.clone();
            async move {
                if sent >= target {
                    return None;
                }
                let mut chunk = Vec::with_capacity(256 * 1024);
                let mut n = i;
                while chunk.len() < 256 * 1024 {
                    let mut row = case("S", n);
                    if !padding.is_empty() {
                        row["data"]["Transcript"] = json!(padding.as_str());
                    }
                    serde_json::to_writer(&mut chunk, &row).ok()?;
                    chunk.push(b'\n');
                    n += 1;
                }
                let len = chunk.len() as u64;
                Some((Ok::<_, std::io::Error>(chunk), (n, sent + len)))
            }
        });
        let started = Instant::now();
        let response = http
            .post(format!("{base}/v1/cases"))
            .bearer_auth(&token)
            .header("content-type", "application/x-ndjson")
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await?;
        let took = started.elapsed();
        anyhow::ensure!(
            response.status() == 201,
            "stream: {}",
            response.text().await?
        );
        let summary: Value = response.json().await?;
        let created = summary["created"].as_u64().unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let peak = status
            .lines()
            .find(|l| l.starts_with("VmHWM"))
            .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        println!(
            "NDJSON stream of {stream_mb} MB (lines of about {} bytes): {created} cases in {:.1} s ({:.0} cases/s); peak RSS of the process {peak}",
            stream_mb * 1024 * 1024 / created.max(1),
            took.as_secs_f64(),
            created as f64 / took.as_secs_f64(),
        );
        drop(handle.stop(true));
        return Ok(());
    }

    println!(
        "intake ingestion benchmark: {rows} cases, {FIELDS} data fields each, PostgreSQL at {url}"
    );

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
    // The paths run interleaved, ROUNDS times; each is reported by its median.
    let mut pg: Vec<(&str, Vec<f64>)> = [
        "psql \\copy (reference)",
        "POST /v1/cases JSON, 1 request",
        "POST /v1/cases JSON, 10,000 a request",
        "POST /v1/cases NDJSON, 1 stream",
    ]
    .into_iter()
    .map(|name| (name, Vec::new()))
    .collect();
    for _ in 0..ROUNDS {
        empty_and_checkpoint(&pool).await;
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
        pg[0].1.push(rate(rows, started.elapsed()));

        empty_and_checkpoint(&pool).await;
        pg[1]
            .1
            .push(post_json(&http, &base, &token, "J", rows).await?);

        empty_and_checkpoint(&pool).await;
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
        pg[2].1.push(rate(rows, started.elapsed()));

        empty_and_checkpoint(&pool).await;
        pg[3]
            .1
            .push(post_ndjson(&http, &base, &token, "N", rows).await?);
    }

    // SQLite (the embedded default) against the sqlite3 shell's .import of
    // the same rows into a database with the same schema.
    let sqlite_dir = tempfile::tempdir()?;
    let mut schema = String::new();
    let mut migrations: Vec<_> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
    migrations.sort();
    for file in migrations {
        schema.push_str(&std::fs::read_to_string(file)?);
        schema.push('\n');
    }
    let sqlite_env: Vec<(&str, String)> = vec![
        ("INTAKE_BIND", "127.0.0.1:0".into()),
        ("INTAKE_DATA_DIR", sqlite_dir.path().display().to_string()),
        (
            "INTAKE_JWT_SECRET",
            "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz".into(),
        ),
        ("INTAKE_MAX_BODY_BYTES", "1GiB".into()),
        ("INTAKE_LOG", "warn".into()),
        // One caller sending as fast as it can: the rate limiter counts
        // every request (its cost is measured) but never refuses one.
        ("INTAKE_RATE_LIMIT_PER_SECOND", "1000000".into()),
        ("INTAKE_RATE_LIMIT_BURST", "1000000".into()),
    ];
    let sqlite_settings = Settings::load_from(None, |k| {
        sqlite_env
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.clone())
    })?;
    let sqlite_app = Application::build(sqlite_settings).await?;
    let sqlite_base = format!("http://127.0.0.1:{}", sqlite_app.port());
    let sqlite_state = sqlite_app.state();
    let (sqlite_admin, _) = intake::auth::tokens::mint_admin_token(
        &sqlite_state.store,
        &sqlite_state.jwt,
        Duration::from_secs(3600),
        sqlite_state.settings.admin_token_max_ttl,
    )
    .await?;
    let sqlite_handle = sqlite_app.handle();
    let intake::store::Pool::Sqlite(sqlite_pool) = sqlite_app.state().store.reads.clone() else {
        anyhow::bail!("the SQLite app runs on SQLite");
    };
    tokio::spawn(sqlite_app.run_until_stopped());
    let (_, _, sqlite_token) =
        common::setup(&http, &sqlite_base, &sqlite_admin, &["cases:write"]).await?;
    let empty_sqlite = || async {
        sqlx::query("DELETE FROM cases")
            .execute(&sqlite_pool)
            .await
            .expect("delete cases");
        sqlx::query("DELETE FROM case_lists")
            .execute(&sqlite_pool)
            .await
            .expect("delete lists");
    };
    let mut lite: Vec<(&str, Vec<f64>)> = [
        "sqlite3 .import (reference)",
        "POST /v1/cases JSON, 1 request",
        "POST /v1/cases NDJSON, 1 stream",
    ]
    .into_iter()
    .map(|name| (name, Vec::new()))
    .collect();
    for round in 0..ROUNDS {
        let reference = sqlite_dir.path().join(format!("reference-{round}.db"));
        let mut create = Command::new("sqlite3")
            .arg(&reference)
            .stdin(std::process::Stdio::piped())
            .spawn()?;
        create
            .stdin
            .take()
            .expect("stdin")
            .write_all(schema.as_bytes())?;
        anyhow::ensure!(
            create.wait()?.success(),
            "sqlite3 could not create the schema"
        );
        let started = Instant::now();
        let status = Command::new("sqlite3")
            .arg(&reference)
            .arg(".mode tabs")
            .arg(format!(".import {} cases", tsv.path().display()))
            .status()?;
        anyhow::ensure!(status.success(), "sqlite3 .import failed");
        lite[0].1.push(rate(rows, started.elapsed()));

        empty_sqlite().await;
        lite[1]
            .1
            .push(post_json(&http, &sqlite_base, &sqlite_token, "SJ", rows).await?);
        empty_sqlite().await;
        lite[2]
            .1
            .push(post_ndjson(&http, &sqlite_base, &sqlite_token, "SN", rows).await?);
    }
    drop(sqlite_handle.stop(true));

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
    // The runs above leave WAL to flush: the upload is timed on a quiet
    // database, not behind their checkpoint.
    sqlx::query("CHECKPOINT").execute(&pool).await?;
    let mut timings = Vec::new();
    for run in 0..20 {
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
    println!("medians of {ROUNDS} interleaved rounds (range of the ratio in brackets)");
    report(&pg, "path", "x COPY");
    println!();
    report(&lite, "SQLite path", "x .import");
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
