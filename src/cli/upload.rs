//! `intake upload`: a partner's command-line uploader for import jobs.
//!
//! The file is streamed from disk to `POST /v1/imports` (a progress bar of
//! bytes), the check's answer printed for a person (rows, the first rows,
//! the problems by line and column), the job confirmed on the terminal's
//! answer or `--yes` (cancelled on a no), followed through its Server-Sent
//! Events (a progress bar of rows), and its failed rows downloaded as CSV to
//! fix and upload again.
//!
//! Progress bars and the question go to stderr (the bars only when it is a
//! terminal); the check's report and the final summary go to stdout, the
//! errors to stderr, one line each. The exit codes are in [`exit`].

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The exit codes of `intake upload` (listed in its `--help` and the README).
pub mod exit {
    /// Imported, and no row failed.
    pub const DONE: u8 = 0;
    /// An error (the message says which). A job that stopped midway keeps
    /// the rows it wrote (the summary counts them).
    pub const ERROR: u8 = 1;
    /// 2 is clap's: the command line is wrong.
    pub const USAGE: u8 = 2;
    /// Imported, but some rows failed: they are in the errors file.
    pub const FAILED_ROWS: u8 = 3;
    /// Nothing imported: not confirmed (no terminal to ask on and no
    /// `--yes`: the job waits for its confirmation), or answered no (the job
    /// is cancelled).
    pub const NOT_CONFIRMED: u8 = 4;
}

/// The exit codes and an example, after `intake upload --help`.
const AFTER_HELP: &str = "\
Exit codes:
  0  imported, and no row failed
  1  an error (the message says which); a job that stopped midway keeps the
     rows it wrote (the summary counts them)
  2  the command line is wrong
  3  imported, but some rows failed: they are in the errors file (--errors-file)
  4  nothing imported: not confirmed (no terminal to ask on and no --yes: the
     job waits for its confirmation) or answered no (the job is cancelled)

Example:
  export INTAKE_URL=https://intake.example.com INTAKE_TOKEN=eyJ...
  intake upload november.csv --kind cases --list-name November --assign-group 019a8c20-...";

/// How many rows of the preview are shown, and how wide the table gets.
const PREVIEW_ROWS: usize = 5;
const TABLE_WIDTH: usize = 100;
const CELL_CHARS: usize = 20;

/// How many problems (and warnings) are listed; the rest are counted.
const LISTED_PROBLEMS: usize = 20;

/// How many of a refused file's errors are listed.
const LISTED_REFUSALS: usize = 10;

/// How much of the file is read and sent at a time.
const CHUNK_BYTES: usize = 64 * 1024;

/// The server sends a comment every 15 s on a quiet stream of events: this
/// long without a byte, the connection is taken for lost.
const EVENTS_IDLE: Duration = Duration::from_secs(60);

/// Reconnections to a job's events in a row before giving up.
const EVENTS_RETRIES: u32 = 5;

/// What the file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Cases,
    Customers,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Cases => "cases",
            Kind::Customers => "customers",
        }
    }
}

/// `intake upload`'s arguments.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct UploadArgs {
    /// The file: CSV (UTF-8, UTF-16 or Windows-1252; `,` or `;`), XLSX or XLS.
    pub file: PathBuf,
    /// What the file holds.
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// A workbook's sheet, by name (the first sheet by default).
    #[arg(long)]
    pub sheet: Option<String>,

    /// A new list for the cases, with one of --assign-group, --assign-team,
    /// --assign-evaluator.
    #[arg(long, help_heading = "Cases")]
    pub list_name: Option<String>,
    /// The list's group (its id).
    #[arg(long, help_heading = "Cases", value_name = "ID")]
    pub assign_group: Option<String>,
    /// The list's team (its id).
    #[arg(long, help_heading = "Cases", value_name = "ID")]
    pub assign_team: Option<String>,
    /// The list's evaluator (their staff id).
    #[arg(long, help_heading = "Cases", value_name = "STAFF_ID")]
    pub assign_evaluator: Option<String>,

    /// The campaign the customers go into (its id).
    #[arg(long, help_heading = "Customers", value_name = "ID")]
    pub campaign_id: Option<String>,
    /// The status of the customers.
    #[arg(long, help_heading = "Customers")]
    pub status: Option<String>,
    /// Which field each column is, as a JSON object of header → field
    /// (e.g. '{"Mobile": "phone"}'; by default the headers are matched by
    /// name).
    #[arg(long, help_heading = "Customers", value_name = "JSON")]
    pub mapping: Option<String>,
    /// Phone numbers are in international format.
    #[arg(long, help_heading = "Customers", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub international_format: Option<bool>,
    /// Update customers the campaign already has.
    #[arg(long, help_heading = "Customers", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub override_existing: Option<bool>,
    /// Allow calling the customers again: clear a do-not-call block and set
    /// the time contact was allowed (new and existing customers).
    #[arg(long, help_heading = "Customers", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub update_contact_allowed: Option<bool>,
    /// Set existing customers' status to the upload's status (--status).
    #[arg(long, help_heading = "Customers", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub reset_status: Option<bool>,
    /// What to do with a phone other campaigns hold.
    #[arg(long, help_heading = "Customers", value_name = "MODE",
          value_parser = ["allow", "move", "skip_if_elsewhere"])]
    pub unique_mode: Option<String>,
    /// How the file's dates are written (default DD-MM-YYYY HH:MM).
    #[arg(long, help_heading = "Customers")]
    pub date_format: Option<String>,
    /// The time zone of the file's dates (default: the campaign's).
    #[arg(long, help_heading = "Customers", value_name = "ZONE")]
    pub timezone: Option<String>,

    /// The intake server.
    #[arg(long, env = "INTAKE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Your integration's token (with the scope imports:write).
    #[arg(long, env = "INTAKE_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Import without asking (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Where the failed rows are written (default: <file's name>-errors.csv
    /// in the current directory).
    #[arg(long, value_name = "PATH")]
    pub errors_file: Option<PathBuf>,
}

impl UploadArgs {
    /// The form's fields: only those given, checked against the kind.
    fn form_fields(&self) -> anyhow::Result<Vec<(&'static str, String)>> {
        let flag = |value: Option<bool>| value.map(|b| b.to_string());
        let cases = [
            ("list_name", self.list_name.clone()),
            ("assign_group", self.assign_group.clone()),
            ("assign_team", self.assign_team.clone()),
            ("assign_evaluator", self.assign_evaluator.clone()),
        ];
        let customers = [
            ("campaign_id", self.campaign_id.clone()),
            ("status", self.status.clone()),
            ("mapping", self.mapping.clone()),
            ("international_format", flag(self.international_format)),
            ("override_existing", flag(self.override_existing)),
            ("update_contact_allowed", flag(self.update_contact_allowed)),
            ("reset_status", flag(self.reset_status)),
            ("unique_mode", self.unique_mode.clone()),
            ("date_format", self.date_format.clone()),
            ("timezone", self.timezone.clone()),
        ];
        // The options of the other kind are refused here, before the upload.
        let (mine, theirs) = match self.kind {
            Kind::Cases => (cases.to_vec(), customers.to_vec()),
            Kind::Customers => (customers.to_vec(), cases.to_vec()),
        };
        if let Some((name, _)) = theirs.iter().find(|(_, value)| value.is_some()) {
            bail!(
                "--{} is not an option of --kind {}",
                name.replace('_', "-"),
                self.kind.as_str()
            );
        }
        if let Some(mapping) = &self.mapping {
            match serde_json::from_str::<Value>(mapping) {
                Ok(Value::Object(_)) => {}
                Ok(_) => bail!("--mapping must be a JSON object of header → field"),
                Err(e) => bail!("--mapping is not JSON: {e}"),
            }
        }
        let mut fields = vec![("kind", self.kind.as_str().to_string())];
        if let Some(sheet) = &self.sheet {
            fields.push(("sheet", sheet.clone()));
        }
        fields.extend(
            mine.into_iter()
                .filter_map(|(name, value)| value.map(|v| (name, v))),
        );
        Ok(fields)
    }
}

/// Runs `intake upload`; its exit code.
pub fn run(args: UploadArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("intake: cannot start the runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match runtime.block_on(upload(&args)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Text from the server was cleaned where it came in.
            eprintln!("intake: {e:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}

async fn upload(args: &UploadArgs) -> anyhow::Result<u8> {
    let fields = args.form_fields()?;
    let server = Server::new(&args.url, &args.token)?;
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let metadata = file
        .metadata()
        .await
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    if !metadata.is_file() {
        bail!("{} is not a file", args.file.display());
    }
    let file_name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload".into());
    let errors_path = match &args.errors_file {
        Some(path) => path.clone(),
        None => default_errors_path(&args.file),
    };
    if same_file(&errors_path, &args.file) {
        bail!(
            "--errors-file {} is the file being uploaded: name another",
            errors_path.display()
        );
    }

    let job = server
        .create(file, metadata.len(), &file_name, fields)
        .await?;
    {
        let mut out = std::io::stdout().lock();
        report_check(&mut out, &file_name, &job)?;
        out.flush()?;
    }
    let importable = job.total.saturating_sub(job.problems.failed_rows);
    if importable == 0 {
        server.cancel(&job.id).await?;
        bail!(
            "nothing to import: every row has an error; fix the file and upload it again (job {} cancelled)",
            job.id
        );
    }

    if !args.yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "intake: not confirmed: there is no terminal to ask on and --yes was not given. \
                 Job {id} waits for its confirmation{until}: confirm it with \
                 `curl -X POST {url} -H \"Authorization: Bearer $INTAKE_TOKEN\"`, \
                 or upload the file again with --yes.",
                id = job.id,
                until = job
                    .expires_at
                    .as_deref()
                    .map(|at| format!(" until {at}"))
                    .unwrap_or_default(),
                url = server.url(&format!("/v1/imports/{}/confirm", job.id)),
            );
            return Ok(exit::NOT_CONFIRMED);
        }
        if !ask(format!("Import {}?", plural(importable, "row"))).await? {
            server.cancel(&job.id).await?;
            println!("Cancelled: nothing was imported (job {}).", job.id);
            return Ok(exit::NOT_CONFIRMED);
        }
    }

    let started = Instant::now();
    let running = server.confirm(&job.id).await?;
    let done = server.follow(&running).await?;
    let elapsed = started.elapsed();

    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "Job {} {} in {}:",
            done.id,
            done.state,
            human_duration(elapsed)
        )?;
        for (label, n) in [
            ("rows", done.total),
            ("succeeded", done.succeeded),
            ("skipped", done.skipped),
            ("failed", done.failed),
        ] {
            // Plain numbers, for scripts.
            writeln!(out, "  {:<10} {n}", format!("{label}:"))?;
        }
        out.flush()?;
    }
    if done.failed > 0 {
        server.download_errors(&done.id, &errors_path).await?;
        let (rows, them) = if done.failed == 1 {
            ("row is", "it")
        } else {
            ("rows are", "them")
        };
        println!(
            "The failed {rows} in {path}, with what is wrong in the last column, \"error\": \
             fix {them} there and upload that file again \
             (`intake upload {path} --kind {kind}` with the same options).",
            path = errors_path.display(),
            kind = args.kind.as_str(),
        );
    }
    match done.state.as_str() {
        "completed" if done.failed > 0 => Ok(exit::FAILED_ROWS),
        "completed" => Ok(exit::DONE),
        state => Err(anyhow!(
            "the job {}{}: the rows counted above as succeeded are imported, the others are not",
            clean(state),
            done.error
                .as_deref()
                .map(|e| format!(" ({})", clean(e)))
                .unwrap_or_default()
        )),
    }
}

/// `<file stem>-errors.csv` in the current directory.
fn default_errors_path(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "import".into());
    PathBuf::from(format!("{stem}-errors.csv"))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Asks on the terminal; true on yes.
async fn ask(question: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
        let mut stderr = std::io::stderr();
        write!(stderr, "{question} [y/N] ")?;
        stderr.flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        Ok(matches!(
            answer.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    })
    .await?
}

/// An import job, as the server answers it (the fields shown here).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct Job {
    id: String,
    state: String,
    total: u64,
    processed: u64,
    succeeded: u64,
    skipped: u64,
    failed: u64,
    rows_per_second: Option<f64>,
    eta_seconds: Option<u64>,
    error: Option<String>,
    header: Vec<String>,
    preview: Vec<PreviewRow>,
    problems: Problems,
    expires_at: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct PreviewRow {
    line: u64,
    cells: serde_json::Map<String, Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct Problems {
    errors: Vec<Issue>,
    error_count: u64,
    failed_rows: u64,
    warnings: Vec<Issue>,
    warning_count: u64,
}

/// One problem: a field's, or a cell's by line and column.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct Issue {
    row: Option<u64>,
    column: Option<Value>,
    field: Option<String>,
    message: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let column = match &self.column {
            Some(Value::String(name)) => Some(name.clone()),
            Some(Value::Number(n)) => Some(format!("column {n}")),
            _ => self.field.clone(),
        };
        let at = match (self.row, column) {
            (Some(row), Some(column)) => format!("line {row}, {column}: "),
            (Some(row), None) => format!("line {row}: "),
            (None, Some(column)) => format!("{column}: "),
            (None, None) => String::new(),
        };
        write!(f, "{}", clean(&format!("{at}{}", self.message)))
    }
}

/// An error answer (application/problem+json).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Problem {
    code: String,
    detail: String,
    errors: Vec<Issue>,
}

/// Prints what the check found.
fn report_check(out: &mut impl Write, file_name: &str, job: &Job) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: {} checked, nothing imported yet (job {}).",
        clean(file_name),
        plural(job.total, "row"),
        job.id
    )?;
    if !job.preview.is_empty() {
        let shown = job.preview.len().min(PREVIEW_ROWS);
        writeln!(out, "\nThe first {} as read:", plural(shown as u64, "row"))?;
        for line in preview_table(&job.header, &job.preview[..shown]) {
            writeln!(out, "  {}", line.trim_end())?;
        }
    }
    let problems = &job.problems;
    if problems.error_count > 0 {
        writeln!(
            out,
            "\n{} in {} (not imported):",
            plural(problems.error_count, "error"),
            plural(problems.failed_rows, "row"),
        )?;
        list_issues(out, &problems.errors, problems.error_count)?;
    }
    if problems.warning_count > 0 {
        writeln!(
            out,
            "\n{} (the rows are imported):",
            plural(problems.warning_count, "warning"),
        )?;
        list_issues(out, &problems.warnings, problems.warning_count)?;
    }
    let importable = job.total.saturating_sub(problems.failed_rows);
    writeln!(
        out,
        "\n{} of {} can be imported.",
        count(importable),
        plural(job.total, "row")
    )
}

/// The first [`LISTED_PROBLEMS`], then how many more.
fn list_issues(out: &mut impl Write, issues: &[Issue], total: u64) -> std::io::Result<()> {
    for issue in issues.iter().take(LISTED_PROBLEMS) {
        writeln!(out, "  {issue}")?;
    }
    let listed = issues.len().min(LISTED_PROBLEMS) as u64;
    if total > listed {
        writeln!(out, "  … and {} more", count(total - listed))?;
    }
    Ok(())
}

/// The preview as a table: `line` then the file's columns, each cell cut
/// at [`CELL_CHARS`], as many columns as fit in [`TABLE_WIDTH`].
fn preview_table(header: &[String], preview: &[PreviewRow]) -> Vec<String> {
    let columns: Vec<String> = if header.is_empty() {
        preview
            .first()
            .map(|row| row.cells.keys().cloned().collect())
            .unwrap_or_default()
    } else {
        header.to_vec()
    };
    let mut table: Vec<Vec<String>> = Vec::with_capacity(preview.len() + 1);
    table.push(
        std::iter::once("line".to_string())
            .chain(columns.iter().map(|c| cut(c)))
            .collect(),
    );
    for row in preview {
        let cells = columns.iter().map(|column| match row.cells.get(column) {
            Some(Value::String(text)) => cut(text),
            Some(Value::Null) | None => String::new(),
            Some(other) => cut(&other.to_string()),
        });
        table.push(std::iter::once(row.line.to_string()).chain(cells).collect());
    }
    let widths: Vec<usize> = (0..=columns.len())
        .map(|i| {
            table
                .iter()
                .map(|row| row.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut shown = 0;
    let mut width = 0;
    for w in &widths {
        if shown > 1 && width + w > TABLE_WIDTH {
            break;
        }
        width += w + 2;
        shown += 1;
    }
    let hidden = widths.len() - shown;
    table
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut line = String::new();
            for (cell, w) in row.iter().zip(&widths).take(shown) {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
            }
            if hidden > 0 && i == 0 {
                line.push_str(&format!("(and {hidden} more columns)"));
            }
            line
        })
        .collect()
}

/// A cell for the table: on one line, at most [`CELL_CHARS`].
fn cut(text: &str) -> String {
    let text = clean(text);
    if text.chars().count() > CELL_CHARS {
        let head: String = text.chars().take(CELL_CHARS - 1).collect();
        format!("{head}…")
    } else {
        text
    }
}

/// Text from a file or the server, safe to print: control characters
/// (line breaks, tabs, a terminal's escape sequences) become spaces.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// 12345 → "12,345".
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "1 row", "2 rows", "1,000 errors".
fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", count(n))
    }
}

/// "0.4 s", "2 min 5 s", "1 h 3 min".
fn human_duration(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(60) {
        format!("{:.1} s", elapsed.as_secs_f64())
    } else {
        human_seconds(elapsed.as_secs())
    }
}

/// "12 s", "2 min 5 s", "1 h 3 min".
fn human_seconds(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// The intake server, called with the token.
struct Server {
    client: Client,
    base: String,
    token: String,
}

/// Why following a job's events stopped early.
enum Interrupted {
    /// The connection: worth reconnecting.
    Lost(String),
    /// The server's answer: final.
    Refused(anyhow::Error),
}

impl Server {
    fn new(url: &str, token: &str) -> anyhow::Result<Server> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| anyhow!("--url {url:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            bail!("--url {url:?} must start with https:// (or http://)");
        }
        if token.trim().is_empty() {
            bail!("no token: give it with --token or INTAKE_TOKEN");
        }
        crate::install_tls_provider();
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("intake-upload/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow!("cannot set up the HTTP client: {}", cause(&e)))?;
        Ok(Server {
            client,
            base: url.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends with the token: the answer if it is a success, else the
    /// error to show.
    async fn send(&self, request: RequestBuilder) -> Result<Response, Interrupted> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| Interrupted::Lost(self.unreachable(&e)))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(Interrupted::Refused(self.refusal(response).await))
        }
    }

    /// `send` for a request that is not retried.
    async fn call(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        self.send(request).await.map_err(|e| match e {
            Interrupted::Lost(message) => anyhow!(message),
            Interrupted::Refused(e) => e,
        })
    }

    fn unreachable(&self, e: &reqwest::Error) -> String {
        let why = cause(e);
        if why.contains("certificate") {
            format!(
                "the server at {} is not who it says it is, or its certificate is not trusted here ({why})",
                self.base
            )
        } else if e.is_connect() {
            format!(
                "cannot reach the server at {} ({why}): check --url (or INTAKE_URL) and your network",
                self.base
            )
        } else if e.is_timeout() {
            format!("the server at {} did not answer in time", self.base)
        } else {
            format!("the connection to {} failed: {why}", self.base)
        }
    }

    /// A refusal, in words for the partner.
    async fn refusal(&self, response: Response) -> anyhow::Error {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let problem: Problem = response.json().await.unwrap_or_default();
        let detail = if problem.detail.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("no reason given")
                .to_string()
        } else {
            clean(&problem.detail)
        };
        let message = match status {
            StatusCode::UNAUTHORIZED => format!(
                "the token was refused: it is invalid, expired or revoked ({detail}); \
                 ask your intake administrator for a new one with the scope imports:write"
            ),
            StatusCode::FORBIDDEN if problem.code == "insufficient_scope" => {
                "the token lacks the scope imports:write: ask your intake administrator \
                 for a token with it"
                    .to_string()
            }
            StatusCode::FORBIDDEN => format!("refused: {detail}"),
            StatusCode::PAYLOAD_TOO_LARGE => format!("the file is too large: {detail}"),
            StatusCode::NOT_FOUND
                if problem.code == "route_not_found" || problem.code.is_empty() =>
            {
                format!(
                    "{} has no import jobs: is --url an intake server?",
                    self.base
                )
            }
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => {
                let mut message = format!("the server refused the file: {detail}");
                // The first errors (a lone one the detail says already aside).
                let issues: Vec<&Issue> = problem
                    .errors
                    .iter()
                    .filter(|i| i.message != problem.detail)
                    .collect();
                for issue in issues.iter().take(LISTED_REFUSALS) {
                    message.push_str(&format!("\n  {issue}"));
                }
                if issues.len() > LISTED_REFUSALS {
                    message.push_str(&format!(
                        "\n  … and {} more",
                        issues.len() - LISTED_REFUSALS
                    ));
                }
                message
            }
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => format!(
                "the server is busy: {detail}{}",
                retry_after
                    .map(|s| format!(" (try again in {s} s)"))
                    .unwrap_or_default()
            ),
            _ => format!("the server answered {status}: {detail}"),
        };
        anyhow!(message)
    }

    /// Uploads the file, streamed from disk: the checked job.
    async fn create(
        &self,
        file: tokio::fs::File,
        size: u64,
        file_name: &str,
        fields: Vec<(&'static str, String)>,
    ) -> anyhow::Result<Job> {
        let bar = ProgressBar::new(size).with_style(style(
            "Uploading  [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ));
        let chunks =
            futures_util::stream::try_unfold((file, bar.clone()), |(mut file, bar)| async move {
                let mut chunk = vec![0; CHUNK_BYTES];
                let n = file.read(&mut chunk).await?;
                if n == 0 {
                    // Sent: the server reads and checks every row before it answers.
                    bar.set_style(style("{spinner} {msg} {elapsed}"));
                    bar.set_message("Checking the file on the server…");
                    bar.reset_elapsed();
                    bar.enable_steady_tick(Duration::from_millis(120));
                    return Ok::<_, std::io::Error>(None);
                }
                chunk.truncate(n);
                bar.inc(n as u64);
                Ok(Some((chunk, (file, bar))))
            });
        let mime = if file_name.to_ascii_lowercase().ends_with(".csv") {
            "text/csv"
        } else {
            "application/octet-stream"
        };
        let part = Part::stream_with_length(reqwest::Body::wrap_stream(chunks), size)
            .file_name(file_name.to_string())
            .mime_str(mime)?;
        let mut form = Form::new();
        for (name, value) in fields {
            form = form.text(name, value);
        }
        let form = form.part("file", part);
        let answer = self
            .send(self.client.post(self.url("/v1/imports")).multipart(form))
            .await;
        let sent = bar.position();
        bar.finish_and_clear();
        let response = match answer {
            Ok(response) => response,
            Err(Interrupted::Refused(e)) => return Err(e),
            Err(Interrupted::Lost(message)) if sent > 0 && sent < size => bail!(
                "the upload stopped at {} of {} bytes: {message} (a file larger than the server takes is cut off like this)",
                count(sent),
                count(size)
            ),
            Err(Interrupted::Lost(message)) => bail!(message),
        };
        response
            .json()
            .await
            .map_err(|e| anyhow!("the server's answer is not an import job: {e}"))
    }

    async fn confirm(&self, id: &str) -> anyhow::Result<Job> {
        let url = self.url(&format!("/v1/imports/{id}/confirm"));
        self.call(self.client.post(url))
            .await?
            .json()
            .await
            .map_err(|e| anyhow!("the server's answer is not an import job: {e}"))
    }

    async fn cancel(&self, id: &str) -> anyhow::Result<()> {
        let url = self.url(&format!("/v1/imports/{id}"));
        self.call(self.client.delete(url)).await.map(drop)
    }

    /// Follows the job's events until it has finished: its last state.
    async fn follow(&self, job: &Job) -> anyhow::Result<Job> {
        let bar = ProgressBar::new(job.total)
            .with_style(style("Importing  [{bar:30}] {human_pos}/{human_len} {msg}"));
        let mut retries = 0;
        let result = loop {
            let mut news = false;
            match self.events(&job.id, &bar, &mut news).await {
                Ok(Some(done)) => break Ok(done),
                Err(Interrupted::Refused(e)) => break Err(e),
                Ok(None) | Err(Interrupted::Lost(_)) if retries < EVENTS_RETRIES || news => {
                    retries = if news { 1 } else { retries + 1 };
                    tokio::time::sleep(Duration::from_secs(u64::from(retries))).await;
                }
                Ok(None) => break Err(self.lost(&job.id, "the server closed the stream")),
                Err(Interrupted::Lost(message)) => break Err(self.lost(&job.id, &message)),
            }
        };
        bar.finish_and_clear();
        result
    }

    fn lost(&self, id: &str, why: &str) -> anyhow::Error {
        anyhow!(
            "lost track of job {id} ({why}); it goes on on the server: see {}",
            self.url(&format!("/v1/imports/{id}"))
        )
    }

    /// One connection to the job's events: the finished job, `None` if the
    /// stream ended before it did. `news` is set on any event.
    async fn events(
        &self,
        id: &str,
        bar: &ProgressBar,
        news: &mut bool,
    ) -> Result<Option<Job>, Interrupted> {
        let url = self.url(&format!("/v1/imports/{id}/events"));
        let response = self
            .send(
                self.client
                    .get(url)
                    .header(reqwest::header::ACCEPT, "text/event-stream"),
            )
            .await?;
        let mut stream = response.bytes_stream();
        let mut events = EventParser::default();
        loop {
            let chunk = match tokio::time::timeout(EVENTS_IDLE, stream.next()).await {
                Err(_) => {
                    return Err(Interrupted::Lost(
                        "no news from the server for a minute".into(),
                    ));
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => return Err(Interrupted::Lost(self.unreachable(&e))),
                Ok(Some(Ok(chunk))) => chunk,
            };
            for event in events.push(&chunk) {
                let job: Job = serde_json::from_str(&event.data).map_err(|e| {
                    Interrupted::Refused(anyhow!("the server sent an event that is not a job: {e}"))
                })?;
                *news = true;
                bar.set_length(job.total);
                bar.set_position(job.processed);
                let mut progress = Vec::new();
                if let Some(rate) = job.rows_per_second.filter(|r| *r > 0.0) {
                    progress.push(format!("{} rows/s", count(rate.round() as u64)));
                }
                if let Some(eta) = job.eta_seconds {
                    progress.push(format!("{} left", human_seconds(eta)));
                }
                bar.set_message(progress.join(", "));
                if event.name == "end" {
                    return Ok(Some(job));
                }
            }
        }
    }

    /// Writes the job's failed rows to `path`, as they come.
    async fn download_errors(&self, id: &str, path: &Path) -> anyhow::Result<()> {
        let url = self.url(&format!("/v1/imports/{id}/errors.csv"));
        let response = self.call(self.client.get(url)).await?;
        let write = |e: std::io::Error| anyhow!("cannot write {}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(write)?;
        }
        let mut file = tokio::fs::File::create(path).await.map_err(write)?;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| anyhow!("{}", self.unreachable(&e)))?;
            file.write_all(&chunk).await.map_err(write)?;
        }
        file.flush().await.map_err(write)?;
        Ok(())
    }
}

/// The innermost cause of an HTTP error (the OS's words, mostly).
fn cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// One Server-Sent Event.
#[derive(Debug, PartialEq)]
struct Event {
    name: String,
    data: String,
}

/// Server-Sent Events from a stream of bytes, in whatever pieces they come.
#[derive(Default)]
struct EventParser {
    pending: Vec<u8>,
    name: Option<String>,
    data: Option<String>,
}

impl EventParser {
    /// The events completed by these bytes.
    fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if let Some(data) = self.data.take() {
                    events.push(Event {
                        name: self.name.take().unwrap_or_else(|| "message".into()),
                        data,
                    });
                }
                self.name = None;
                continue;
            }
            if line.starts_with(':') {
                continue; // a comment: keep-alive
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.name = Some(value.to_string()),
                "data" => match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                },
                _ => {}
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_across_pieces_and_comments_skipped() {
        let mut parser = EventParser::default();
        assert!(parser.push(b": keep-alive\n\nevent: imp").is_empty());
        let events = parser.push(b"ort\r\ndata: {\"a\":1}\r\n\r\nevent: end\ndata: {}\n\n");
        assert_eq!(
            events,
            vec![
                Event {
                    name: "import".into(),
                    data: "{\"a\":1}".into()
                },
                Event {
                    name: "end".into(),
                    data: "{}".into()
                },
            ]
        );
    }

    #[test]
    fn the_preview_is_a_table_of_cut_cells_and_the_columns_that_fit() {
        let row = |line, reason: &str| PreviewRow {
            line,
            cells: serde_json::from_value(serde_json::json!({
                "Case ID": "T-1", "Reason": reason, "Wide": "x".repeat(90)
            }))
            .unwrap_or_default(),
        };
        let header = vec!["Case ID".into(), "Reason".into(), "Wide".into()];
        let table = preview_table(
            &header,
            &[row(2, "Billing\nsecond line"), row(3, &"long ".repeat(10))],
        );
        assert_eq!(
            table,
            vec![
                "line  Case ID  Reason                Wide                  ",
                "2     T-1      Billing second line   xxxxxxxxxxxxxxxxxxx…  ",
                "3     T-1      long long long long…  xxxxxxxxxxxxxxxxxxx…  ",
            ]
        );
    }

    #[test]
    fn counts_are_grouped_and_problems_located() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234), "1,234");
        assert_eq!(count(1_234_567), "1,234,567");
        let issue: Issue = serde_json::from_value(serde_json::json!({
            "row": 4, "column": "Staff ID", "code": "unknown_staff_id", "message": "no staff \u{1b}[31mZ-9"
        }))
        .unwrap_or_default();
        assert_eq!(issue.to_string(), "line 4, Staff ID: no staff  [31mZ-9");
        let issue = Issue {
            row: Some(5),
            column: Some(serde_json::json!(3)),
            ..Issue::default()
        };
        assert_eq!(issue.to_string(), "line 5, column 3: ");
    }
}
