//! The binary's subcommands, run as a user would.

use std::process::{Output, Stdio};

use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    TestApp, assert_problem, body, count_cases, intake_command as intake, printed_token, spawn_app,
    spawn_app_with,
};

#[tokio::test]
async fn token_admin_prints_a_token_the_server_with_the_same_settings_accepts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().display().to_string();
    // A server on a data folder of its own (and so its generated secret).
    let app = spawn_app_with(move |env| {
        env.remove("INTAKE_JWT_SECRET");
        env.insert("INTAKE_DATA_DIR".into(), data_dir);
    })
    .await;
    assert!(
        dir.path().join("jwt_secret").exists(),
        "the secret is kept in the data folder"
    );
    // The CLI with the same settings (folder and database).
    let output = intake()
        .envs(app.env.iter())
        .args(["token", "--admin", "--ttl", "120"])
        .output()
        .expect("run intake token");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "the token alone on stdout: {stdout:?}");
    let token = lines[0].to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let admin_get = |token: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/v1/admin/groups"))
                .bearer_auth(token)
                .send()
                .await
                .expect("request")
        }
    };
    let response = admin_get(token.clone()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await["items"], serde_json::json!([]));

    // It is recorded (its jti on stderr), and revoked from the CLI it is
    // refused at once.
    let jti = stderr
        .split_whitespace()
        .find(|w| uuid::Uuid::parse_str(w).is_ok())
        .expect("the jti on stderr")
        .to_string();
    let listed = body(app.get_admin("/v1/admin/tokens").await).await;
    assert!(
        listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|t| t["jti"] == jti.as_str()),
        "{listed}"
    );
    let output = intake()
        .envs(app.env.iter())
        .args(["revoke-admin-token", &jti])
        .output()
        .expect("run intake revoke-admin-token");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_problem(admin_get(token.clone()).await, 401, "invalid_token").await;

    // A server with another secret refuses it.
    let other = spawn_app_with(|_| {}).await;
    let response = other
        .client
        .get(other.url("/v1/admin/groups"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_problem(response, 401, "invalid_token").await;
}

#[tokio::test]
async fn an_admin_token_longer_lived_than_allowed_is_not_minted() {
    let app = spawn_app_with(|env| {
        env.insert("INTAKE_ADMIN_TOKEN_MAX_TTL_SECONDS".into(), "3600".into());
    })
    .await;
    let output = intake()
        .envs(app.env.iter())
        .args(["token", "--admin", "--ttl", "7200"])
        .output()
        .expect("run intake token");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("INTAKE_ADMIN_TOKEN_MAX_TTL_SECONDS"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn token_needs_a_kind_and_a_sane_ttl() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = intake()
        .args(["token"])
        .env("INTAKE_DATA_DIR", dir.path())
        .output()
        .expect("run");
    assert!(!output.status.success());
    let output = intake()
        .args(["token", "--admin", "--ttl", "0"])
        .env("INTAKE_DATA_DIR", dir.path())
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    // The API's bounds (`ttl_seconds` 60 to a year), for either kind.
    let integration = uuid::Uuid::now_v7().to_string();
    for args in [
        vec!["token", "--admin", "--ttl", "59"],
        vec![
            "token",
            "--integration",
            &integration,
            "--scope",
            "cases:read",
            "--ttl",
            "1",
        ],
        vec![
            "token",
            "--integration",
            &integration,
            "--scope",
            "cases:read",
            "--ttl",
            "31536001",
        ],
    ] {
        let output = intake()
            .args(&args)
            .env("INTAKE_DATA_DIR", dir.path())
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("60..=31536000"), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn a_bad_setting_stops_start_up_naming_the_setting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = intake()
        .arg("serve")
        .env("INTAKE_DATA_DIR", dir.path())
        .env("INTAKE_BIND", "everywhere")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("INTAKE_BIND"), "{stderr}");
    assert!(stderr.contains("everywhere"), "{stderr}");

    let output = intake()
        .arg("serve")
        .env("INTAKE_DATA_DIR", dir.path())
        .env("INTAKE_JWT_SECRET", "hunter2")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("INTAKE_JWT_SECRET"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "the secret is not echoed: {stderr}"
    );
}

#[test]
fn openapi_prints_the_committed_document() {
    let output = intake().arg("openapi").output().expect("run");
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).expect("utf-8");
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap_or_default();
    assert_eq!(printed.trim_end(), committed.trim_end());
}

#[test]
fn migrate_creates_the_schema() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = intake()
        .arg("migrate")
        .env("INTAKE_DATA_DIR", dir.path())
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("intake.db").exists());
    // Twice is fine.
    let output = intake()
        .arg("migrate")
        .env("INTAKE_DATA_DIR", dir.path())
        .output()
        .expect("run");
    assert!(output.status.success());
}

#[tokio::test]
async fn seed_demo_creates_data_and_a_working_integration_token() {
    let app = crate::helpers::spawn_app().await;
    let run = || {
        let mut command = intake();
        command.envs(app.env.iter().filter(|(k, _)| *k != "INTAKE_REDIS_URL"));
        command.arg("seed-demo").output().expect("run seed-demo")
    };
    let token = printed_token(run());
    let me = body(app.get_as(&token, "/v1/me").await).await;
    assert_eq!(me["integration"]["label"], "Demo integration");
    assert_eq!(me["groups"][0]["name"], "Demo");
    let campaigns = body(app.get_as(&token, "/v1/campaigns").await).await;
    assert_eq!(campaigns["items"][0]["name"], "Demo campaign");
    let staff = body(app.get_admin("/v1/admin/staff/DEMO-A1").await).await;
    assert_eq!(staff["name"], "Dana Demo");

    // A second run refuses rather than duplicating.
    let output = run();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("already there"));
}

/// A group with staff member A-1, and an integration of that group:
/// (group, integration).
async fn partner(app: &TestApp) -> (String, String) {
    let group = app.create_group("Group A").await;
    let response = app
        .admin(Method::PUT, "/v1/admin/staff")
        .json(&json!({"staff": [
            {"staff_id": "A-1", "external_id": "crm-1", "name": "Ann", "role": "agent", "group_id": group},
        ]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let integration = app.create_integration("Partner", &[&group]).await;
    (group, integration)
}

/// Three valid rows and one whose staff member does not exist (line 4).
const NOVEMBER: &str = "Staff ID,External Staff ID,Case ID,Reason\n\
A-1,crm-1,T-1,Billing\n\
A-1,crm-1,T-2,Refund\n\
Z-9,,T-3,Unknown agent\n\
A-1,crm-1,T-4,Late\n";

/// Runs the command off the test's thread: the app's PostgreSQL and Redis
/// connections are driven by the test's runtime, which must keep running
/// while the command talks to the app.
async fn output(mut command: std::process::Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("run intake upload"))
        .await
        .expect("the command's thread")
}

/// `intake upload` in `dir`, stdin not a terminal, with these arguments.
async fn upload(dir: &std::path::Path, args: &[&str]) -> Output {
    let mut command = intake();
    command
        .current_dir(dir)
        .arg("upload")
        .args(args)
        .stdin(Stdio::null());
    output(command).await
}

/// `intake upload FILE --kind cases --yes` refused: exit 1, nothing on
/// stdout; its stderr.
async fn refused(dir: &std::path::Path, file: &str, url: &str, token: &str) -> String {
    let output = upload(
        dir,
        &[
            file, "--kind", "cases", "--url", url, "--token", token, "--yes",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
    text(&output.stderr)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn upload_imports_the_valid_rows_and_writes_the_failed_ones_to_fix() {
    let app = spawn_app().await;
    let (group, partner) = partner(&app).await;
    let (token, _) = app.mint(&partner, &["imports:write", "cases:read"]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("november.csv"), NOVEMBER).expect("write");

    let mut command = intake();
    command
        .current_dir(dir.path())
        .args(["upload", "november.csv", "--kind", "cases"])
        .args(["--list-name", "November", "--assign-group", &group])
        .args(["--url", &app.address, "--yes"])
        .env("INTAKE_TOKEN", &token)
        .stdin(Stdio::null());
    let output = output(command).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(
        output.status.code(),
        Some(3),
        "imported with failed rows\n{stdout}\n{stderr}"
    );
    // The check, for a person: rows, the first rows, the problem by line
    // and column.
    assert!(stdout.contains("november.csv: 4 rows checked"), "{stdout}");
    assert!(
        stdout.contains("line  Staff ID  External Staff ID  Case ID  Reason"),
        "{stdout}"
    );
    assert!(stdout.contains("1 error in 1 row"), "{stdout}");
    assert!(stdout.contains("  line 4, Staff ID: "), "{stdout}");
    assert!(stdout.contains("3 of 4 rows can be imported."), "{stdout}");
    // The summary.
    let summary: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    for (label, n) in [
        ("rows:", "4"),
        ("succeeded:", "3"),
        ("skipped:", "0"),
        ("failed:", "1"),
    ] {
        assert!(
            summary.contains(&vec![label, n]),
            "{label} {n} in the summary: {stdout}"
        );
    }
    assert!(
        stdout.contains("november-errors.csv"),
        "says where the failed rows are: {stdout}"
    );
    // No progress bars without a terminal.
    assert!(!stderr.contains("Uploading"), "{stderr}");

    // The cases are there.
    assert_eq!(count_cases(&app).await, 3);
    let cases = body(app.get_as(&token, "/v1/cases").await).await;
    let mut ids: Vec<&str> = cases["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["external_id"].as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec!["T-1", "T-2", "T-4"]);

    // The failed row, in the file's columns plus `error`, beside.
    let errors =
        std::fs::read_to_string(dir.path().join("november-errors.csv")).expect("the errors file");
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(lines[0], "Staff ID,External Staff ID,Case ID,Reason,error");
    assert_eq!(lines.len(), 2, "{errors}");
    assert!(lines[1].starts_with("Z-9,,T-3,Unknown agent,"), "{errors}");
    assert!(lines[1].contains("line 4, Staff ID:"), "{errors}");

    // Every row valid, the errors file named: done, exit 0, no file.
    std::fs::write(
        dir.path().join("december.csv"),
        "Staff ID,External Staff ID,Case ID,Reason\nA-1,crm-1,D-1,Fine\n",
    )
    .expect("write");
    let output = upload(
        dir.path(),
        &[
            "december.csv",
            "--kind=cases",
            "--url",
            &app.address,
            "--token",
            &token,
            "-y",
            "--errors-file",
            "out/december-failed.csv",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(!dir.path().join("out").exists());
    assert_eq!(count_cases(&app).await, 4);
}

#[tokio::test]
async fn upload_without_a_terminal_or_yes_leaves_the_job_awaiting_confirmation() {
    let app = spawn_app().await;
    let (_, partner) = partner(&app).await;
    let (token, _) = app.mint(&partner, &["imports:write"]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("november.csv"), NOVEMBER).expect("write");
    let output = upload(
        dir.path(),
        &[
            "november.csv",
            "--kind",
            "cases",
            "--url",
            &app.address,
            "--token",
            &token,
        ],
    )
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    // The check was shown all the same.
    assert!(text(&output.stdout).contains("3 of 4 rows can be imported."));

    let jobs = body(app.get_as(&token, "/v1/imports").await).await;
    let jobs = jobs["items"].as_array().expect("items");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["state"], "awaiting_confirmation");
    let id = jobs[0]["id"].as_str().expect("id");
    assert!(
        stderr.contains(&format!("/v1/imports/{id}/confirm")),
        "says how to confirm it: {stderr}"
    );
    assert_eq!(count_cases(&app).await, 0);
}

#[tokio::test]
async fn upload_errors_are_one_clear_line_and_exit_1() {
    let app = spawn_app().await;
    let (_, partner) = partner(&app).await;
    let (reader, _) = app.mint(&partner, &["cases:read"]).await;
    let (writer, _) = app.mint(&partner, &["imports:write"]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("november.csv"), NOVEMBER).expect("write");
    std::fs::write(
        dir.path().join("headless.csv"),
        "Staff ID,Case ID\nA-1,T-1\n",
    )
    .expect("write");

    let stderr = refused(dir.path(), "november.csv", &app.address, "not-a-token").await;
    assert!(
        stderr.starts_with("intake: the token was refused"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let stderr = refused(dir.path(), "november.csv", &app.address, &reader).await;
    assert!(stderr.contains("lacks the scope imports:write"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let nowhere = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let stderr = refused(dir.path(), "november.csv", &nowhere, "any").await;
    assert!(stderr.contains("cannot reach the server at"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // A file the server cannot read: its detail and first errors.
    let stderr = refused(dir.path(), "headless.csv", &app.address, &writer).await;
    assert!(
        stderr.starts_with("intake: the server refused the file: "),
        "{stderr}"
    );
    assert!(stderr.contains("\n  "), "its errors listed: {stderr}");

    let stderr = refused(dir.path(), "missing.csv", &app.address, &writer).await;
    assert!(stderr.contains("cannot open missing.csv"), "{stderr}");
    assert_eq!(count_cases(&app).await, 0);
}

#[tokio::test]
async fn upload_imports_customers_into_a_campaign_with_the_dialers_options() {
    let app = spawn_app().await;
    let (group, partner) = partner(&app).await;
    let campaign = app.create_campaign(&group, "Leads").await;
    let (token, _) = app
        .mint(&partner, &["imports:write", "customers:read"])
        .await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("leads.csv"),
        "Full name,Phone number,Agent\nDana Levi,07911 123451,Ann\nTom Cohen,+44 7911 123452,\n",
    )
    .expect("write");
    let output = upload(
        dir.path(),
        &[
            "leads.csv",
            "--kind",
            "customers",
            "--campaign-id",
            &campaign,
            "--status",
            "follow_up",
            "--override-existing",
            "--url",
            &app.address,
            "--token",
            &token,
            "--yes",
        ],
    )
    .await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("leads.csv: 2 rows checked"), "{stdout}");
    let page = body(
        app.get_as(
            &token,
            &format!("/v1/campaigns/{campaign}/customers?limit=10"),
        )
        .await,
    )
    .await;
    let mut stored: Vec<(String, String, String)> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| {
            (
                c["phone"].as_str().unwrap_or("").to_string(),
                c["status"].as_str().unwrap_or("").to_string(),
                c["agent_staff_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        vec![
            ("+447911123451".into(), "follow_up".into(), "A-1".into()),
            ("+447911123452".into(), "follow_up".into(), String::new()),
        ]
    );
}

#[tokio::test]
async fn healthcheck_exits_0_on_a_live_server_and_1_on_a_closed_port() {
    let app = spawn_app().await;
    let port = app.address.rsplit(':').next().expect("port");
    // As in the image: INTAKE_BIND on 0.0.0.0 is reached on the loopback.
    let up = intake()
        .env("INTAKE_BIND", format!("0.0.0.0:{port}"))
        .arg("healthcheck")
        .output()
        .expect("run intake healthcheck");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    // A port just freed: nothing listens on it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address");
    let down = intake()
        .args([
            "healthcheck",
            "--addr",
            &closed.to_string(),
            "--timeout",
            "1",
        ])
        .output()
        .expect("run intake healthcheck");
    assert_eq!(down.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("healthcheck:"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
}
