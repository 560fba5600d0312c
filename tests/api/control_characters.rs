//! A NUL (or any other control character) in any text a caller sends is a
//! 422 `control_character` naming the field, on both backends: PostgreSQL
//! cannot store a NUL (it answered 500 in 17 places), SQLite stored it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, body, spawn_app};

struct World {
    app: TestApp,
    group: String,
    token: String,
    campaign: String,
}

async fn world() -> World {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let response = app
        .post_admin(
            "/v1/admin/staff",
            &json!({"staff_id": "A-1", "name": "Ann", "role": "agent", "group_id": group}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let integration = app.create_integration("CRM", &[&group]).await;
    let (token, _) = app
        .mint(
            &integration,
            &["cases:write", "cases:read", "customers:write"],
        )
        .await;
    let campaign = app.create_campaign(&group, "North").await;
    World {
        app,
        group,
        token,
        campaign,
    }
}

impl World {
    async fn post(&self, path: &str, request: &Value) -> (StatusCode, Value) {
        let response = self
            .app
            .client
            .post(self.app.url(path))
            .bearer_auth(&self.token)
            .json(request)
            .send()
            .await
            .expect("request");
        (response.status(), body(response).await)
    }
}

/// The `(field, code)` of each problem.
fn problems(answer: &Value) -> Vec<(String, String)> {
    answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or_default().to_string(),
                        e["code"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_nul_in_any_field_of_a_case_is_named_and_nothing_is_written() {
    let w = world().await;
    for (case, field) in [
        (
            json!({"external_id": "C\u{0}1", "staff_id": "A-1"}),
            "external_id",
        ),
        (
            json!({"external_id": "\u{0}C-1", "staff_id": "A-1"}),
            "external_id",
        ),
        (
            json!({"external_id": "C-1", "staff_id": "A-\u{0}1"}),
            "staff_id",
        ),
        (
            json!({"external_id": "C-1", "external_staff_id": "crm\u{0}"}),
            "external_staff_id",
        ),
        (
            json!({"external_id": "C-1", "staff_id": "A-1", "category": "Bil\u{0}ling"}),
            "category",
        ),
        (
            json!({"external_id": "C-1", "staff_id": "A-1", "channel": "form\u{1b}"}),
            "channel",
        ),
        (
            json!({"external_id": "C-1", "staff_id": "A-1", "data": {"Note": "a\u{0}b"}}),
            "data.Note",
        ),
        (
            json!({"external_id": "C-1", "staff_id": "A-1", "data": {"No\u{7}te": "x"}}),
            "data[0]",
        ),
    ] {
        let (status, answer) = w.post("/v1/cases", &json!({"cases": [case]})).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(
            problems(&answer),
            vec![(field.to_string(), "control_character".to_string())],
            "{answer}"
        );
    }
    // A list's name too.
    let (status, answer) = w
        .post(
            "/v1/cases",
            &json!({"list": {"name": "Nov\u{0}", "assignment": {"kind": "group", "id": w.group}},
                    "cases": [{"external_id": "C-1", "staff_id": "A-1"}]}),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["code"], "control_character");
    // Line breaks and tabs are text in a custom column.
    let (status, answer) = w
        .post(
            "/v1/cases",
            &json!({"cases": [{"external_id": "C-1", "staff_id": "A-1", "data": {"Note": "line 1\nline 2\tend"}}]}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let stored = body(w.app.get_as(&w.token, "/v1/cases?external_id=C-1").await).await;
    assert_eq!(stored["items"][0]["data"]["Note"], "line 1\nline 2\tend");
}

#[tokio::test]
async fn a_nul_line_of_a_non_atomic_stream_is_a_failed_row_not_a_500() {
    let w = world().await;
    let mut lines: Vec<String> = (0..100)
        .map(|i| json!({"external_id": format!("S-{i}"), "staff_id": "A-1"}).to_string())
        .collect();
    lines.push(json!({"external_id": "S-\u{0}", "staff_id": "A-1"}).to_string());
    let response = w
        .app
        .client
        .post(w.app.url("/v1/cases?atomic=false"))
        .bearer_auth(&w.token)
        .header("content-type", "application/x-ndjson")
        .body(lines.join("\n"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let answer = body(response).await;
    assert_eq!(answer["created"], 100, "{answer}");
    assert_eq!(answer["failed"], 1, "{answer}");
    assert_eq!(answer["errors"][0]["code"], "control_character", "{answer}");
    assert_eq!(answer["errors"][0]["row"], 101, "{answer}");
}

#[tokio::test]
async fn a_nul_in_a_customer_or_an_admin_name_is_422() {
    let w = world().await;
    let response = w
        .app
        .client
        .put(
            w.app
                .url(&format!("/v1/campaigns/{}/customers", w.campaign)),
        )
        .bearer_auth(&w.token)
        .json(&json!({"customers": [{"name": "Ann\u{0}", "phone": "+442079400001"}]}))
        .send()
        .await
        .expect("request");
    // Customers answer each row's outcome: the row failed, nothing written.
    let answer = body(response).await;
    assert_eq!(answer["created"], 0, "{answer}");
    assert_eq!(answer["results"][0]["outcome"], "failed", "{answer}");
    assert_eq!(
        answer["results"][0]["errors"][0]["code"], "control_character",
        "{answer}"
    );

    for (path, request) in [
        ("/v1/admin/groups", json!({"name": "\u{0}Support"})),
        (
            "/v1/admin/staff",
            json!({"staff_id": "B\u{0}", "name": "Bob", "role": "agent", "group_id": w.group}),
        ),
        (
            "/v1/admin/staff",
            json!({"staff_id": "B-1", "external_id": "x\u{1f}", "name": "Bob", "role": "agent", "group_id": w.group}),
        ),
        (
            "/v1/admin/integrations",
            json!({"label": "CRM", "description": "bad \u{0} text", "groups": [w.group]}),
        ),
        ("/v1/admin/categories", json!({"name": "Bil\u{0}ling"})),
    ] {
        let response = w.app.post_admin(path, &request).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(
            problem["errors"][0]["code"], "control_character",
            "{path}: {problem}"
        );
    }
    // A description may hold line breaks.
    let response = w
        .app
        .post_admin(
            "/v1/admin/integrations",
            &json!({"label": "CRM 2", "description": "line 1\nline 2", "groups": [w.group]}),
        )
        .await;
    assert_eq!(response.status(), 201);
}
