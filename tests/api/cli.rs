//! The binary's subcommands, run as a user would.

use crate::helpers::{
    assert_problem, body, intake_command as intake, printed_token, spawn_app_with,
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
