//! What the benches share: the data every run starts from, made through
//! the admin API.

use serde_json::{Value, json};

/// A group with staff S-0..S-9 (agents), an integration of it and a token
/// with `scopes`: (group id, integration id, token).
pub async fn setup(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    scopes: &[&str],
) -> anyhow::Result<(String, String, String)> {
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(admin_token)
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
        .bearer_auth(admin_token)
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
        json!({"scopes": scopes}),
    )
    .await?
    .json()
    .await?;
    let token = minted["token"].as_str().expect("token").to_string();
    Ok((group, integration, token))
}

/// The bench's PostgreSQL database: `INTAKE_BENCH_DATABASE_URL`, else
/// `postgres://postgres@127.0.0.1:5432/<default_name>`; created if missing.
/// Answers its URL.
pub async fn bench_database(default_name: &str) -> anyhow::Result<String> {
    let url = std::env::var("INTAKE_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("postgres://postgres@127.0.0.1:5432/{default_name}"));
    let (server_url, db_name) = url
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("{url} is not a database URL"))?;
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
    admin.close().await;
    Ok(url)
}
