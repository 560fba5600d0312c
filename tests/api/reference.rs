//! Reference data for integrations: `GET /v1/teams`, `GET /v1/staff`,
//! `GET /v1/categories` — only the integration's groups, the filters, the
//! scopes that may read them.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, body, spawn_app};

struct Reference {
    app: TestApp,
    team: String,
    /// A token with `cases:read`.
    token: String,
}

async fn reference() -> Reference {
    let app = spawn_app().await;
    let a = app.create_group("Group A").await;
    let b = app.create_group("Group B").await;
    let team = app.create_team(&a, "Tier 1").await;
    let other_team = app.create_team(&a, "Tier 2").await;
    app.create_team(&b, "Their team").await;
    let response = app
        .admin(Method::PUT, "/v1/admin/staff")
        .json(&json!({"staff": [
            {"staff_id": "A-1", "external_id": "crm-1", "name": "Ann Smith", "role": "agent", "group_id": a, "team_id": team},
            {"staff_id": "E-1", "external_id": "CRM-9", "name": "Eva", "role": "evaluator", "group_id": a, "team_id": other_team},
            {"staff_id": "S-1", "name": "Sam", "role": "supervisor", "group_id": a},
            {"staff_id": "A-2", "name": "Gone", "role": "agent", "group_id": a, "active": false},
            {"staff_id": "B-1", "external_id": "crm-2", "name": "Ann Other", "role": "agent", "group_id": b},
        ]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "{}", body(response).await);
    for name in ["Billing", "General"] {
        let response = app
            .post_admin("/v1/admin/categories", &json!({"name": name}))
            .await;
        assert_eq!(response.status(), 201);
    }
    let integration = app.create_integration("A only", &[&a]).await;
    let (token, _) = app.mint(&integration, &["cases:read"]).await;
    Reference { app, team, token }
}

impl Reference {
    async fn items(&self, token: &str, path: &str) -> Vec<Value> {
        let response = self.app.get_as(token, path).await;
        assert_eq!(response.status(), 200, "{path}");
        body(response).await["items"]
            .as_array()
            .cloned()
            .expect("items")
    }

    async fn staff_ids(&self, query: &str) -> Vec<String> {
        self.items(&self.token, &format!("/v1/staff{query}"))
            .await
            .iter()
            .map(|s| s["staff_id"].as_str().expect("staff_id").to_string())
            .collect()
    }
}

#[tokio::test]
async fn teams_and_staff_are_those_of_the_integrations_groups_only() {
    let r = reference().await;
    let teams: Vec<Value> = r
        .items(&r.token, "/v1/teams")
        .await
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(teams, [json!("Tier 1"), json!("Tier 2")]);

    let staff = r.items(&r.token, "/v1/staff").await;
    let ids: Vec<&str> = staff
        .iter()
        .filter_map(|s| s["staff_id"].as_str())
        .collect();
    assert_eq!(ids, ["A-1", "E-1", "S-1"], "active staff of group A only");
    assert_eq!(staff[0]["external_id"], "crm-1");
    assert_eq!(staff[0]["name"], "Ann Smith");
    assert_eq!(staff[0]["role"], "agent");
    assert_eq!(staff[0]["team_id"], r.team.as_str());
    assert_eq!(staff[0]["team_name"], "Tier 1");
    assert_eq!(staff[2]["team_id"], Value::Null);

    let categories: Vec<Value> = r
        .items(&r.token, "/v1/categories")
        .await
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(categories, [json!("Billing"), json!("General")]);

    // Paged like every list.
    let page = body(r.app.get_as(&r.token, "/v1/staff?limit=2").await).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    let cursor = page["next_cursor"].as_str().expect("cursor");
    let rest = r.staff_ids(&format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(rest, ["S-1"]);
}

#[tokio::test]
async fn staff_are_filtered_by_role_team_and_text() {
    let r = reference().await;
    assert_eq!(r.staff_ids("?role=Evaluator").await, ["E-1"]);
    assert_eq!(r.staff_ids(&format!("?team_id={}", r.team)).await, ["A-1"]);
    // `q`: the name, Staff ID or External ID, any letter case; never another group's.
    assert_eq!(r.staff_ids("?q=ann").await, ["A-1"]);
    assert_eq!(r.staff_ids("?q=crm").await, ["A-1", "E-1"]);
    assert_eq!(r.staff_ids("?q=s-1").await, ["S-1"]);
    assert_eq!(
        r.staff_ids("?q=%25").await,
        Vec::<String>::new(),
        "% is literal"
    );
    assert_eq!(r.staff_ids("?role=agent&q=crm").await, ["A-1"]);
    let response = r.app.get_as(&r.token, "/v1/staff?q=a%00b").await;
    assert_problem(response, 400, "invalid_query").await;
    let response = r.app.get_as(&r.token, "/v1/staff?role=boss").await;
    assert_problem(response, 400, "invalid_query").await;
}

#[tokio::test]
async fn the_case_and_import_scopes_may_read_reference_data_and_others_may_not() {
    let r = reference().await;
    let group = r.items(&r.token, "/v1/teams").await[0]["group_id"]
        .as_str()
        .expect("group")
        .to_string();
    let integration = r.app.create_integration("Scopes", &[&group]).await;
    for scope in ["cases:write", "imports:write"] {
        let (token, _) = r.app.mint(&integration, &[scope]).await;
        for path in ["/v1/teams", "/v1/staff", "/v1/categories"] {
            assert_eq!(
                r.app.get_as(&token, path).await.status(),
                200,
                "{scope} {path}"
            );
        }
    }
    let (token, _) = r.app.mint(&integration, &["customers:write"]).await;
    for path in ["/v1/teams", "/v1/staff", "/v1/categories"] {
        let problem =
            assert_problem(r.app.get_as(&token, path).await, 403, "insufficient_scope").await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("cases:read"),
            "{problem}"
        );
    }
}
