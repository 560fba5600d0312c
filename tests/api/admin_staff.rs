//! Staff: unique Staff IDs, teams inside their group, the bulk upsert.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, body, spawn_app};

fn staff(staff_id: &str, group: &str, team: Option<&str>) -> Value {
    json!({
        "staff_id": staff_id, "external_id": format!("crm-{staff_id}"), "name": format!("Agent {staff_id}"),
        "role": "agent", "group_id": group, "team_id": team
    })
}

async fn staff_ids(app: &TestApp) -> Vec<String> {
    let page = body(app.get_admin("/v1/admin/staff").await).await;
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["staff_id"].as_str().expect("staff_id").to_string())
        .collect()
}

#[tokio::test]
async fn a_staff_member_is_created_read_updated_and_deleted() {
    let app = spawn_app().await;
    let group = app.create_group("Support EU").await;
    let team = app.create_team(&group, "Tier 1").await;
    let response = app
        .post_admin(
            "/v1/admin/staff",
            &json!({"staff_id": "A-1001", "external_id": "crm-77", "name": " Jana Novak ", "role": "Agent", "group_id": group, "team_id": team}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created = body(response).await;
    assert_eq!(created["staff_id"], "A-1001");
    assert_eq!(created["name"], "Jana Novak");
    assert_eq!(created["role"], "agent", "stored canonically");
    assert_eq!(created["active"], true);
    assert!(
        created.get("id").is_none(),
        "the internal id is not exposed"
    );

    let fetched = body(app.get_admin("/v1/admin/staff/A-1001").await).await;
    assert_eq!(fetched, created);

    let response = app
        .admin(Method::PATCH, "/v1/admin/staff/A-1001")
        .json(&json!({"active": false, "team_id": null, "role": "evaluator"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let updated = body(response).await;
    assert_eq!(updated["active"], false);
    assert_eq!(updated["team_id"], Value::Null);
    assert_eq!(updated["role"], "evaluator");
    assert_eq!(updated["name"], "Jana Novak", "absent fields stay");
    assert_eq!(updated["external_id"], "crm-77");

    let response = app
        .admin(Method::DELETE, "/v1/admin/staff/A-1001")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    assert_problem(
        app.get_admin("/v1/admin/staff/A-1001").await,
        404,
        "staff_not_found",
    )
    .await;
}

#[tokio::test]
async fn a_duplicate_staff_id_is_409() {
    let app = spawn_app().await;
    let group = app.create_group("Support EU").await;
    assert_eq!(
        app.post_admin("/v1/admin/staff", &staff("A-1", &group, None))
            .await
            .status(),
        201
    );
    let response = app
        .post_admin("/v1/admin/staff", &staff("A-1", &group, None))
        .await;
    let problem = assert_problem(response, 409, "duplicate_staff_id").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("A-1")
    );
    assert_eq!(staff_ids(&app).await, vec!["A-1"]);
}

#[tokio::test]
async fn staff_references_are_checked() {
    let app = spawn_app().await;
    let eu = app.create_group("Support EU").await;
    let us = app.create_group("Support US").await;
    let us_team = app.create_team(&us, "Tier 1").await;

    let missing = uuid::Uuid::now_v7().to_string();
    let response = app
        .post_admin("/v1/admin/staff", &staff("A-1", &missing, None))
        .await;
    let problem = assert_problem(response, 422, "unknown_group").await;
    assert_eq!(problem["errors"][0]["field"], "group_id");

    // A team of another group is no team of this one.
    let response = app
        .post_admin("/v1/admin/staff", &staff("A-1", &eu, Some(&us_team)))
        .await;
    let problem = assert_problem(response, 422, "unknown_team").await;
    assert_eq!(problem["errors"][0]["field"], "team_id");
    assert!(staff_ids(&app).await.is_empty());

    let mut bad = staff("A-1", &eu, None);
    bad["role"] = json!("boss");
    bad["staff_id"] = json!("");
    let response = app.post_admin("/v1/admin/staff", &bad).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    let errors: Vec<(String, String)> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap_or_default().into(),
                e["code"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            ("role".to_string(), "invalid_enum".to_string()),
            ("staff_id".to_string(), "required".to_string())
        ]
    );
}

#[tokio::test]
async fn the_bulk_upsert_creates_and_updates_by_staff_id() {
    let app = spawn_app().await;
    let group = app.create_group("Support EU").await;
    let team = app.create_team(&group, "Tier 1").await;
    assert_eq!(
        app.post_admin("/v1/admin/staff", &staff("A-1", &group, None))
            .await
            .status(),
        201
    );

    let mut changed = staff("A-1", &group, Some(&team));
    changed["name"] = json!("Renamed");
    let response = app
        .admin(Method::PUT, "/v1/admin/staff")
        .json(&json!({"staff": [changed, staff("A-2", &group, None), staff("A-3", &group, Some(&team))]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let result = body(response).await;
    assert_eq!(result["created"], 2);
    assert_eq!(result["updated"], 1);
    assert_eq!(result["staff"][0]["name"], "Renamed");
    assert_eq!(result["staff"][0]["team_id"], team.as_str());

    assert_eq!(staff_ids(&app).await, vec!["A-1", "A-2", "A-3"]);
    let a1 = body(app.get_admin("/v1/admin/staff/A-1").await).await;
    assert_eq!(a1["name"], "Renamed");
}

#[tokio::test]
async fn a_bulk_upsert_with_a_bad_row_writes_nothing_and_lists_every_problem() {
    let app = spawn_app().await;
    let group = app.create_group("Support EU").await;
    let missing = uuid::Uuid::now_v7().to_string();
    let mut bad_role = staff("A-3", &group, None);
    bad_role["role"] = json!("manager");
    let response = app
        .admin(Method::PUT, "/v1/admin/staff")
        .json(&json!({"staff": [
            staff("A-1", &group, None),
            staff("A-2", &missing, None),
            bad_role,
            staff("A-1", &group, None),
        ]}))
        .send()
        .await
        .expect("request");
    let problem = assert_problem(response, 422, "validation_failed").await;
    let errors: Vec<(u64, String, String)> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap_or_default(),
                e["field"].as_str().unwrap_or_default().into(),
                e["code"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (2, "group_id".into(), "unknown_group".into()),
            (3, "role".into(), "invalid_enum".into()),
            (4, "staff_id".into(), "duplicate_value".into()),
        ]
    );
    assert!(staff_ids(&app).await.is_empty(), "nothing written");
}

#[tokio::test]
async fn the_bulk_upsert_limits_its_size() {
    let app = spawn_app().await;
    let response = app
        .admin(Method::PUT, "/v1/admin/staff")
        .json(&json!({"staff": []}))
        .send()
        .await
        .expect("request");
    assert_problem(response, 422, "validation_failed").await;

    let group = app.create_group("Support EU").await;
    let rows: Vec<Value> = (0..10_001)
        .map(|i| staff(&format!("S{i}"), &group, None))
        .collect();
    let response = app
        .admin(Method::PUT, "/v1/admin/staff")
        .json(&json!({"staff": rows}))
        .send()
        .await
        .expect("request");
    let problem = assert_problem(response, 422, "too_many_items").await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("10000") && detail.contains("10001"),
        "{detail}"
    );
}
