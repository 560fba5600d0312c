//! Campaigns (regions, time zones, statuses) and categories.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_problem, body, spawn_app};

#[tokio::test]
async fn a_campaign_gets_default_statuses_and_canonical_values() {
    let app = spawn_app().await;
    let group = app.create_group("Support EU").await;
    let response = app
        .post_admin(
            "/v1/admin/campaigns",
            &json!({"name": "Spring renewals", "group_id": group, "default_region": "il", "timezone": "Asia/Jerusalem"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let campaign = body(response).await;
    assert_eq!(campaign["default_region"], "IL");
    assert_eq!(campaign["timezone"], "Asia/Jerusalem");
    assert_eq!(
        campaign["statuses"],
        json!(["new", "follow_up", "waiting", "closed"])
    );
    let id = campaign["id"].as_str().expect("id");

    let response = app
        .admin(Method::PATCH, &format!("/v1/admin/campaigns/{id}"))
        .json(&json!({"statuses": ["New", "Call back", "closed"], "timezone": "Europe/Prague"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let updated = body(response).await;
    assert_eq!(updated["statuses"], json!(["new", "call_back", "closed"]));
    assert_eq!(updated["timezone"], "Europe/Prague");
    assert_eq!(updated["default_region"], "IL");
    assert_eq!(
        body(app.get_admin(&format!("/v1/admin/campaigns/{id}")).await).await,
        updated
    );

    let page = body(
        app.get_admin(&format!("/v1/admin/campaigns?group_id={group}"))
            .await,
    )
    .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));

    let response = app
        .admin(Method::DELETE, &format!("/v1/admin/campaigns/{id}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    assert_problem(
        app.get_admin(&format!("/v1/admin/campaigns/{id}")).await,
        404,
        "campaign_not_found",
    )
    .await;
}

#[tokio::test]
async fn a_campaign_needs_an_iso_region_and_an_iana_time_zone() {
    let app = spawn_app().await;
    let group = app.create_group("Support EU").await;
    let response = app
        .post_admin(
            "/v1/admin/campaigns",
            &json!({"name": "Spring", "group_id": group, "default_region": "Israel", "timezone": "Mars/Olympus"}),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    let codes: Vec<(&str, &str)> = problem["errors"]
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
        codes,
        vec![
            ("default_region", "invalid_region"),
            ("timezone", "invalid_timezone")
        ]
    );

    let response = app
        .post_admin(
            "/v1/admin/campaigns",
            &json!({"name": "Spring", "group_id": group, "default_region": "GB", "timezone": "Europe/London", "statuses": ["new", "New"]}),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "statuses[1]");
    assert_eq!(problem["errors"][0]["code"], "duplicate_value");

    let missing = uuid::Uuid::now_v7();
    let response = app
        .post_admin(
            "/v1/admin/campaigns",
            &json!({"name": "Spring", "group_id": missing, "default_region": "GB", "timezone": "Europe/London"}),
        )
        .await;
    assert_problem(response, 422, "unknown_group").await;
    let page = body(app.get_admin("/v1/admin/campaigns").await).await;
    assert_eq!(page["items"], json!([]));
}

#[tokio::test]
async fn categories_are_unique_names() {
    let app = spawn_app().await;
    let response = app
        .post_admin("/v1/admin/categories", &json!({"name": "Billing"}))
        .await;
    assert_eq!(response.status(), 201);
    let billing = body(response).await;
    let response = app
        .post_admin("/v1/admin/categories", &json!({"name": "Billing"}))
        .await;
    assert_problem(response, 409, "duplicate_name").await;

    let id = billing["id"].as_str().expect("id");
    let response = app
        .admin(Method::PATCH, &format!("/v1/admin/categories/{id}"))
        .json(&json!({"name": "Payments"}))
        .send()
        .await
        .expect("request");
    assert_eq!(body(response).await["name"], "Payments");
    let page = body(app.get_admin("/v1/admin/categories").await).await;
    assert_eq!(page["items"][0]["name"], "Payments");
    let response = app
        .admin(Method::DELETE, &format!("/v1/admin/categories/{id}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    assert_problem(
        app.get_admin(&format!("/v1/admin/categories/{id}")).await,
        404,
        "category_not_found",
    )
    .await;
}
