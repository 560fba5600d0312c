//! Groups and teams: CRUD, pagination, references.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_problem, body, spawn_app};

#[tokio::test]
async fn a_group_is_created_read_renamed_and_deleted() {
    let app = spawn_app().await;
    let response = app
        .post_admin("/v1/admin/groups", &json!({"name": "  Support EU "}))
        .await;
    assert_eq!(response.status(), 201);
    let created = body(response).await;
    assert_eq!(created["name"], "Support EU", "stored trimmed");
    let id = created["id"].as_str().expect("id");
    assert_eq!(
        uuid::Uuid::parse_str(id).expect("uuid").get_version_num(),
        7
    );

    let fetched = body(app.get_admin(&format!("/v1/admin/groups/{id}")).await).await;
    assert_eq!(fetched, created);

    let response = app
        .admin(Method::PATCH, &format!("/v1/admin/groups/{id}"))
        .json(&json!({"name": "Support Europe"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await["name"], "Support Europe");

    let response = app
        .admin(Method::DELETE, &format!("/v1/admin/groups/{id}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    let response = app.get_admin(&format!("/v1/admin/groups/{id}")).await;
    assert_problem(response, 404, "group_not_found").await;
    let response = app
        .admin(Method::DELETE, &format!("/v1/admin/groups/{id}"))
        .send()
        .await
        .expect("request");
    assert_problem(response, 404, "group_not_found").await;
}

#[tokio::test]
async fn group_names_are_unique_and_not_blank() {
    let app = spawn_app().await;
    app.create_group("Support EU").await;
    let response = app
        .post_admin("/v1/admin/groups", &json!({"name": "Support EU"}))
        .await;
    assert_problem(response, 409, "duplicate_name").await;

    let response = app
        .post_admin("/v1/admin/groups", &json!({"name": "   "}))
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "name");
    assert_eq!(problem["errors"][0]["code"], "required");

    let response = app
        .post_admin("/v1/admin/groups", &json!({"name": "n".repeat(201)}))
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["code"], "too_long");
}

#[tokio::test]
async fn collections_page_in_creation_order_with_an_opaque_cursor() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.create_group(&format!("group {i}")).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/admin/groups?limit=2&cursor={c}"),
            None => "/v1/admin/groups?limit=2".to_string(),
        };
        let page = body(app.get_admin(&path).await).await;
        pages += 1;
        for item in page["items"].as_array().expect("items") {
            seen.push(item["id"].as_str().expect("id").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids);
}

#[tokio::test]
async fn a_team_needs_an_existing_group() {
    let app = spawn_app().await;
    let missing = uuid::Uuid::now_v7();
    let response = app
        .post_admin(
            "/v1/admin/teams",
            &json!({"group_id": missing, "name": "Tier 1"}),
        )
        .await;
    let problem = assert_problem(response, 422, "unknown_group").await;
    assert_eq!(problem["errors"][0]["field"], "group_id");
    assert_eq!(problem["errors"][0]["code"], "unknown_group");
    let list = body(app.get_admin("/v1/admin/teams").await).await;
    assert_eq!(list["items"], json!([]), "nothing written");
}

#[tokio::test]
async fn teams_are_unique_by_name_within_a_group_and_filtered_by_group() {
    let app = spawn_app().await;
    let eu = app.create_group("Support EU").await;
    let us = app.create_group("Support US").await;
    let tier1 = app.create_team(&eu, "Tier 1").await;
    app.create_team(&us, "Tier 1").await; // same name, other group: fine
    let response = app
        .post_admin(
            "/v1/admin/teams",
            &json!({"group_id": eu, "name": "Tier 1"}),
        )
        .await;
    assert_problem(response, 409, "duplicate_name").await;

    let page = body(
        app.get_admin(&format!("/v1/admin/teams?group_id={eu}"))
            .await,
    )
    .await;
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], tier1.as_str());
    assert_eq!(items[0]["group_id"], eu.as_str());

    // A team cannot move to another group.
    let response = app
        .admin(Method::PATCH, &format!("/v1/admin/teams/{tier1}"))
        .json(&json!({"name": "Tier 1b", "group_id": us}))
        .send()
        .await
        .expect("request");
    assert_problem(response, 400, "unknown_field").await;
}

#[tokio::test]
async fn a_group_with_teams_cannot_be_deleted() {
    let app = spawn_app().await;
    let group = app.create_group("Support EU").await;
    let team = app.create_team(&group, "Tier 1").await;
    let response = app
        .admin(Method::DELETE, &format!("/v1/admin/groups/{group}"))
        .send()
        .await
        .expect("request");
    assert_problem(response, 409, "resource_in_use").await;
    assert_eq!(
        app.get_admin(&format!("/v1/admin/groups/{group}"))
            .await
            .status(),
        200
    );

    let response = app
        .admin(Method::DELETE, &format!("/v1/admin/teams/{team}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    let response = app
        .admin(Method::DELETE, &format!("/v1/admin/groups/{group}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
}
