//! The test harness: a real server on port 0, over real HTTP, against the
//! backend the environment names.
//!
//! - `INTAKE_TEST_DATABASE_URL=postgres://…`: PostgreSQL, a fresh schema per
//!   test (so tests run in parallel on one database). Unset: SQLite in a
//!   fresh temporary folder per test.
//! - `INTAKE_TEST_REDIS_URL=redis://…`: the app is configured with Redis.
//! - `TEST_LOG=1`: the app's logs on stderr.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use actix_web::web;
use intake::settings::Settings;
use intake::startup::{AppState, Application};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub const TEST_SECRET: &str = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";

static TRACING: Once = Once::new();

fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("info,sqlx=warn")
                .with_test_writer()
                .try_init();
        }
    });
}

/// Which database the tests run against.
pub fn postgres_url() -> Option<String> {
    std::env::var("INTAKE_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub admin_token: String,
    pub state: web::Data<AppState>,
    /// The settings environment the app was built from.
    pub env: BTreeMap<String, String>,
    /// Kept alive (and so on disk) as long as the app.
    _data_dir: tempfile::TempDir,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop at once; the server's thread carries it out.
        drop(self.handle.stop(false));
    }
}

/// The settings of a test app, as environment variables (overridable).
pub fn test_env(data_dir: &std::path::Path) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("INTAKE_BIND".into(), "127.0.0.1:0".into());
    env.insert("INTAKE_DATA_DIR".into(), data_dir.display().to_string());
    env.insert("INTAKE_JWT_SECRET".into(), TEST_SECRET.into());
    // Two readers and two writers on PostgreSQL (three and one on SQLite).
    env.insert("INTAKE_DATABASE_MAX_CONNECTIONS".into(), "4".into());
    // Bulk requests queue for the writers' connections rather than being
    // turned away (the admission tests set their own bound).
    env.insert("INTAKE_MAX_BULK_REQUESTS".into(), "8".into());
    if let Ok(url) = std::env::var("INTAKE_TEST_REDIS_URL") {
        env.insert("INTAKE_REDIS_URL".into(), url);
    }
    env
}

/// A fresh PostgreSQL schema, and a URL whose connections use it.
pub async fn fresh_postgres_schema(base: &str) -> String {
    use sqlx::Connection;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .expect("INTAKE_TEST_DATABASE_URL must point at a reachable PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .expect("create schema");
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options[search_path]={schema}")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns an app whose settings environment `customize` may change.
pub async fn spawn_app_with(customize: impl FnOnce(&mut BTreeMap<String, String>)) -> TestApp {
    init_tracing();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut env = test_env(data_dir.path());
    if let Some(base) = postgres_url() {
        env.insert(
            "INTAKE_DATABASE_URL".into(),
            fresh_postgres_schema(&base).await,
        );
    }
    customize(&mut env);
    start(env, data_dir).await
}

/// A second server on the same database, settings and Redis (a replica).
pub async fn spawn_replica(app: &TestApp) -> TestApp {
    start(app.env.clone(), tempfile::tempdir().expect("temp dir")).await
}

async fn start(env: BTreeMap<String, String>, data_dir: tempfile::TempDir) -> TestApp {
    let settings =
        Settings::load_from(None, |k| env.get(k).cloned()).expect("test settings are valid");
    let application = Application::build(settings).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    let state = application.state();
    let handle = application.handle();
    // The server runs on a thread of its own, so that it outlives the test's
    // runtime long enough to process the stop sent when the TestApp drops
    // (and then to close its database pool).
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        let _ = runtime.block_on(application.run_until_stopped());
    });
    let (admin_token, _) = intake::auth::tokens::mint_admin_token(
        &state.store,
        &state.jwt,
        Duration::from_secs(600),
        state.settings.admin_token_max_ttl,
    )
    .await
    .expect("mint");
    intake::install_tls_provider();
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        admin_token,
        state,
        env,
        _data_dir: data_dir,
        handle,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A request with the admin token.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.admin_token)
    }

    pub async fn post_admin(&self, path: &str, body: &Value) -> Response {
        self.admin(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_admin(&self, path: &str) -> Response {
        self.admin(Method::GET, path).send().await.expect("request")
    }

    /// Creates a group and answers its id.
    pub async fn create_group(&self, name: &str) -> String {
        let response = self
            .post_admin("/v1/admin/groups", &json!({"name": name}))
            .await;
        assert_eq!(response.status(), 201, "creating group {name}");
        body(response).await["id"].as_str().expect("id").to_string()
    }

    /// Creates a team and answers its id.
    pub async fn create_team(&self, group_id: &str, name: &str) -> String {
        let response = self
            .post_admin(
                "/v1/admin/teams",
                &json!({"group_id": group_id, "name": name}),
            )
            .await;
        assert_eq!(response.status(), 201, "creating team {name}");
        body(response).await["id"].as_str().expect("id").to_string()
    }
}

impl TestApp {
    /// Creates an integration with access to `groups`; answers its id.
    pub async fn create_integration(&self, label: &str, groups: &[&str]) -> String {
        let response = self
            .post_admin(
                "/v1/admin/integrations",
                &json!({"label": label, "groups": groups}),
            )
            .await;
        assert_eq!(response.status(), 201, "creating integration {label}");
        body(response).await["id"].as_str().expect("id").to_string()
    }

    /// Mints a token through the admin API; answers (token, jti).
    pub async fn mint(&self, integration: &str, scopes: &[&str]) -> (String, String) {
        let response = self
            .post_admin(
                &format!("/v1/admin/integrations/{integration}/tokens"),
                &json!({"scopes": scopes, "ttl_seconds": 3600}),
            )
            .await;
        assert_eq!(response.status(), 201, "minting a token");
        let minted = body(response).await;
        (
            minted["token"].as_str().expect("token").to_string(),
            minted["jti"].as_str().expect("jti").to_string(),
        )
    }

    /// A GET with the given bearer token.
    pub async fn get_as(&self, token: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("text")
    }

    /// Creates a campaign in `group`; answers its id.
    pub async fn create_campaign(&self, group: &str, name: &str) -> String {
        let response = self
            .post_admin(
                "/v1/admin/campaigns",
                &json!({"name": name, "group_id": group, "default_region": "GB", "timezone": "Europe/London"}),
            )
            .await;
        assert_eq!(response.status(), 201, "creating campaign {name}");
        body(response).await["id"].as_str().expect("id").to_string()
    }
}

/// A problem body without its request id (which differs per request).
pub fn without_request_id(mut problem: Value) -> Value {
    if let Some(object) = problem.as_object_mut() {
        object.remove("request_id");
    }
    problem
}

/// Whether the tests have a Redis to use.
pub fn redis_url() -> Option<String> {
    std::env::var("INTAKE_TEST_REDIS_URL").ok()
}

/// The JSON body of a response.
pub async fn body(response: Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts a problem answer: status, content type, code; answers the body.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let problem = body(response).await;
    assert_eq!(
        content_type, "application/problem+json",
        "content type of {problem}"
    );
    assert_eq!(problem["code"], code, "code of {problem}");
    assert_eq!(problem["status"], status, "status of {problem}");
    assert_eq!(problem["type"], format!("/docs/errors#{code}"));
    assert!(
        problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "detail of {problem}"
    );
    assert_eq!(
        problem["request_id"].as_str(),
        request_id.as_deref(),
        "request_id matches X-Request-Id"
    );
    problem
}

/// A TCP forwarder that can be cut and restored: the database "goes away"
/// without touching the real server.
pub struct TcpProxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let proxy = TcpProxy {
            addr,
            target,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let tasks = self.tasks.clone();
        let target = self.target;
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().expect("lock").push(connection);
            }
        });
        self.tasks.lock().expect("lock").push(accept);
    }

    /// Drops every connection and stops listening.
    pub fn cut(&self) {
        for task in self.tasks.lock().expect("lock").drain(..) {
            task.abort();
        }
    }

    /// Listens again on the same address.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind proxy");
        self.serve(listener);
    }
}

/// Polls `check` every 100 ms until it holds, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `intake` binary with none of the developer's INTAKE_* or OTEL_*
/// variables: only what each test sets.
pub fn intake_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_intake"));
    for (key, _) in std::env::vars() {
        if key.starts_with("INTAKE_") || key.starts_with("OTEL_") {
            command.env_remove(key);
        }
    }
    command
}

/// The token a successful `intake token` or `intake seed-demo` printed.
pub fn printed_token(output: std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

/// A multipart/form-data body with these fields (the file as `file`).
pub fn form(fields: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----intake-test-boundary-7d1b";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        if *name == "file" {
            body.extend_from_slice(
                b"Content-Disposition: form-data; name=\"file\"; filename=\"cases.csv\"\r\nContent-Type: text/csv\r\n\r\n",
            );
        } else {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Cases stored, read from the app's own database.
pub async fn count_cases(app: &TestApp) -> i64 {
    let sql = "SELECT COUNT(*) FROM cases";
    let (n,): (i64,) = match &app.state.store.reads {
        intake::store::Pool::Sqlite(pool) => sqlx::query_as(sql).fetch_one(pool).await,
        intake::store::Pool::Postgres(pool) => sqlx::query_as(sql).fetch_one(pool).await,
    }
    .expect("count");
    n
}

/// A replica of `app` in a process of its own (`intake serve` on the same
/// database, Redis and settings, plus `extra`), to signal or kill.
pub struct ReplicaProcess {
    pub process: std::process::Child,
    /// `127.0.0.1:port`.
    pub address: String,
}

impl ReplicaProcess {
    pub async fn start(app: &TestApp, extra: &[(&str, &str)]) -> ReplicaProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("address")
            .port();
        let database = app
            .env
            .get("INTAKE_DATABASE_URL")
            .cloned()
            .unwrap_or_else(|| format!("sqlite://{}/intake.db", app.env["INTAKE_DATA_DIR"]));
        let process = intake_command()
            .envs(app.env.iter())
            .env("INTAKE_DATABASE_URL", database)
            .env("INTAKE_BIND", format!("127.0.0.1:{port}"))
            .env("INTAKE_LOG", "warn")
            .envs(extra.iter().copied())
            .arg("serve")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("intake serve");
        let address = format!("127.0.0.1:{port}");
        let up = eventually(Duration::from_secs(20), || async {
            app.client
                .get(format!("http://{address}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        assert!(up, "the replica process did not start");
        ReplicaProcess { process, address }
    }
}

impl Drop for ReplicaProcess {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Records an admin token's claims in `app`'s database, as `intake token
/// --admin` does when it mints one.
pub async fn record_admin_token(app: &TestApp, claims: &intake::auth::jwt::Claims) {
    let at = |s: i64| chrono::DateTime::from_timestamp(s, 0).expect("time");
    app.state
        .store
        .insert_admin_token(
            claims.jti.parse().expect("jti"),
            at(claims.iat),
            at(claims.exp),
        )
        .await
        .expect("record");
}

/// Sends the head and the first half of a chunked NDJSON body of `lines`
/// cases (`N-0`, `N-1`, … of staff member A-1) to `address`, and keeps the
/// connection open: the request runs until the rest is sent
/// ([`finish_ndjson_stream`]) or the connection drops. Answers the socket
/// and the rest of the body.
pub async fn start_ndjson_stream(
    address: &str,
    token: &str,
    key: Option<&str>,
    lines: usize,
) -> (TcpStream, Vec<u8>) {
    use tokio::io::AsyncWriteExt;
    let host = address.trim_start_matches("http://").to_string();
    let mut socket = TcpStream::connect(&host).await.expect("connect");
    let key = key
        .map(|k| format!("Idempotency-Key: {k}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /v1/cases HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         {key}Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.expect("write");
    let body = ndjson_cases(lines).into_bytes();
    let half = body.len() / 2;
    socket
        .write_all(format!("{half:x}\r\n").as_bytes())
        .await
        .expect("write");
    socket.write_all(&body[..half]).await.expect("write");
    socket.write_all(b"\r\n").await.expect("write");
    socket.flush().await.expect("flush");
    (socket, body[half..].to_vec())
}

/// Sends the rest of a stream [`start_ndjson_stream`] began, and answers
/// the start of the answer (its status line first).
pub async fn finish_ndjson_stream(mut socket: TcpStream, rest: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    socket
        .write_all(format!("{:x}\r\n", rest.len()).as_bytes())
        .await
        .expect("write");
    socket.write_all(&rest).await.expect("write");
    socket.write_all(b"\r\n0\r\n\r\n").await.expect("write");
    let mut answer = vec![0u8; 4096];
    let n = socket.read(&mut answer).await.expect("read");
    String::from_utf8_lossy(&answer[..n]).to_string()
}

/// `lines` NDJSON cases `N-0`, `N-1`, … of staff member A-1.
pub fn ndjson_cases(lines: usize) -> String {
    (0..lines)
        .map(|i| {
            format!(
                "{}\n",
                json!({"external_id": format!("N-{i}"), "staff_id": "A-1"})
            )
        })
        .collect()
}
