//! Integrations and their tokens through the admin API, and `GET /v1/me`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{assert_problem, body, eventually, intake_command, printed_token, spawn_app};

#[tokio::test]
async fn an_integration_is_created_with_groups_and_default_csv_limits() {
    let app = spawn_app().await;
    let eu = app.create_group("Support EU").await;
    let us = app.create_group("Support US").await;
    let response = app
        .post_admin(
            "/v1/admin/integrations",
            &json!({"label": " CRM sync ", "description": "Nightly push", "groups": [eu, us, eu]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created = body(response).await;
    assert_eq!(created["label"], "CRM sync");
    assert_eq!(created["enabled"], true);
    assert_eq!(
        created["csv_limits"],
        json!({"max_records": 1000, "max_columns": 103, "max_cell_chars": 1000})
    );
    let mut groups: Vec<&str> = created["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    groups.sort();
    let mut expected = vec![eu.as_str(), us.as_str()];
    expected.sort();
    assert_eq!(groups, expected, "repeats dropped");

    let id = created["id"].as_str().expect("id");
    let response = app
        .admin(Method::PATCH, &format!("/v1/admin/integrations/{id}"))
        .json(&json!({"groups": [us], "csv_limits": {"max_records": 5000}}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let updated = body(response).await;
    assert_eq!(updated["groups"], json!([us]));
    assert_eq!(
        updated["csv_limits"],
        json!({"max_records": 5000, "max_columns": 103, "max_cell_chars": 1000})
    );
    assert_eq!(updated["description"], "Nightly push");
    assert_eq!(
        body(app.get_admin(&format!("/v1/admin/integrations/{id}")).await).await,
        updated
    );
    let page = body(app.get_admin("/v1/admin/integrations").await).await;
    assert_eq!(page["items"], json!([updated]));

    let response = app
        .admin(Method::DELETE, &format!("/v1/admin/integrations/{id}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    assert_problem(
        app.get_admin(&format!("/v1/admin/integrations/{id}")).await,
        404,
        "integration_not_found",
    )
    .await;
    assert_eq!(
        body(app.get_admin("/v1/admin/integrations").await).await["items"],
        json!([])
    );
}

#[tokio::test]
async fn an_integration_needs_existing_groups_and_sane_limits() {
    let app = spawn_app().await;
    let missing = uuid::Uuid::now_v7();
    let response = app
        .post_admin(
            "/v1/admin/integrations",
            &json!({"label": "CRM", "groups": [missing]}),
        )
        .await;
    let problem = assert_problem(response, 422, "unknown_group").await;
    assert_eq!(problem["errors"][0]["field"], "groups[0]");

    let response = app
        .post_admin(
            "/v1/admin/integrations",
            &json!({"label": "CRM", "groups": []}),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["code"], "required");

    let group = app.create_group("Support EU").await;
    let response = app
        .post_admin(
            "/v1/admin/integrations",
            &json!({"label": "CRM", "groups": [group], "csv_limits": {"max_columns": 2}}),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "csv_limits.max_columns");
    assert_eq!(
        body(app.get_admin("/v1/admin/integrations").await).await["items"],
        json!([])
    );
}

#[tokio::test]
async fn a_token_is_shown_once_and_listed_without_its_secret() {
    let app = spawn_app().await;
    let group = app.create_group("Support EU").await;
    let integration = app.create_integration("CRM", &[&group]).await;
    let response = app
        .post_admin(
            &format!("/v1/admin/integrations/{integration}/tokens"),
            &json!({"scopes": ["cases:write", "cases:read", "cases:write"], "ttl_seconds": 86400}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let minted = body(response).await;
    let token = minted["token"].as_str().expect("token");
    assert_eq!(minted["scopes"], json!(["cases:write", "cases:read"]));
    let expires: chrono::DateTime<chrono::Utc> = minted["expires_at"]
        .as_str()
        .expect("expires")
        .parse()
        .expect("time");
    let left = expires - chrono::Utc::now();
    assert!((86_300..=86_400).contains(&left.num_seconds()), "{left}");

    let page = body(
        app.get_admin(&format!("/v1/admin/integrations/{integration}/tokens"))
            .await,
    )
    .await;
    let listed = &page["items"][0];
    assert_eq!(listed["jti"], minted["jti"]);
    assert_eq!(listed["scopes"], json!(["cases:write", "cases:read"]));
    assert_eq!(listed["revoked_at"], Value::Null);
    assert!(
        !page.to_string().contains(token),
        "the token is never listed"
    );

    // A use is recorded (off the request path).
    assert_eq!(app.get_as(token, "/v1/me").await.status(), 200);
    let used = eventually(Duration::from_secs(5), || async {
        let page = body(
            app.get_admin(&format!("/v1/admin/integrations/{integration}/tokens"))
                .await,
        )
        .await;
        page["items"][0]["last_used_at"].is_string()
    })
    .await;
    assert!(used, "last_used_at is set after a use");
}

#[tokio::test]
async fn a_token_carries_only_integration_scopes_and_a_bounded_lifetime() {
    let app = spawn_app().await;
    let group = app.create_group("Support EU").await;
    let integration = app.create_integration("CRM", &[&group]).await;
    let path = format!("/v1/admin/integrations/{integration}/tokens");
    let response = app
        .post_admin(
            &path,
            &json!({"scopes": ["cases:write", "cases:delete", "admin"], "ttl_seconds": 10}),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    let errors: Vec<(&str, &str)> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap_or_default(),
                e["code"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            ("scopes[1]", "invalid_scope"),
            ("scopes[2]", "invalid_scope"),
            ("ttl_seconds", "out_of_range")
        ]
    );
    let page = body(app.get_admin(&path).await).await;
    assert_eq!(page["items"], json!([]), "nothing minted");

    let response = app
        .post_admin(
            &format!("/v1/admin/integrations/{}/tokens", uuid::Uuid::now_v7()),
            &json!({"scopes": ["cases:write"]}),
        )
        .await;
    assert_problem(response, 404, "integration_not_found").await;
}

#[tokio::test]
async fn revoking_a_token_refuses_it_and_is_idempotent() {
    let app = spawn_app().await;
    let group = app.create_group("Support EU").await;
    let integration = app.create_integration("CRM", &[&group]).await;
    let (token, jti) = app.mint(&integration, &["customers:read"]).await;
    let (other, _) = app.mint(&integration, &["customers:read"]).await;
    assert_eq!(app.get_as(&token, "/v1/me").await.status(), 200);
    let path = format!("/v1/admin/integrations/{integration}/tokens/{jti}");
    for _ in 0..2 {
        let response = app
            .admin(Method::DELETE, &path)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 204);
    }
    assert_problem(app.get_as(&token, "/v1/me").await, 401, "invalid_token").await;
    assert_eq!(
        app.get_as(&other, "/v1/me").await.status(),
        200,
        "other tokens still work"
    );
    let page = body(
        app.get_admin(&format!("/v1/admin/integrations/{integration}/tokens"))
            .await,
    )
    .await;
    let revoked = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|t| t["jti"] == jti.as_str())
        .cloned();
    assert!(revoked.is_some_and(|t| t["revoked_at"].is_string()));

    let unknown = format!(
        "/v1/admin/integrations/{integration}/tokens/{}",
        uuid::Uuid::now_v7()
    );
    let response = app
        .admin(Method::DELETE, &unknown)
        .send()
        .await
        .expect("request");
    assert_problem(response, 404, "token_not_found").await;
}

#[tokio::test]
async fn me_tells_the_integration_its_groups_and_scopes() {
    let app = spawn_app().await;
    let group = app.create_group("Support EU").await;
    let integration = app.create_integration("CRM sync", &[&group]).await;
    let (token, jti) = app
        .mint(&integration, &["cases:write", "customers:read"])
        .await;
    let response = app.get_as(&token, "/v1/me").await;
    assert_eq!(response.status(), 200);
    let me = body(response).await;
    assert_eq!(me["integration"]["id"], integration.as_str());
    assert_eq!(me["integration"]["label"], "CRM sync");
    assert_eq!(me["groups"][0]["id"], group.as_str());
    assert_eq!(me["groups"][0]["name"], "Support EU");
    assert_eq!(me["scopes"], json!(["cases:write", "customers:read"]));
    assert_eq!(me["token"]["jti"], jti.as_str());

    // The admin token is not an integration.
    let response = app.get_admin("/v1/me").await;
    assert_problem(response, 403, "insufficient_scope").await;
}

#[tokio::test]
async fn the_cli_mints_integration_tokens_the_api_accepts() {
    let app = spawn_app().await;
    let group = app.create_group("Support EU").await;
    let integration = app.create_integration("CRM", &[&group]).await;
    let output = intake_command()
        .envs(app.env.iter().filter(|(k, _)| *k != "INTAKE_REDIS_URL"))
        .args([
            "token",
            "--integration",
            &integration,
            "--scope",
            "cases:read",
            "--scope",
            "customers:read",
        ])
        .output()
        .expect("run intake token");
    let token = printed_token(output);
    let me = body(app.get_as(&token, "/v1/me").await).await;
    assert_eq!(me["scopes"], json!(["cases:read", "customers:read"]));
    let page = body(
        app.get_admin(&format!("/v1/admin/integrations/{integration}/tokens"))
            .await,
    )
    .await;
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(1),
        "recorded like an API-minted token"
    );

    let output = intake_command()
        .envs(app.env.iter())
        .args(["token", "--integration", &integration, "--scope", "admin"])
        .output()
        .expect("run intake token");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--scope"));
}

#[tokio::test]
async fn limits_are_the_integrations_own() {
    let app = spawn_app().await;
    let group = app.create_group("Support EU").await;
    let integration = app.create_integration("CRM", &[&group]).await;
    let (token, _) = app.mint(&integration, &["cases:write"]).await;
    let limits = body(app.get_as(&token, "/v1/limits").await).await;
    assert_eq!(
        limits,
        json!({"body_bytes": 67108864, "page_size_max": 1000, "csv": {"max_records": 1000, "max_columns": 103, "max_cell_chars": 1000},
               "rate_limit": {"per_second": 100.0, "burst": 200}, "bulk_requests": 8})
    );
    let response = app
        .admin(
            Method::PATCH,
            &format!("/v1/admin/integrations/{integration}"),
        )
        .json(&json!({"csv_limits": {"max_records": 20000, "max_cell_chars": 5000}}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let limits = body(app.get_as(&token, "/v1/limits").await).await;
    assert_eq!(
        limits["csv"],
        json!({"max_records": 20000, "max_columns": 103, "max_cell_chars": 5000})
    );
}

#[tokio::test]
async fn whole_numbers_written_with_a_zero_fraction_are_integers() {
    // JSON Schema counts 3600.0 as an integer: a schema-valid request.
    let app = spawn_app().await;
    let group = app.create_group("Support EU").await;
    let response = app
        .post_admin(
            "/v1/admin/integrations",
            &json!({"label": "CRM", "groups": [group], "csv_limits": {"max_records": 2000.0},
                    "rate_limit": {"per_second": 2.5, "burst": 10.0}}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let integration = body(response).await;
    assert_eq!(integration["csv_limits"]["max_records"], 2000);
    assert_eq!(integration["rate_limit"]["burst"], 10);
    let id = integration["id"].as_str().expect("id").to_string();
    let response = app
        .post_admin(
            &format!("/v1/admin/integrations/{id}/tokens"),
            &json!({"scopes": ["cases:read"], "ttl_seconds": 3600.0}),
        )
        .await;
    assert_eq!(response.status(), 201);
    // A fraction is not a whole number.
    let response = app
        .post_admin(
            &format!("/v1/admin/integrations/{id}/tokens"),
            &json!({"scopes": ["cases:read"], "ttl_seconds": 3600.5}),
        )
        .await;
    assert!(response.status().is_client_error());
    // A cursor of the documented shape is a cursor.
    let response = app
        .get_admin("/v1/admin/groups?cursor=AAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(response.status(), 200);
}
