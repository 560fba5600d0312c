//! Import jobs benchmark: 1,000,000 cases from a CSV file and from an XLSX
//! workbook through `POST /v1/imports` (check, then confirm → completed),
//! beside the same rows sent as one NDJSON stream to `POST /v1/cases` (the
//! JSON bulk path), in the same run, against PostgreSQL. Prints each
//! path's rate and the server's peak RSS; asserts nothing.
//!
//!     cargo bench --bench imports
//!
//! The server is the release binary in a process of its own, so that its
//! peak RSS (`VmHWM`, reset before each path through
//! `/proc/PID/clear_refs`) is the server's alone. Needs PostgreSQL
//! (INTAKE_BENCH_DATABASE_URL, default
//! postgres://postgres@127.0.0.1:5432/intake_bench, created if missing; its
//! tables are emptied). INTAKE_BENCH_IMPORT_ROWS (default 1000000) sets
//! the rows; INTAKE_BENCH_ROUNDS (default 3) the rounds, the paths
//! interleaved in each. The files are
//! generated once into the system's temporary folder and kept for later
//! runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use serde_json::Value;

/// The columns every path sends: the three required ones, the known
/// optional ones, and ten custom columns (one unique a row, the others
/// taking one of 50 values each, as a spreadsheet's columns mostly do).
const HEADER: [&str; 15] = [
    "Staff ID",
    "External Staff ID",
    "Case ID",
    "Channel",
    "Priority",
    "field_0",
    "field_1",
    "field_2",
    "field_3",
    "field_4",
    "field_5",
    "field_6",
    "field_7",
    "field_8",
    "field_9",
];

/// Row `i`'s cells, in `HEADER`'s order.
fn cells(i: usize) -> Vec<String> {
    let mut cells = vec![
        format!("S-{}", i % 10),
        String::new(),
        format!("B-{i}"),
        "live_hotline".to_string(),
        "medium".to_string(),
        format!("comment {i} lorem ipsum dolor"),
    ];
    for f in 1..10 {
        cells.push(format!("option {} of field {f}", (i * 7 + f) % 50));
    }
    cells
}

/// Row `i` as the JSON bulk path takes it.
fn case_json(i: usize) -> Value {
    let cells = cells(i);
    let data: serde_json::Map<String, Value> = HEADER[5..]
        .iter()
        .zip(&cells[5..])
        .map(|(h, c)| (h.to_string(), Value::String(c.clone())))
        .collect();
    serde_json::json!({"external_id": cells[2], "staff_id": cells[0], "channel": cells[3],
        "priority": cells[4], "data": data})
}

fn write_csv(path: &Path, rows: usize) -> anyhow::Result<()> {
    let mut out = csv::Writer::from_writer(std::io::BufWriter::new(std::fs::File::create(path)?));
    out.write_record(HEADER)?;
    for i in 0..rows {
        out.write_record(cells(i))?;
    }
    out.flush()?;
    Ok(())
}

/// A workbook as spreadsheet programs write them (text in the shared
/// strings table).
fn write_xlsx(path: &Path, rows: usize) -> anyhow::Result<()> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in HEADER.iter().enumerate() {
        sheet.write_string(0, c as u16, *h)?;
    }
    for i in 0..rows {
        for (c, cell) in cells(i).iter().enumerate() {
            if !cell.is_empty() {
                sheet.write_string(i as u32 + 1, c as u16, cell)?;
            }
        }
    }
    book.save(path)?;
    Ok(())
}

/// The file for `rows` rows, generated unless an earlier run left it.
fn file(rows: usize, extension: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("intake-bench-cases-{rows}.{extension}"));
    if !path.exists() {
        let started = Instant::now();
        let partial = path.with_extension(format!("{extension}.partial"));
        match extension {
            "csv" => write_csv(&partial, rows)?,
            _ => write_xlsx(&partial, rows)?,
        }
        std::fs::rename(&partial, &path)?;
        eprintln!(
            "generated {} in {:.1} s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(path)
}

/// The server process.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resets the process's peak RSS to its current RSS.
    fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
    }

    /// The peak RSS since the last reset, in MB.
    fn peak_mb(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_up(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the server did not start")
}

/// One path's figures in one round.
#[derive(Default, Clone, Copy)]
struct Figures {
    /// Rows a second written (confirm → completed for a job).
    rate: f64,
    /// Seconds to upload and check a job's file (staged, nothing written).
    check_secs: f64,
    peak_mb: f64,
}

async fn ndjson(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
    rows: usize,
) -> anyhow::Result<Figures> {
    // Generated as it is sent, 2,000 lines a chunk.
    let chunks = futures_util::stream::iter((0..rows).step_by(2_000).map(move |start| {
        let mut chunk = Vec::with_capacity(2_000 * 400);
        for i in start..(start + 2_000).min(rows) {
            serde_json::to_writer(&mut chunk, &case_json(i)).expect("json");
            chunk.push(b'\n');
        }
        Ok::<_, std::io::Error>(chunk)
    }));
    server.reset_peak();
    let started = Instant::now();
    let response = http
        .post(format!("{}/v1/cases", server.base))
        .bearer_auth(token)
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    let took = started.elapsed();
    anyhow::ensure!(status.is_success(), "NDJSON: {status} {answer}");
    anyhow::ensure!(
        answer["created"].as_u64() == Some(rows as u64),
        "NDJSON: {answer}"
    );
    Ok(Figures {
        rate: rows as f64 / took.as_secs_f64(),
        check_secs: 0.0,
        peak_mb: server.peak_mb(),
    })
}

async fn job(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
    path: &Path,
    rows: usize,
) -> anyhow::Result<Figures> {
    let base = &server.base;
    server.reset_peak();
    let started = Instant::now();
    let file = tokio::fs::File::open(path).await?;
    let length = file.metadata().await?.len();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let part = reqwest::multipart::Part::stream_with_length(
        reqwest::Body::wrap_stream(tokio_util_like::stream(file)),
        length,
    )
    .file_name(name);
    let form = reqwest::multipart::Form::new()
        .text("kind", "cases")
        .part("file", part);
    let response = http
        .post(format!("{base}/v1/imports"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await?;
    let status = response.status();
    let job: Value = response.json().await?;
    anyhow::ensure!(status.as_u16() == 201, "upload: {status} {job}");
    anyhow::ensure!(job["total"].as_u64() == Some(rows as u64), "upload: {job}");
    anyhow::ensure!(
        job["problems"]["failed_rows"].as_u64() == Some(0),
        "upload: {}",
        job["problems"]
    );
    let check_secs = started.elapsed().as_secs_f64();
    let id = job["id"].as_str().unwrap_or_default().to_string();
    let confirmed = Instant::now();
    let response = http
        .post(format!("{base}/v1/imports/{id}/confirm"))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(response.status().as_u16() == 202, "confirm: {response:?}");
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let job: Value = http
            .get(format!("{base}/v1/imports/{id}"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        match job["state"].as_str() {
            Some("running") => continue,
            Some("completed") => {
                anyhow::ensure!(job["succeeded"].as_u64() == Some(rows as u64), "job: {job}");
                break;
            }
            _ => anyhow::bail!("job: {job}"),
        }
    }
    let took = confirmed.elapsed();
    Ok(Figures {
        rate: rows as f64 / took.as_secs_f64(),
        check_secs,
        peak_mb: server.peak_mb(),
    })
}

/// A file read as a stream of chunks (what `tokio-util`'s `ReaderStream`
/// does, without the dependency).
mod tokio_util_like {
    use tokio::io::AsyncReadExt;

    pub fn stream(
        file: tokio::fs::File,
    ) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> {
        futures_util::stream::unfold(Some(file), |file| async move {
            let mut file = file?;
            let mut chunk = vec![0u8; 256 * 1024];
            match file.read(&mut chunk).await {
                Ok(0) => None,
                Ok(n) => {
                    chunk.truncate(n);
                    Some((Ok(chunk), Some(file)))
                }
                Err(e) => Some((Err(e), None)),
            }
        })
    }
}

async fn empty(db: &sqlx::PgPool) -> anyhow::Result<()> {
    sqlx::query("TRUNCATE cases, case_lists, import_rows, import_failures, import_jobs")
        .execute(db)
        .await?;
    sqlx::query("CHECKPOINT").execute(db).await?;
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    intake::install_tls_provider();
    let number = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rows = number("INTAKE_BENCH_IMPORT_ROWS", 1_000_000);
    let rounds = number("INTAKE_BENCH_ROUNDS", 3).max(1);
    let url = common::bench_database("intake_bench").await?;
    let csv_path = file(rows, "csv")?;
    let xlsx_path = file(rows, "xlsx")?;

    let data_dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let env: Vec<(&str, String)> = vec![
        ("INTAKE_BIND", format!("127.0.0.1:{port}")),
        ("INTAKE_DATA_DIR", data_dir.path().display().to_string()),
        ("INTAKE_DATABASE_URL", url.clone()),
        (
            "INTAKE_JWT_SECRET",
            "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz".into(),
        ),
        ("INTAKE_LOG", "warn".into()),
        ("INTAKE_IMPORT_MAX_BYTES", "2GiB".into()),
        ("INTAKE_RATE_LIMIT_PER_SECOND", "1000000".into()),
        ("INTAKE_RATE_LIMIT_BURST", "1000000".into()),
    ];
    let binary = env!("CARGO_BIN_EXE_intake");
    let migrated = Command::new(binary)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .arg("migrate")
        .status()?;
    anyhow::ensure!(migrated.success(), "intake migrate failed");
    let db = sqlx::PgPool::connect(&url).await?;
    sqlx::query(
        "TRUNCATE cases, case_lists, import_rows, import_failures, import_jobs, tokens, \
         integration_groups, integrations, staff, teams, campaigns, groups CASCADE",
    )
    .execute(&db)
    .await?;
    let token = Command::new(binary)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["token", "--admin"])
        .stderr(Stdio::null())
        .output()?;
    let admin_token = String::from_utf8(token.stdout)?.trim().to_string();
    let child = Command::new(binary)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .arg("serve")
        .stdout(Stdio::null())
        .spawn()?;
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3_600))
        .build()?;
    wait_up(&http, &server.base).await?;
    let (_, _, token) = common::setup(
        &http,
        &server.base,
        &admin_token,
        &["cases:write", "imports:write", "imports:read"],
    )
    .await?;

    println!(
        "{rows} cases, 15 columns; CSV {:.0} MB, XLSX {:.0} MB; {rounds} rounds, median reported",
        std::fs::metadata(&csv_path)?.len() as f64 / 1e6,
        std::fs::metadata(&xlsx_path)?.len() as f64 / 1e6
    );
    let mut figures: Vec<(&str, Vec<Figures>)> = vec![
        ("NDJSON stream", vec![]),
        ("CSV job", vec![]),
        ("XLSX job", vec![]),
    ];
    for round in 0..rounds {
        for (path, results) in figures.iter_mut() {
            empty(&db).await?;
            let result = match *path {
                "NDJSON stream" => ndjson(&http, &server, &token, rows).await?,
                "CSV job" => job(&http, &server, &token, &csv_path, rows).await?,
                _ => job(&http, &server, &token, &xlsx_path, rows).await?,
            };
            eprintln!(
                "round {}: {path}: {:.0} rows/s, check {:.2} s, peak RSS {:.0} MB",
                round + 1,
                result.rate,
                result.check_secs,
                result.peak_mb
            );
            results.push(result);
        }
    }
    let reference = median(&figures[0].1.iter().map(|f| f.rate).collect::<Vec<_>>());
    let csv_check = median(
        &figures[1]
            .1
            .iter()
            .map(|f| f.check_secs)
            .collect::<Vec<_>>(),
    );
    println!(
        "{:<16} {:>12} {:>10} {:>12} {:>14} {:>14}",
        "path", "rows/s", "× NDJSON", "check s", "× CSV check", "max peak MB"
    );
    for (path, results) in &figures {
        let rate = median(&results.iter().map(|f| f.rate).collect::<Vec<_>>());
        let check = median(&results.iter().map(|f| f.check_secs).collect::<Vec<_>>());
        let peak = results.iter().map(|f| f.peak_mb).fold(0.0, f64::max);
        let (check, check_ratio) = if check > 0.0 {
            (format!("{check:.2}"), format!("{:.2}", check / csv_check))
        } else {
            ("-".into(), "-".into())
        };
        println!(
            "{path:<16} {rate:>12.0} {:>10.2} {check:>12} {check_ratio:>14} {peak:>14.0}",
            rate / reference
        );
    }
    std::io::stdout().flush()?;
    Ok(())
}
