//! Load benchmark: many clients at once, as client systems pushing cases as
//! they happen do. Prints its figures; asserts nothing.
//!
//!     cargo bench --bench load
//!
//! Needs `wrk` and `pgbench` (Debian: `apt-get install wrk postgresql-client`)
//! and PostgreSQL (INTAKE_BENCH_DATABASE_URL, default
//! postgres://postgres@127.0.0.1:5432/intake_load, created if missing; its
//! tables are emptied).
//!
//! - Single-case `POST /v1/cases` (a fresh Case ID each) by wrk at 8, 32
//!   and 256 connections, on PostgreSQL and on SQLite; beside it, in the same
//!   run, pgbench's single-row INSERT into a table like `cases` at the same
//!   client counts (the database's own rate for one row per transaction),
//!   and, prepared, the server's one-case statement into a copy that also
//!   has `cases`' reference check (the database's own rate for what a
//!   single-case request makes it do). pgbench's p50 and p99 come from its
//!   per-transaction log.
//! - A mixed load: 32 wrk connections of single cases while one request of
//!   100,000 cases runs (the singles' latency while a bulk write holds a
//!   writer's connection).
//!
//! The `group` column is the server's group commit over the run: how many
//! single-case requests one `INSERT` wrote, on average (1.0: none grouped).
//!
//! INTAKE_LOAD_SECONDS (default 10) sets each run's length,
//! INTAKE_LOAD_CONNECTIONS (default 8,32,256) the connection counts,
//! INTAKE_LOAD_POOL (default 20) the server's database connections.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use intake::settings::Settings;
use intake::startup::Application;
use intake::store::grouped::GroupedWrites;
use serde_json::{Value, json};

/// What wrk measured.
#[derive(Debug, Default)]
struct WrkFigures {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    /// Answers that were not 2xx/3xx, and socket errors (time-outs too).
    failed: u64,
}

/// wrk's Lua script: one case per request, a fresh Case ID each.
const WRK_SCRIPT: &str = r#"
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  token = args[1]
  tag = args[2]
  counter = 0
  headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
end
function request()
  counter = counter + 1
  local body = '{"cases": [{"external_id": "' .. tag .. '-' .. tid .. '-' .. counter ..
    '", "staff_id": "S-1", "channel": "live_hotline", "priority": "high", "occurred_at": "2026-11-20T14:05:00Z", ' ..
    '"data": {"Duration": 312, "Caller": "+420 601 123 456", "Queue": "Billing"}}]}'
  return wrk.format("POST", "/v1/cases", headers, body)
end
"#;

/// pgbench's script: the same row, one per transaction, into a copy of
/// `cases` (its indexes and defaults, not its reference triggers).
fn pgbench_script_text(integration: &str, group: &str) -> String {
    format!(
        "INSERT INTO bench_cases (id, external_id, staff_id, integration_id, group_id, channel, status, priority, \
         occurred_at, data, created_at, updated_at) \
         VALUES (gen_random_uuid(), gen_random_uuid()::text, 'S-1', '{integration}', '{group}', 'live_hotline', \
         'open', 'high', '2026-11-20T14:05:00Z', {DATA}, now(), now());\n"
    )
}

/// The same row into a copy of `cases` that has its reference check, as
/// the server writes one case: the statement checks and locks the staff
/// member, group and integration itself and marks its transaction, so the
/// copy's statement trigger (gated as `cases`' is, migration 0011) skips
/// its own check. Run prepared, as the server's statements are.
fn pgbench_checked_script_text(integration: &str, group: &str) -> String {
    format!(
        "INSERT INTO bench_cases_checked (id, external_id, staff_id, integration_id, group_id, channel, status, \
         priority, occurred_at, data, created_at, updated_at) \
         SELECT v.* FROM (VALUES (gen_random_uuid(), gen_random_uuid()::text, 'S-1', '{integration}'::uuid, \
         '{group}'::uuid, 'live_hotline', 'open', 'high', '2026-11-20T14:05:00Z'::timestamptz, {DATA}::json, now(), now())) \
         AS v (id, external_id, staff_id, integration_id, group_id, channel, status, priority, occurred_at, data, \
         created_at, updated_at) \
         JOIN staff s ON s.staff_id = v.staff_id JOIN groups g ON g.id = v.group_id \
         JOIN integrations i ON i.id = v.integration_id \
         WHERE set_config('intake.references_checked', 'on', true) IS NOT NULL FOR KEY SHARE OF s, g, i;\n"
    )
}

const DATA: &str = r#"'{"Duration": 312, "Caller": "+420 601 123 456", "Queue": "Billing"}'"#;

fn parse_wrk(output: &str) -> WrkFigures {
    let mut figures = WrkFigures::default();
    let millis = |value: &str| -> f64 {
        let value = value.trim();
        if let Some(us) = value.strip_suffix("us") {
            us.parse::<f64>().unwrap_or(0.0) / 1000.0
        } else if let Some(ms) = value.strip_suffix("ms") {
            ms.parse().unwrap_or(0.0)
        } else if let Some(s) = value.strip_suffix('s') {
            s.parse::<f64>().unwrap_or(0.0) * 1000.0
        } else {
            0.0
        }
    };
    for line in output.lines() {
        let line = line.trim();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("Requests/sec:") => {
                figures.requests_per_second =
                    words.next().and_then(|v| v.parse().ok()).unwrap_or(0.0)
            }
            Some("50%") => figures.p50_ms = millis(words.next().unwrap_or("")),
            Some("99%") => figures.p99_ms = millis(words.next().unwrap_or("")),
            Some("Non-2xx") => {
                figures.failed += line
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            }
            Some("Socket") => {
                // Socket errors: connect 0, read 0, write 0, timeout 0
                for part in line.split(',') {
                    figures.failed += part
                        .rsplit(' ')
                        .next()
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
            _ if line.contains("requests in") => {
                figures.requests = line
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            }
            _ => {}
        }
    }
    figures
}

/// Runs wrk with `connections` for `seconds` against `base`.
fn wrk(
    base: &str,
    token: &str,
    tag: &str,
    connections: usize,
    seconds: u64,
    script: &std::path::Path,
) -> anyhow::Result<(WrkFigures, String)> {
    let output = Command::new("wrk")
        .arg("-t2")
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--timeout")
        .arg("5s")
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(format!("{base}/v1/cases"))
        .arg("--")
        .arg(token)
        .arg(tag)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    Ok((parse_wrk(&text), text))
}

/// pgbench's rate, and its p50 and p99 latency in ms (from its
/// per-transaction log), for `clients` over `seconds` (`prepared`:
/// `-M prepared`, else pgbench's default, the simple protocol).
fn pgbench(
    url: &str,
    clients: usize,
    seconds: u64,
    script: &std::path::Path,
    prepared: bool,
) -> anyhow::Result<(f64, f64, f64)> {
    let logs = tempfile::tempdir()?;
    let mut command = Command::new("pgbench");
    if prepared {
        command.arg("-Mprepared");
    }
    let output = command
        .arg("-n")
        .arg(format!("-c{clients}"))
        .arg("-j2")
        .arg(format!("-T{seconds}"))
        .arg("-l")
        .arg(format!("--log-prefix={}", logs.path().join("tx").display()))
        .arg("-f")
        .arg(script)
        .arg(url)
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed: {}{}",
        text,
        String::from_utf8_lossy(&output.stderr)
    );
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    // One line per transaction: client, transaction, elapsed µs, …
    let mut micros: Vec<u64> = Vec::new();
    for entry in std::fs::read_dir(logs.path())? {
        let log = std::fs::read_to_string(entry?.path())?;
        micros.extend(
            log.lines()
                .filter_map(|l| l.split_whitespace().nth(2))
                .filter_map(|v| v.parse::<u64>().ok()),
        );
    }
    micros.sort_unstable();
    let percentile = |p: f64| {
        micros
            .get(((micros.len() as f64 * p) as usize).min(micros.len().saturating_sub(1)))
            .map_or(0.0, |&us| us as f64 / 1000.0)
    };
    Ok((tps, percentile(0.50), percentile(0.99)))
}

/// Starts a server with these settings on a runtime of its own; answers
/// its base URL and its state (to mint an admin token once its database is
/// as the run needs it).
async fn start(
    env: Vec<(&'static str, String)>,
) -> anyhow::Result<(String, actix_web::web::Data<intake::startup::AppState>)> {
    let settings = Settings::load_from(None, |k| {
        env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })?;
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    Ok((base, state))
}

/// An admin token, recorded in the server's database.
async fn admin_token(state: &intake::startup::AppState) -> anyhow::Result<String> {
    let (token, _) = intake::auth::tokens::mint_admin_token(
        &state.store,
        &state.jwt,
        Duration::from_secs(7200),
        state.settings.admin_token_max_ttl,
    )
    .await?;
    Ok(token)
}

fn case(i: usize) -> Value {
    json!({"external_id": format!("BULK-{i}"), "staff_id": format!("S-{}", i % 10), "channel": "live_hotline",
           "priority": "medium", "occurred_at": "2026-11-20T14:05:00Z",
           "data": {"Duration": i, "Caller": "+420 601 123 456", "Queue": "Billing", "Notes": "lorem ipsum dolor sit amet"}})
}

/// 32 single-case clients while one request of `rows` cases runs: the
/// singles' figures and the bulk request's seconds.
async fn mixed(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    tag: &str,
    rows: usize,
    script: &std::path::Path,
) -> anyhow::Result<(WrkFigures, f64)> {
    let cases: Vec<Value> = (0..rows).map(case).collect();
    let body = serde_json::to_vec(&json!({"cases": cases}))?;
    let (base_owned, token_owned, tag_owned, script_owned) = (
        base.to_string(),
        token.to_string(),
        tag.to_string(),
        script.to_path_buf(),
    );
    // wrk for 6 s; the bulk request starts 1 s in.
    let singles = std::thread::spawn(move || {
        wrk(&base_owned, &token_owned, &tag_owned, 32, 6, &script_owned)
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let response = http
        .post(format!("{base}/v1/cases"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let _ = response.bytes().await?;
    let took = started.elapsed().as_secs_f64();
    anyhow::ensure!(status == 201, "the bulk request answered {status}");
    let (figures, _) = singles
        .join()
        .map_err(|_| anyhow::anyhow!("wrk thread"))??;
    Ok((figures, took))
}

fn print_row(label: &str, figures: &WrkFigures, reference: Option<f64>, groups: Groups) {
    println!(
        "{label:<34} {:>9.0} {:>9.1} {:>9.1} {:>9} {:>8} {:>7}",
        figures.requests_per_second,
        figures.p50_ms,
        figures.p99_ms,
        figures.failed,
        reference
            .filter(|r| *r > 0.0)
            .map(|r| format!("{:.2}", figures.requests_per_second / r))
            .unwrap_or_default(),
        groups.mean()
    );
}

/// The server's group commit over one run: how many single-case requests
/// one `INSERT` wrote, on average.
#[derive(Clone, Copy)]
struct Groups {
    before: GroupedWrites,
    after: GroupedWrites,
}

impl Groups {
    fn since(state: &intake::startup::AppState, before: GroupedWrites) -> Groups {
        Groups {
            before,
            after: written(state),
        }
    }

    fn mean(self) -> String {
        let groups = self.after.groups - self.before.groups;
        let requests = self.after.requests - self.before.requests;
        if groups == 0 {
            return String::new();
        }
        format!("{:.1}", requests as f64 / groups as f64)
    }
}

fn written(state: &intake::startup::AppState) -> GroupedWrites {
    state.store.grouped_inserts().written()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    for tool in ["wrk", "pgbench"] {
        if Command::new(tool).arg("--version").output().is_err() {
            anyhow::bail!(
                "{tool} is not installed (Debian: apt-get install wrk postgresql-client)"
            );
        }
    }
    let seconds: u64 = std::env::var("INTAKE_LOAD_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let connections: Vec<usize> = std::env::var("INTAKE_LOAD_CONNECTIONS")
        .unwrap_or_else(|_| "8,32,256".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let pool = std::env::var("INTAKE_LOAD_POOL").unwrap_or_else(|_| "20".into());
    let url = common::bench_database("intake_load").await?;
    let scratch = tempfile::tempdir()?;
    let wrk_script = scratch.path().join("single.lua");
    std::fs::File::create(&wrk_script)?.write_all(WRK_SCRIPT.as_bytes())?;
    let secret = "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz".to_string();
    intake::install_tls_provider();
    let http = reqwest::Client::new();

    // PostgreSQL.
    let pg_dir = tempfile::tempdir()?;
    let (pg_base, pg_state) = start(vec![
        ("INTAKE_BIND", "127.0.0.1:0".into()),
        ("INTAKE_DATA_DIR", pg_dir.path().display().to_string()),
        ("INTAKE_DATABASE_URL", url.clone()),
        ("INTAKE_DATABASE_MAX_CONNECTIONS", pool.clone()),
        ("INTAKE_JWT_SECRET", secret.clone()),
        ("INTAKE_MAX_BODY_BYTES", "1GiB".into()),
        ("INTAKE_LOG", "warn".into()),
        // One caller sending as fast as it can: the rate limiter counts
        // every request (its cost is measured) but never refuses one.
        ("INTAKE_RATE_LIMIT_PER_SECOND", "1000000".into()),
        ("INTAKE_RATE_LIMIT_BURST", "1000000".into()),
    ])
    .await?;
    let db = sqlx::PgPool::connect(&url).await?;
    sqlx::query("TRUNCATE cases, case_lists, tokens, integration_groups, integrations, staff, teams, campaigns, groups CASCADE")
        .execute(&db)
        .await?;
    for statement in [
        "DROP TABLE IF EXISTS bench_cases",
        "DROP TABLE IF EXISTS bench_cases_checked",
        "CREATE TABLE bench_cases (LIKE cases INCLUDING ALL)",
        // The same copy with the reference check `cases` has (its
        // statement trigger): the database's own rate for what each
        // single-case request makes it do.
        "CREATE TABLE bench_cases_checked (LIKE cases INCLUDING ALL)",
        "CREATE TRIGGER bench_cases_references AFTER INSERT ON bench_cases_checked \
         REFERENCING NEW TABLE AS new_cases FOR EACH STATEMENT \
         WHEN (current_setting('intake.references_checked', true) IS DISTINCT FROM 'on') \
         EXECUTE FUNCTION cases_check_references()",
    ] {
        sqlx::query(statement).execute(&db).await?;
    }
    // Minted once the tables are emptied (the token is recorded in them).
    let pg_admin = admin_token(&pg_state).await?;
    let (pg_group, pg_integration, pg_token) =
        common::setup(&http, &pg_base, &pg_admin, &["cases:write"]).await?;
    let pgbench_script = scratch.path().join("insert.sql");
    std::fs::File::create(&pgbench_script)?
        .write_all(pgbench_script_text(&pg_integration, &pg_group).as_bytes())?;
    let pgbench_checked_script = scratch.path().join("insert_checked.sql");
    std::fs::File::create(&pgbench_checked_script)?
        .write_all(pgbench_checked_script_text(&pg_integration, &pg_group).as_bytes())?;

    // SQLite (the embedded default).
    let sqlite_dir = tempfile::tempdir()?;
    let (sqlite_base, sqlite_state) = start(vec![
        ("INTAKE_BIND", "127.0.0.1:0".into()),
        ("INTAKE_DATA_DIR", sqlite_dir.path().display().to_string()),
        ("INTAKE_DATABASE_MAX_CONNECTIONS", pool.clone()),
        ("INTAKE_JWT_SECRET", secret.clone()),
        ("INTAKE_MAX_BODY_BYTES", "1GiB".into()),
        ("INTAKE_LOG", "warn".into()),
        // One caller sending as fast as it can: the rate limiter counts
        // every request (its cost is measured) but never refuses one.
        ("INTAKE_RATE_LIMIT_PER_SECOND", "1000000".into()),
        ("INTAKE_RATE_LIMIT_BURST", "1000000".into()),
    ])
    .await?;
    let sqlite_admin = admin_token(&sqlite_state).await?;
    let (_, _, sqlite_token) =
        common::setup(&http, &sqlite_base, &sqlite_admin, &["cases:write"]).await?;

    println!(
        "single-case POST /v1/cases, wrk -t2, {seconds} s per run, {pool} database connections; \
         pgbench -j2 single-row INSERT beside it"
    );
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7}",
        "", "req/s", "p50 ms", "p99 ms", "failed", "×pgbench", "group"
    );
    // pgbench opens one server connection per client: at most what the
    // server allows, less a margin for the app's own pools.
    let (max_connections,): (String,) = sqlx::query_as("SHOW max_connections")
        .fetch_one(&db)
        .await?;
    let pgbench_limit = max_connections
        .parse::<usize>()
        .unwrap_or(100)
        .saturating_sub(50)
        .max(1);
    // Each server's pools connect lazily, and its caches fill on first
    // use: 2 s of requests first, not reported, so that the first measured
    // run does not carry the start-up (connections opened, statements
    // prepared).
    wrk(&pg_base, &pg_token, "warm", 8, 2, &wrk_script)?;
    wrk(&sqlite_base, &sqlite_token, "warm", 8, 2, &wrk_script)?;
    let mut raw = String::new();
    for &c in &connections {
        sqlx::query("CHECKPOINT").execute(&db).await?;
        let clients = c.min(pgbench_limit);
        let (tps, p50, p99) = pgbench(&url, clients, seconds, &pgbench_script, false)?;
        println!(
            "{:<34} {:>9.0} {:>9} {:>9} {:>9} {:>8}",
            format!("pgbench INSERT, {clients} clients"),
            tps,
            format!("{p50:.1}"),
            format!("{p99:.1}"),
            "",
            ""
        );
        sqlx::query("CHECKPOINT").execute(&db).await?;
        let (checked_tps, checked_p50, checked_p99) =
            pgbench(&url, clients, seconds, &pgbench_checked_script, true)?;
        println!(
            "{:<34} {:>9.0} {:>9} {:>9} {:>9} {:>8}",
            format!("pgbench INSERT + check, {clients} cl."),
            checked_tps,
            format!("{checked_p50:.1}"),
            format!("{checked_p99:.1}"),
            "",
            ""
        );
        sqlx::query("CHECKPOINT").execute(&db).await?;
        let before = written(&pg_state);
        let (figures, text) = wrk(
            &pg_base,
            &pg_token,
            &format!("pg{c}"),
            c,
            seconds,
            &wrk_script,
        )?;
        raw.push_str(&text);
        print_row(
            &format!("PostgreSQL, {c} connections"),
            &figures,
            Some(tps),
            Groups::since(&pg_state, before),
        );
        if checked_tps > 0.0 {
            println!(
                "{:<34} {:>48.2}",
                "  × pgbench INSERT + check",
                figures.requests_per_second / checked_tps
            );
        }
        let before = written(&sqlite_state);
        let (figures, text) = wrk(
            &sqlite_base,
            &sqlite_token,
            &format!("sq{c}"),
            c,
            seconds,
            &wrk_script,
        )?;
        raw.push_str(&text);
        print_row(
            &format!("SQLite, {c} connections"),
            &figures,
            None,
            Groups::since(&sqlite_state, before),
        );
    }

    let rows: usize = std::env::var("INTAKE_LOAD_BULK_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    println!("\nmixed: 32 single-case connections while one request of {rows} cases runs");
    sqlx::query("CHECKPOINT").execute(&db).await?;
    let before = written(&pg_state);
    let (figures, took) = mixed(&http, &pg_base, &pg_token, "pgmix", rows, &wrk_script).await?;
    print_row(
        &format!("PostgreSQL (bulk took {took:.1} s)"),
        &figures,
        None,
        Groups::since(&pg_state, before),
    );
    let before = written(&sqlite_state);
    let (figures, took) = mixed(
        &http,
        &sqlite_base,
        &sqlite_token,
        "sqmix",
        rows,
        &wrk_script,
    )
    .await?;
    print_row(
        &format!("SQLite (bulk took {took:.1} s)"),
        &figures,
        None,
        Groups::since(&sqlite_state, before),
    );
    if std::env::var("INTAKE_LOAD_VERBOSE").is_ok() {
        println!("{raw}");
    }
    Ok(())
}
