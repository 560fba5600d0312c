//! Customer upsert benchmark: 100,000 customers upserted through the HTTP
//! API into a campaign that already holds 50,000 of them (half created,
//! half updated, `override_existing`), against PostgreSQL, compared in the
//! same run with psql loading the same rows into a staging table (`\copy`)
//! and moving them with one `INSERT … ON CONFLICT DO UPDATE`. Prints its
//! medians of three interleaved rounds; asserts nothing.
//!
//!     cargo bench --bench customers
//!
//! Needs PostgreSQL and `psql` (INTAKE_BENCH_DATABASE_URL, default
//! postgres://postgres@127.0.0.1:5432/intake_bench, created if missing).
//! INTAKE_BENCH_ROWS (default 100000) sets the number of customers.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use intake::settings::Settings;
use intake::startup::Application;
use serde_json::{Value, json};

const COLUMNS: &str = "id, campaign_id, name, phone, phone_raw, status, agent_staff_id, follow_up_at, \
     source_created_at, do_not_call, contact_allowed_at, fields, created_at, updated_at";

/// An Israeli mobile number, national format (`052-3xx-xxxx`), and its E.164.
fn phone(i: usize) -> (String, String) {
    let n = format!("{i:06}");
    (
        format!("052-3{}-{}", &n[..2], &n[2..]),
        format!("+97252{}{n}", 3),
    )
}

fn customer(i: usize) -> Value {
    json!({"name": format!("Customer {i}"), "phone": phone(i).0, "agent": format!("Agent {}", i % 10),
           "follow_up_at": "2026-11-24T09:30:00+02:00",
           "fields": {"plan": "gold", "score": i % 100, "source": "bench", "note": format!("lead {i}")}})
}

/// Rounds of each measurement (the median is printed).
const ROUNDS: usize = 3;

fn rate(rows: usize, took: Duration) -> f64 {
    rows as f64 / took.as_secs_f64()
}

/// Empties the campaign and loads its first `existing` customers.
async fn seed(pool: &sqlx::PgPool, campaign: &str, existing: usize) -> anyhow::Result<()> {
    sqlx::query("TRUNCATE customers").execute(pool).await?;
    sqlx::query(
        "INSERT INTO customers (id, campaign_id, name, phone, phone_raw, status, fields, created_at, updated_at) \
         SELECT gen_random_uuid(), $1::uuid, 'Old ' || i, '+972523' || lpad(i::text, 6, '0'), 'old', 'new', \
                '{\"plan\": \"silver\", \"kept\": true}', now(), now() \
         FROM generate_series(0, $2 - 1) AS i",
    )
    .bind(campaign)
    .bind(existing as i64)
    .execute(pool)
    .await?;
    sqlx::query("ANALYZE customers").execute(pool).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: usize = std::env::var("INTAKE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let existing = rows / 2;
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
    sqlx::query("TRUNCATE customers, cases, case_lists, tokens, integration_groups, integrations, staff, teams, campaigns, groups CASCADE")
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
    let (group, _, token) = common::setup(&http, &base, &admin_token, &["customers:write"]).await?;
    let campaign: Value = http
        .post(format!("{base}/v1/admin/campaigns"))
        .bearer_auth(&admin_token)
        .json(&json!({"name": "Bench", "group_id": group, "default_region": "IL", "timezone": "Asia/Jerusalem"}))
        .send()
        .await?
        .json()
        .await?;
    let campaign = campaign["id"].as_str().expect("campaign").to_string();

    println!(
        "intake customer upsert benchmark: {rows} customers into a campaign holding {existing} of them, PostgreSQL at {url}"
    );
    let tsv = tempfile::NamedTempFile::new()?;
    {
        let mut out = std::io::BufWriter::new(tsv.as_file());
        let now = "2026-11-22T00:00:00Z";
        for i in 0..rows {
            let c = customer(i);
            let (raw, e164) = phone(i);
            writeln!(
                out,
                "{}\t{campaign}\t{}\t{e164}\t{raw}\tnew\tS-{}\t2026-11-24T07:30:00Z\t\\N\tf\t\\N\t{}\t{now}\t{now}",
                uuid::Uuid::now_v7(),
                c["name"].as_str().unwrap_or_default(),
                i % 10,
                c["fields"],
            )?;
        }
    }
    let script = tempfile::NamedTempFile::new()?;
    std::fs::write(
        script.path(),
        format!(
            "BEGIN;\n\
             CREATE TEMP TABLE stage (LIKE customers INCLUDING DEFAULTS) ON COMMIT DROP;\n\
             \\copy stage ({COLUMNS}) FROM '{}'\n\
             INSERT INTO customers ({COLUMNS}) SELECT {COLUMNS} FROM stage \
             ON CONFLICT (campaign_id, phone) DO UPDATE SET name = excluded.name, phone_raw = excluded.phone_raw, \
             agent_staff_id = COALESCE(excluded.agent_staff_id, customers.agent_staff_id), \
             follow_up_at = COALESCE(excluded.follow_up_at, customers.follow_up_at), \
             source_created_at = COALESCE(excluded.source_created_at, customers.source_created_at), \
             updated_at = excluded.updated_at, \
             fields = (customers.fields::jsonb || excluded.fields::jsonb)::json;\n\
             COMMIT;\n",
            tsv.path().display()
        ),
    )?;
    let json_body = serde_json::to_vec(
        &json!({"options": {"override_existing": true}, "customers": (0..rows).map(customer).collect::<Vec<_>>()}),
    )?;
    let mut ndjson = Vec::new();
    for i in 0..rows {
        serde_json::to_writer(&mut ndjson, &customer(i))?;
        ndjson.push(b'\n');
    }
    let check = |answer: &Value| {
        anyhow::ensure!(
            answer["created"] == json!(rows - existing) && answer["updated"] == json!(existing),
            "unexpected counts: created {} updated {} failed {}",
            answer["created"],
            answer["updated"],
            answer["failed"]
        );
        Ok(())
    };

    // Three rounds, the three paths interleaved in each (figures on a
    // shared machine drift); the median of each is printed.
    let mut timings: [Vec<f64>; 3] = Default::default();
    for _round in 0..ROUNDS {
        // psql: \copy into a staging table, then one INSERT … ON CONFLICT.
        seed(&pool, &campaign, existing).await?;
        let started = Instant::now();
        let status = Command::new("psql")
            .arg(&url)
            .arg("-q")
            .arg("-v")
            .arg("ON_ERROR_STOP=1")
            .arg("-f")
            .arg(script.path())
            .status()?;
        anyhow::ensure!(status.success(), "psql upsert failed");
        timings[0].push(rate(rows, started.elapsed()));

        // JSON, one request.
        seed(&pool, &campaign, existing).await?;
        let started = Instant::now();
        let response = http
            .put(format!("{base}/v1/campaigns/{campaign}/customers"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(json_body.clone())
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200, "JSON: {}", response.text().await?);
        let answer: Value = response.json().await?;
        timings[1].push(rate(rows, started.elapsed()));
        check(&answer)?;

        // NDJSON, one stream.
        seed(&pool, &campaign, existing).await?;
        let started = Instant::now();
        let response = http
            .put(format!(
                "{base}/v1/campaigns/{campaign}/customers?override_existing=true"
            ))
            .bearer_auth(&token)
            .header("content-type", "application/x-ndjson")
            .body(ndjson.clone())
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 200,
            "NDJSON: {}",
            response.text().await?
        );
        let answer: Value = response.json().await?;
        timings[2].push(rate(rows, started.elapsed()));
        check(&answer)?;
    }
    let names = [
        "psql \\copy + INSERT ON CONFLICT (reference)",
        "PUT …/customers JSON, 1 request",
        "PUT …/customers NDJSON, 1 stream",
    ];
    let results: Vec<(&str, f64)> = names
        .iter()
        .zip(timings.iter_mut())
        .map(|(name, rates)| {
            rates.sort_by(f64::total_cmp);
            (*name, rates[rates.len() / 2])
        })
        .collect();
    let reference = results[0].1;
    println!("{:<48} {:>12} {:>12}", "path", "customers/s", "x reference");
    for (name, value) in &results {
        println!("{name:<48} {value:>12.0} {:>12.2}", value / reference);
    }
    drop(handle.stop(true));
    Ok(())
}
