//! `POST /v1/cases` (JSON) and reading cases back: validation, staff in the
//! integration's groups, lists, on_conflict, atomic and not.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, body, spawn_app, without_request_id};

/// Group A with staff A-1 (crm-1), an inactive A-2, evaluator E-1 and a team;
/// group B with B-1; category Billing; an integration of group A.
struct World {
    app: TestApp,
    group_a: String,
    group_b: String,
    team_a: String,
    token: String,
}

async fn world() -> World {
    let app = spawn_app().await;
    let group_a = app.create_group("Group A").await;
    let group_b = app.create_group("Group B").await;
    let team_a = app.create_team(&group_a, "Tier 1").await;
    let response = app
        .admin(Method::PUT, "/v1/admin/staff")
        .json(&json!({"staff": [
            {"staff_id": "A-1", "external_id": "crm-1", "name": "Ann", "role": "agent", "group_id": group_a, "team_id": team_a},
            {"staff_id": "A-2", "external_id": "crm-2", "name": "Al", "role": "agent", "group_id": group_a, "active": false},
            {"staff_id": "E-1", "name": "Eva", "role": "evaluator", "group_id": group_a},
            {"staff_id": "B-1", "external_id": "crm-b", "name": "Bob", "role": "agent", "group_id": group_b},
        ]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.post_admin("/v1/admin/categories", &json!({"name": "Billing"}))
            .await
            .status(),
        201
    );
    let integration = app.create_integration("CRM", &[&group_a]).await;
    let (token, _) = app.mint(&integration, &["cases:write", "cases:read"]).await;
    World {
        app,
        group_a,
        group_b,
        team_a,
        token,
    }
}

impl World {
    async fn post(&self, request: &Value) -> Response {
        self.app
            .client
            .post(self.app.url("/v1/cases"))
            .bearer_auth(&self.token)
            .json(request)
            .send()
            .await
            .expect("request")
    }

    async fn get(&self, path: &str) -> Value {
        let response = self.app.get_as(&self.token, path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        body(response).await
    }

    /// Adds (or replaces) staff members through the admin API.
    async fn put_staff(&self, staff: Value) {
        let response = self
            .app
            .admin(Method::PUT, "/v1/admin/staff")
            .json(&json!({ "staff": staff }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
    }

    async fn stored(&self) -> Vec<Value> {
        self.get("/v1/cases?limit=1000").await["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn errors_of(problem: &Value) -> Vec<(u64, String, String)> {
    problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap_or_default(),
                e["field"].as_str().unwrap_or_default().to_string(),
                e["code"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn valid_cases_are_written_into_a_new_list() {
    let w = world().await;
    let response = w
        .post(&json!({
            "list": {"name": "November calls", "assignment": {"kind": "team", "id": w.team_a}},
            "cases": [
                {"external_id": "T-1", "staff_id": "A-1", "channel": "Live hotline", "priority": "HIGH", "category": "billing",
                 "occurred_at": "2026-11-20T16:05:00+02:00", "data": {"Zeta": "last?", "Alpha": 2, "Flag": true}},
                {"external_id": "T-2", "external_staff_id": "crm-1", "channel": "form"}
            ]
        }))
        .await;
    assert_eq!(response.status(), 201);
    let created = body(response).await;
    assert_eq!(created["created"], 2);
    assert_eq!(created["cases"][0]["external_id"], "T-1");
    assert_eq!(created["cases"][0]["outcome"], "created");
    let list_id = created["list_id"].as_str().expect("list id").to_string();

    let cases = w.get(&format!("/v1/cases?list_id={list_id}")).await;
    let first = &cases["items"][0];
    assert_eq!(first["id"], created["cases"][0]["id"]);
    assert_eq!(first["staff_id"], "A-1");
    assert_eq!(first["group_id"], w.group_a.as_str());
    assert_eq!(first["channel"], "live_hotline");
    assert_eq!(first["priority"], "high");
    assert_eq!(first["status"], "open");
    assert_eq!(first["category"], "Billing");
    assert_eq!(first["occurred_at"], "2026-11-20T14:05:00Z");
    assert_eq!(
        serde_json::to_string(&first["data"]).expect("json"),
        r#"{"Zeta":"last?","Alpha":2,"Flag":true}"#,
        "custom columns keep their order"
    );
    let second = &cases["items"][1];
    assert_eq!(
        second["staff_id"], "A-1",
        "resolved from the External Staff ID"
    );
    assert_eq!(second["external_staff_id"], "crm-1");

    let list = w.get(&format!("/v1/lists/{list_id}")).await;
    assert_eq!(list["name"], "November calls");
    assert_eq!(list["assignment"], json!({"kind": "team", "id": w.team_a}));
    assert_eq!(list["source"], "api");
    assert_eq!(list["case_count"], 2);
    assert_eq!(w.get("/v1/lists").await["items"][0]["id"], list_id.as_str());

    let one = w
        .get(&format!(
            "/v1/cases/{}",
            created["cases"][1]["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(one["external_id"], "T-2");
    let by_external = w.get("/v1/cases?external_id=T-2").await;
    assert_eq!(by_external["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn cases_read_back_by_filter_a_page_at_a_time_in_creation_order() {
    let w = world().await;
    w.put_staff(json!([
        {"staff_id": "A-3", "name": "Ada", "role": "agent", "group_id": w.group_a},
    ]))
    .await;
    let mut ids = Vec::new();
    for request in [
        json!({"cases": [
            {"external_id": "R-1", "staff_id": "A-1"},
            {"external_id": "R-2", "staff_id": "A-3"},
            {"external_id": "R-3", "staff_id": "A-1"},
        ]}),
        json!({
            "list": {"name": "Second", "assignment": {"kind": "group", "id": w.group_a}},
            "cases": [
                {"external_id": "R-4", "staff_id": "A-3"},
                {"external_id": "R-5", "staff_id": "A-1"},
            ]
        }),
    ] {
        let response = w.post(&request).await;
        assert_eq!(response.status(), 201);
        let created = body(response).await;
        for case in created["cases"].as_array().expect("cases") {
            ids.push(case["id"].as_str().expect("id").to_string());
        }
    }

    // Pages of two, followed by their cursors: every case once, in the
    // order they were created.
    let mut paged = Vec::new();
    let mut path = "/v1/cases?limit=2".to_string();
    loop {
        let page = w.get(&path).await;
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        paged.extend(
            items
                .iter()
                .map(|c| c["id"].as_str().expect("id").to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/cases?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, ids);

    // Filters: a staff member's cases, a list's, one Case ID; combined.
    let external_ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|c| c["external_id"].as_str().expect("external id").to_string())
            .collect()
    };
    assert_eq!(
        external_ids(&w.get("/v1/cases?staff_id=A-3").await),
        ["R-2", "R-4"]
    );
    let list_id = w.get("/v1/lists").await["items"][0]["id"]
        .as_str()
        .expect("list")
        .to_string();
    assert_eq!(
        external_ids(&w.get(&format!("/v1/cases?list_id={list_id}")).await),
        ["R-4", "R-5"]
    );
    assert_eq!(
        external_ids(
            &w.get(&format!("/v1/cases?list_id={list_id}&staff_id=A-1"))
                .await
        ),
        ["R-5"]
    );
    assert_eq!(
        external_ids(&w.get("/v1/cases?external_id=R-3").await),
        ["R-3"]
    );
    assert!(external_ids(&w.get("/v1/cases?staff_id=B-1").await).is_empty());

    // Bad paging and filters are 400s with their codes.
    for (path, code) in [
        ("/v1/cases?cursor=not-a-cursor", "invalid_cursor"),
        ("/v1/cases?limit=0", "invalid_query"),
        ("/v1/cases?limit=1001", "invalid_query"),
        ("/v1/cases?list_id=not-a-uuid", "invalid_query"),
    ] {
        let response = w.app.get_as(&w.token, path).await;
        assert_problem(response, 400, code).await;
    }
}

#[tokio::test]
async fn one_invalid_case_fails_an_atomic_request_listing_every_problem() {
    let w = world().await;
    let response = w
        .post(&json!({"cases": [
            {"external_id": "T-1", "staff_id": "A-1"},
            {"external_id": "T-2", "staff_id": "A-1", "channel": "fax"},
            {"external_id": "T-3", "staff_id": "B-1"},
            {"external_id": "T-4", "staff_id": "A-1", "channel": "automated_hotline", "category": "Sales"},
            {"staff_id": "A-1", "occurred_at": "yesterday"},
            {"external_id": "T-6", "staff_id": "A-2"},
            {"external_id": "T-1", "staff_id": "A-1"},
        ]}))
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(
        errors_of(&problem),
        vec![
            (2, "channel".into(), "invalid_enum".into()),
            (3, "staff_id".into(), "unknown_staff_id".into()),
            (4, "channel".into(), "channel_not_importable".into()),
            (4, "category".into(), "unknown_category".into()),
            (5, "external_id".into(), "missing_external_id".into()),
            (5, "occurred_at".into(), "invalid_date".into()),
            (6, "staff_id".into(), "staff_inactive".into()),
            (7, "external_id".into(), "duplicate_in_request".into()),
        ]
    );
    assert!(w.stored().await.is_empty(), "nothing written");
}

#[tokio::test]
async fn a_case_left_in_a_group_the_integration_lost_is_neither_skipped_nor_updated() {
    let w = world().await;
    let app = &w.app;
    let integration = app
        .create_integration("Both", &[&w.group_a, &w.group_b])
        .await;
    let (token, _) = app.mint(&integration, &["cases:write"]).await;
    let send = |request: Value| {
        app.client
            .post(app.url("/v1/cases"))
            .bearer_auth(&token)
            .json(&request)
            .send()
    };
    let response =
        send(json!({"cases": [{"external_id": "L-1", "staff_id": "A-1", "data": {"v": 1}}]}))
            .await
            .expect("request");
    assert_eq!(response.status(), 201);
    let response = app
        .admin(
            Method::PATCH,
            &format!("/v1/admin/integrations/{integration}"),
        )
        .json(&json!({"groups": [w.group_b]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);

    // Group A's case keeps its id hidden and its values, whatever the
    // integration asks.
    for on_conflict in ["update", "skip", "error"] {
        let response = send(json!({"on_conflict": on_conflict, "cases": [
            {"external_id": "L-1", "staff_id": "B-1", "data": {"v": 2}}
        ]}))
        .await
        .expect("request");
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(
            errors_of(&problem),
            [(
                1,
                "external_id".to_string(),
                "duplicate_external_id".to_string()
            )],
            "{on_conflict}"
        );
        assert!(!problem.to_string().contains("\"id\""), "{problem}");
        let response = send(
            json!({"on_conflict": on_conflict, "atomic": false, "cases": [
                {"external_id": "L-1", "staff_id": "B-1", "data": {"v": 2}}
            ]}),
        )
        .await
        .expect("request");
        assert_eq!(response.status(), 200);
        let results = body(response).await;
        assert_eq!(results["failed"], 1, "{on_conflict}: {results}");
        assert!(results["results"][0]["id"].is_null(), "{results}");
    }
    let stored = w.get("/v1/cases?external_id=L-1").await;
    assert_eq!(stored["items"][0]["staff_id"], "A-1");
    assert_eq!(stored["items"][0]["group_id"], w.group_a.as_str());
    assert_eq!(stored["items"][0]["data"], json!({"v": 1}));
}

#[tokio::test]
async fn a_non_atomic_request_answers_every_row_however_many_fail() {
    let w = world().await;
    let mut cases: Vec<Value> = (0..1_500)
        .map(|i| json!({"external_id": format!("F-{i}"), "staff_id": "A-1", "channel": "fax"}))
        .collect();
    cases.push(json!({"external_id": "F-ok", "staff_id": "A-1"}));
    let response = w.post(&json!({"atomic": false, "cases": cases})).await;
    assert_eq!(response.status(), 200);
    let answer = body(response).await;
    assert_eq!(
        (answer["created"].clone(), answer["failed"].clone()),
        (json!(1), json!(1_500))
    );
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 1_501);
    let rows: Vec<u64> = results
        .iter()
        .map(|r| r["row"].as_u64().expect("row"))
        .collect();
    assert_eq!(rows, (1..=1_501).collect::<Vec<u64>>());
    assert_eq!(results[1_499]["errors"][0]["code"], "invalid_enum");
    assert!(results[1_500]["id"].is_string());
}

#[tokio::test]
async fn another_groups_staff_is_answered_like_an_unknown_one() {
    let w = world().await;
    let response = w
        .post(&json!({"cases": [{"external_id": "T-1", "staff_id": "B-1"}]}))
        .await;
    let other = assert_problem(response, 422, "validation_failed").await;
    let response = w
        .post(&json!({"cases": [{"external_id": "T-1", "staff_id": "NOPE"}]}))
        .await;
    let missing = assert_problem(response, 422, "validation_failed").await;
    let strip = |p: Value| {
        let mut e = p["errors"][0].clone();
        e["message"] = json!(
            e["message"]
                .as_str()
                .unwrap_or_default()
                .replace("B-1", "?")
                .replace("NOPE", "?")
        );
        e
    };
    assert_eq!(strip(other), strip(missing));

    let response = w
        .post(&json!({"cases": [{"external_id": "T-1", "external_staff_id": "crm-b"}]}))
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(
        errors_of(&problem),
        vec![(1, "external_staff_id".into(), "unknown_staff_id".into())]
    );

    let response = w
        .post(&json!({"cases": [{"external_id": "T-1", "staff_id": "A-1", "external_staff_id": "crm-2"}]}))
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(
        errors_of(&problem),
        vec![(1, "external_staff_id".into(), "staff_id_mismatch".into())]
    );
}

#[tokio::test]
async fn a_non_atomic_request_writes_the_valid_cases_and_reports_each_row() {
    let w = world().await;
    let response = w
        .post(&json!({"atomic": false, "cases": [
            {"external_id": "T-1", "staff_id": "A-1"},
            {"external_id": "T-2", "staff_id": "A-1", "priority": "urgent"},
            {"external_id": "T-3", "external_staff_id": "crm-1"},
        ]}))
        .await;
    assert_eq!(response.status(), 200);
    let result = body(response).await;
    assert_eq!(result["created"], 2);
    assert_eq!(result["failed"], 1);
    assert_eq!(result["results"][0]["row"], 1);
    assert!(result["results"][0]["id"].is_string());
    assert_eq!(result["results"][1]["row"], 2);
    assert_eq!(result["results"][1]["errors"][0]["code"], "invalid_enum");
    assert_eq!(result["results"][2]["row"], 3);
    let stored: Vec<String> = w
        .stored()
        .await
        .iter()
        .map(|c| c["external_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(stored, vec!["T-1", "T-3"]);
}

#[tokio::test]
async fn on_conflict_decides_what_a_second_send_does() {
    let w = world().await;
    let first = w
        .post(&json!({"cases": [{"external_id": "T-1", "staff_id": "A-1", "data": {"v": 1}}]}))
        .await;
    assert_eq!(first.status(), 201);
    let id = body(first).await["cases"][0]["id"].clone();

    let again =
        json!({"external_id": "T-1", "staff_id": "A-1", "priority": "low", "data": {"v": 2}});
    let response = w.post(&json!({"cases": [again]})).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(
        errors_of(&problem),
        vec![(1, "external_id".into(), "duplicate_external_id".into())]
    );

    let response = w
        .post(&json!({"on_conflict": "skip", "cases": [again, {"external_id": "T-2", "staff_id": "A-1"}]}))
        .await;
    assert_eq!(response.status(), 201);
    let skipped = body(response).await;
    assert_eq!(
        (skipped["created"].clone(), skipped["skipped"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(skipped["cases"][0]["id"], id);
    assert_eq!(skipped["cases"][0]["outcome"], "skipped");
    let stored = w.get("/v1/cases?external_id=T-1").await;
    assert_eq!(
        stored["items"][0]["data"],
        json!({"v": 1}),
        "a skipped case is untouched"
    );

    let response = w
        .post(&json!({
            "on_conflict": "update",
            "list": {"name": "Redo", "assignment": {"kind": "evaluator", "id": "E-1"}},
            "cases": [again]
        }))
        .await;
    assert_eq!(response.status(), 201);
    let updated = body(response).await;
    assert_eq!(updated["updated"], 1);
    assert_eq!(updated["cases"][0]["id"], id, "the same case");
    let stored = w.get("/v1/cases?external_id=T-1").await;
    assert_eq!(stored["items"][0]["data"], json!({"v": 2}));
    assert_eq!(stored["items"][0]["priority"], "low");
    assert_eq!(
        stored["items"][0]["list_id"], updated["list_id"],
        "moved into the new list"
    );
    assert_eq!(w.stored().await.len(), 2);
}

#[tokio::test]
async fn an_update_changes_only_what_the_input_carries_and_merges_data_in_order() {
    let w = world().await;
    let first = w
        .post(
            &json!({"cases": [{"external_id": "T-1", "staff_id": "A-1", "channel": "form",
            "status": "in_progress", "priority": "high", "occurred_at": "2026-11-20T14:05:00Z",
            "data": {"Film": "Jaws", "Rating": 5, "Year": 1975}}]}),
        )
        .await;
    assert_eq!(first.status(), 201);
    let response = w
        .post(&json!({"on_conflict": "update", "cases": [
            {"external_id": "T-1", "staff_id": "A-1", "data": {"Rating": 4, "Notes": "re-rated", "Film": "Heat"}}]}))
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(body(response).await["updated"], 1);
    let stored = w.get("/v1/cases?external_id=T-1").await["items"][0].clone();
    assert_eq!(stored["channel"], "form");
    assert_eq!(stored["status"], "in_progress");
    assert_eq!(stored["priority"], "high");
    assert_eq!(stored["occurred_at"], "2026-11-20T14:05:00Z");
    assert_eq!(
        serde_json::to_string(&stored["data"]).expect("json"),
        r#"{"Film":"Heat","Rating":4,"Year":1975,"Notes":"re-rated"}"#,
        "keys sent replace theirs, the others stay, new ones come after, in order"
    );

    // What it carries does change.
    w.post(&json!({"on_conflict": "update", "cases": [
        {"external_id": "T-1", "staff_id": "A-1", "status": "closed", "channel": "survey"}]}))
        .await;
    let stored = w.get("/v1/cases?external_id=T-1").await["items"][0].clone();
    assert_eq!(stored["status"], "closed");
    assert_eq!(stored["channel"], "survey");
    assert_eq!(stored["priority"], "high");
    assert_eq!(stored["data"]["Notes"], "re-rated");
}

#[tokio::test]
async fn a_list_is_assigned_only_within_the_integrations_groups() {
    let w = world().await;
    let team_b = w.app.create_team(&w.group_b, "Tier B").await;
    for assignment in [
        json!({"kind": "group", "id": w.group_b}),
        json!({"kind": "team", "id": team_b}),
        json!({"kind": "evaluator", "id": "B-1"}),
        json!({"kind": "evaluator", "id": "A-1"}),
        json!({"kind": "team", "id": "not-a-uuid"}),
    ] {
        let response = w
            .post(&json!({"list": {"name": "L", "assignment": assignment}, "cases": [{"external_id": "T-1", "staff_id": "A-1"}]}))
            .await;
        let problem = assert_problem(response, 422, "unknown_assignment").await;
        assert_eq!(problem["errors"][0]["field"], "list.assignment.id");
    }
    let response = w
        .post(&json!({"list": {"name": "L", "assignment": {"kind": "group", "id": w.group_a}}, "cases": [{"external_id": "T-1", "staff_id": "A-1"}]}))
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(w.stored().await.len(), 1);
}

#[tokio::test]
async fn cases_and_lists_of_another_group_do_not_exist_for_the_integration() {
    let w = world().await;
    // An integration of group B sends a case and a list.
    let integration_b = w.app.create_integration("B system", &[&w.group_b]).await;
    let (token_b, _) = w
        .app
        .mint(&integration_b, &["cases:write", "cases:read"])
        .await;
    let response = w
        .app
        .client
        .post(w.app.url("/v1/cases"))
        .bearer_auth(&token_b)
        .json(
            &json!({"list": {"name": "B list", "assignment": {"kind": "group", "id": w.group_b}},
                      "cases": [{"external_id": "T-1", "staff_id": "B-1"}]}),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    let created = body(response).await;
    let case_b = created["cases"][0]["id"].as_str().expect("id").to_string();
    let list_b = created["list_id"].as_str().expect("id").to_string();

    let other = assert_problem(
        w.app.get_as(&w.token, &format!("/v1/cases/{case_b}")).await,
        404,
        "case_not_found",
    )
    .await;
    let missing = assert_problem(
        w.app
            .get_as(&w.token, &format!("/v1/cases/{}", uuid::Uuid::now_v7()))
            .await,
        404,
        "case_not_found",
    )
    .await;
    assert_eq!(without_request_id(other), without_request_id(missing));
    assert_problem(
        w.app.get_as(&w.token, &format!("/v1/lists/{list_b}")).await,
        404,
        "list_not_found",
    )
    .await;
    assert!(w.stored().await.is_empty());
    assert_eq!(w.get("/v1/lists").await["items"], json!([]));
    // The same Case ID is free for another integration.
    let response = w
        .post(&json!({"cases": [{"external_id": "T-1", "staff_id": "A-1"}]}))
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn malformed_requests_answer_400() {
    let w = world().await;
    let response = w
        .post(&json!({"cases": [{"external_id": "T-1", "staff_id": "A-1", "chanel": "form"}]}))
        .await;
    let problem = assert_problem(response, 400, "unknown_field").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("chanel")
    );
    let response = w.post(&json!({"cases": []})).await;
    assert_problem(response, 422, "validation_failed").await;
    let response = w
        .post(
            &json!({"on_conflict": "merge", "cases": [{"external_id": "T-1", "staff_id": "A-1"}]}),
        )
        .await;
    assert_problem(response, 400, "invalid_body").await;
    // Scopes: reading needs cases:read, writing cases:write.
    let integration = w.app.create_integration("Reader", &[&w.group_a]).await;
    let (reader, _) = w.app.mint(&integration, &["cases:read"]).await;
    let response = w
        .app
        .client
        .post(w.app.url("/v1/cases"))
        .bearer_auth(&reader)
        .json(&json!({"cases": [{"external_id": "T-1", "staff_id": "A-1"}]}))
        .send()
        .await
        .expect("request");
    assert_problem(response, 403, "insufficient_scope").await;
}

#[tokio::test]
async fn a_bad_case_near_the_end_of_100000_leaves_nothing_written() {
    let w = world().await;
    let mut cases: Vec<Value> = (0..100_000)
        .map(|i| json!({"external_id": format!("T-{i}"), "staff_id": "A-1", "channel": "form",
                         "data": {"a": i, "b": "x", "c": "y", "d": "z", "e": 1, "f": 2, "g": 3, "h": 4, "i": 5, "j": 6}}))
        .collect();
    cases[99_998]["channel"] = json!("pigeon");
    let response = w.post(&json!({"cases": cases})).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(
        errors_of(&problem),
        vec![(99_999, "channel".into(), "invalid_enum".into())]
    );
    assert!(w.stored().await.is_empty(), "nothing written");

    cases[99_998]["channel"] = json!("survey");
    let response = w.post(&json!({"cases": cases})).await;
    assert_eq!(response.status(), 201);
    assert_eq!(body(response).await["created"], 100_000);
    let page = w.get("/v1/cases?limit=1&external_id=T-99998").await;
    assert_eq!(page["items"][0]["channel"], "survey");
}

#[tokio::test]
async fn metrics_count_accepted_and_rejected_cases() {
    let w = world().await;
    let response = w
        .post(&json!({"atomic": false, "cases": [{"external_id": "T-1", "staff_id": "A-1"}, {"external_id": "T-2", "staff_id": "X"}]}))
        .await;
    assert_eq!(response.status(), 200);
    let text = w.app.metrics().await;
    let me = w.get("/v1/me").await;
    let integration = me["integration"]["id"].as_str().expect("id");
    assert!(
        text.contains(&format!(
            r#"intake_rows_accepted_total{{integration="{integration}",path="json"}} 1"#
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            r#"intake_rows_rejected_total{{integration="{integration}",path="json"}} 1"#
        )),
        "{text}"
    );
    // The valid case was a small request's: written by the group commit,
    // alone (nothing else was being written).
    for line in [
        "intake_case_groups_total 1",
        "intake_case_grouped_requests_total 1",
        "intake_case_groups_refused_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}: {text}");
    }
}

// ---- NDJSON ---------------------------------------------------------------

impl World {
    async fn post_ndjson(&self, query: &str, body: String) -> Response {
        self.app
            .client
            .post(self.app.url(&format!("/v1/cases{query}")))
            .bearer_auth(&self.token)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .expect("request")
    }
}

fn ndjson(lines: &[Value]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[tokio::test]
async fn an_ndjson_stream_is_written_with_its_options_in_the_query() {
    let w = world().await;
    let lines = ndjson(&[
        json!({"external_id": "N-1", "staff_id": "A-1", "channel": "survey"}),
        json!({"external_id": "N-2", "external_staff_id": "crm-1", "data": {"b": 1, "a": 2}}),
    ]);
    // Team and evaluator given: the left-most (team) is used.
    let query = format!(
        "?list_name=Stream&assign_team={}&assign_evaluator=E-1",
        w.team_a
    );
    let response = w.post_ndjson(&query, lines).await;
    assert_eq!(response.status(), 201);
    let summary = body(response).await;
    assert_eq!(summary["created"], 2);
    assert_eq!(summary["failed"], 0);
    assert!(
        summary.get("cases").is_none(),
        "a stream's answer does not list ids"
    );
    let list_id = summary["list_id"].as_str().expect("list");
    let list = w.get(&format!("/v1/lists/{list_id}")).await;
    assert_eq!(list["assignment"], json!({"kind": "team", "id": w.team_a}));
    assert_eq!(list["case_count"], 2);
    let stored = w.stored().await;
    assert_eq!(
        serde_json::to_string(&stored[1]["data"]).expect("json"),
        r#"{"b":1,"a":2}"#
    );
}

#[tokio::test]
async fn an_atomic_stream_with_a_bad_line_writes_nothing_across_batches() {
    let w = world().await;
    let mut lines: Vec<String> = (0..12_000)
        .map(|i| json!({"external_id": format!("N-{i}"), "staff_id": "A-1"}).to_string())
        .collect();
    lines[11_998] =
        json!({"external_id": "N-11998", "staff_id": "A-1", "priority": "someday"}).to_string();
    lines.insert(5, String::new()); // a blank line is not a case
    lines.insert(7, "{\"external_id\": ".to_string());
    let response = w.post_ndjson("", lines.join("\r\n")).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(
        errors_of(&problem),
        vec![
            (7, String::new(), "malformed_json".into()),
            (12_000, "priority".into(), "invalid_enum".into())
        ]
    );
    assert!(
        w.stored().await.is_empty(),
        "the first two batches were rolled back"
    );
}

#[tokio::test]
async fn a_non_atomic_stream_writes_the_valid_lines_and_counts_the_rest() {
    let w = world().await;
    let lines = ndjson(&[
        json!({"external_id": "N-1", "staff_id": "A-1"}),
        json!({"external_id": "N-2", "staff_id": "B-1"}),
        json!({"external_id": "N-3", "staff_id": "A-1", "chanel": "form"}),
        json!({"external_id": "N-1", "staff_id": "A-1"}),
    ]);
    let response = w.post_ndjson("?atomic=false", lines).await;
    assert_eq!(response.status(), 200);
    let summary = body(response).await;
    assert_eq!(summary["created"], 1);
    assert_eq!(summary["failed"], 3);
    let errors = errors_of(&summary);
    assert_eq!(
        errors,
        vec![
            (2, "staff_id".into(), "unknown_staff_id".into()),
            (3, String::new(), "unknown_field".into()),
            (4, "external_id".into(), "duplicate_in_request".into()),
        ]
    );
    assert_eq!(w.stored().await.len(), 1);
}

#[tokio::test]
async fn a_stream_broken_off_midway_leaves_nothing_written() {
    use tokio::io::AsyncWriteExt;
    let w = world().await;
    let address = w.app.address.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let head = format!(
        "POST /v1/cases HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n",
        w.token
    );
    socket.write_all(head.as_bytes()).await.expect("write");
    // More than one batch (5,000 cases), so the first batch is written in
    // the stream's open transaction before the client goes away.
    let lines: String = (0..6_000)
        .map(|i| {
            format!(
                "{}\n",
                json!({"external_id": format!("N-{i}"), "staff_id": "A-1"})
            )
        })
        .collect();
    for chunk in lines.as_bytes().chunks(64 * 1024) {
        socket
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .expect("write");
        socket.write_all(chunk).await.expect("write");
        socket.write_all(b"\r\n").await.expect("write");
    }
    socket.flush().await.expect("flush");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    drop(socket); // no terminating chunk: the stream is broken off
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(w.stored().await.is_empty(), "nothing half-written");
    // The service carries on.
    let response = w
        .post_ndjson(
            "",
            ndjson(&[json!({"external_id": "N-1", "staff_id": "A-1"})]),
        )
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_long_wrong_value_is_not_echoed_in_the_answer() {
    // serde quotes a string of the wrong type (or an unknown key) whole.
    let w = world().await;
    let long = "z".repeat(100_000);
    let response = w
        .post(&json!({"cases": [{"external_id": "T-1", "staff_id": "A-1", "data": long}]}))
        .await;
    let problem = assert_problem(response, 400, "invalid_body").await;
    let detail = problem["detail"].as_str().expect("detail");
    assert!(detail.len() < 1_000, "{detail}");
    assert!(detail.contains("line 1 column"), "{detail}");

    let mut lines = String::new();
    for i in 0..3 {
        lines.push_str(&format!(
            "{{\"external_id\":\"N-{i}\",\"staff_id\":\"A-1\",\"{long}\":1}}\n"
        ));
    }
    let response = w.post_ndjson("?atomic=false", lines).await;
    assert_eq!(response.status(), 200);
    let summary = body(response).await;
    assert_eq!(summary["failed"], 3, "{summary}");
    assert!(summary.to_string().len() < 5_000, "{summary}");
    assert_eq!(summary["errors"][0]["code"], "unknown_field", "{summary}");
}

#[tokio::test]
async fn the_content_type_decides_the_format() {
    let w = world().await;
    let response = w
        .app
        .client
        .post(w.app.url("/v1/cases"))
        .bearer_auth(&w.token)
        .header("content-type", "text/csv")
        .body("Staff ID,External Staff ID,Case ID\n")
        .send()
        .await
        .expect("request");
    assert_problem(response, 415, "unsupported_media_type").await;
    let response = w
        .app
        .client
        .post(w.app.url("/v1/cases?atomic=false"))
        .bearer_auth(&w.token)
        .json(&json!({"cases": [{"external_id": "T-1", "staff_id": "A-1"}]}))
        .send()
        .await
        .expect("request");
    assert_problem(response, 400, "invalid_query").await;
    let response = w
        .post_ndjson(
            "?list_name=Only+a+name",
            ndjson(&[json!({"external_id": "T-1", "staff_id": "A-1"})]),
        )
        .await;
    assert_problem(response, 422, "validation_failed").await;
    let response = w.post_ndjson("", "\n\n".to_string()).await;
    assert_problem(response, 422, "validation_failed").await;
    assert!(w.stored().await.is_empty());
}

#[tokio::test]
async fn what_cases_refer_to_stays_while_they_do() {
    // On PostgreSQL the references of cases are checked per statement by
    // triggers, not by foreign keys: the same answers are kept.
    let w = world().await;
    let app = &w.app;
    let group_c = app.create_group("Group C").await;
    let response = app
        .admin(Method::PUT, "/v1/admin/staff")
        .json(&json!({"staff": [
            {"staff_id": "C-1", "name": "Cy", "role": "agent", "group_id": group_c},
        ]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let integration = app.create_integration("C", &[&group_c]).await;
    let (token, _) = app.mint(&integration, &["cases:write"]).await;
    let response = app
        .client
        .post(app.url("/v1/cases"))
        .bearer_auth(&token)
        .json(&json!({"cases": [{"external_id": "C-T-1", "staff_id": "C-1"}]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);

    // The staff member of a case cannot be deleted.
    let response = app
        .admin(Method::DELETE, "/v1/admin/staff/C-1")
        .send()
        .await
        .expect("request");
    assert_problem(response, 409, "resource_in_use").await;
    // Nor the group of a case, once nothing else holds it.
    let response = app
        .admin(Method::PATCH, "/v1/admin/staff/C-1")
        .json(&json!({"group_id": w.group_b}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let response = app
        .admin(
            Method::PATCH,
            &format!("/v1/admin/integrations/{integration}"),
        )
        .json(&json!({"groups": [w.group_a]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let response = app
        .admin(Method::DELETE, &format!("/v1/admin/groups/{group_c}"))
        .send()
        .await
        .expect("request");
    assert_problem(response, 409, "resource_in_use").await;

    // The database itself refuses a case naming a missing staff member or
    // group, whichever path writes it.
    let store = &app.state.store;
    let missing_staff = "UPDATE cases SET staff_id = 'NOBODY' WHERE external_id = 'C-T-1'";
    let missing_group =
        "UPDATE cases SET group_id = (SELECT id FROM teams LIMIT 1) WHERE external_id = 'C-T-1'";
    for sql in [missing_staff, missing_group] {
        let error = match &store.reads {
            intake::store::Pool::Postgres(pool) => sqlx::query(sql).execute(pool).await.err(),
            intake::store::Pool::Sqlite(pool) => sqlx::query(sql).execute(pool).await.err(),
        }
        .expect("refused");
        let error = intake::store::StoreError::from(error);
        assert!(
            matches!(error, intake::store::StoreError::Reference(_)),
            "{sql}: {error:?}"
        );
    }
}

fn one_case(external_id: &str, staff_id: &str, group: &str) -> intake::store::cases::CaseRow {
    intake::store::cases::CaseRow {
        id: intake::ids::CaseId::new(),
        external_id: external_id.to_string(),
        staff_id: staff_id.to_string(),
        external_staff_id: None,
        group_id: group.parse().expect("group id"),
        channel: None,
        status: "open",
        priority: None,
        category: None,
        occurred_at: None,
        data: "{}".to_string(),
    }
}

impl World {
    /// A second integration of group A, with one case (`first`, staff A-1)
    /// written straight through the store.
    async fn direct_integration(&self, first: &str) -> intake::ids::IntegrationId {
        let integration = self
            .app
            .create_integration("Direct", &[&self.group_a])
            .await
            .parse()
            .expect("integration id");
        self.app
            .state
            .store
            .insert_cases(integration, &[one_case(first, "A-1", &self.group_a)])
            .await
            .expect("a case whose references exist");
        integration
    }
}

#[tokio::test]
async fn one_case_is_refused_when_what_it_names_is_missing_or_going() {
    // One case is one statement; on PostgreSQL it checks and locks its staff
    // member, group and integration itself (migration 0011) and the
    // trigger's check is skipped for it. A missing reference is still the
    // database's refusal, nothing is written, and a reference deleted while
    // the statement runs cannot leave an orphan behind.
    let w = world().await;
    let store = &w.app.state.store;
    let integration = w.direct_integration("D-1").await;
    let missing_group = intake::ids::GroupId::new().to_string();
    for row in [
        one_case("D-2", "NOBODY", &w.group_a),
        one_case("D-3", "A-1", &missing_group),
    ] {
        let error = store
            .insert_cases(integration, std::slice::from_ref(&row))
            .await
            .expect_err("refused");
        assert!(
            matches!(error, intake::store::StoreError::Reference(_)),
            "{}: {error:?}",
            row.external_id
        );
    }
    let error = store
        .insert_cases(
            intake::ids::IntegrationId::new(),
            &[one_case("D-4", "A-1", &w.group_a)],
        )
        .await
        .expect_err("refused");
    assert!(
        matches!(error, intake::store::StoreError::Reference(_)),
        "{error:?}"
    );

    let intake::store::Pool::Postgres(pool) = &store.writes else {
        let stored: Vec<String> = w
            .stored()
            .await
            .iter()
            .map(|c| c["external_id"].as_str().unwrap_or_default().to_string())
            .collect();
        assert!(!stored.iter().any(|id| id != "D-1"), "{stored:?}");
        return;
    };
    // A staff member deleted (not yet committed) while the case is written:
    // the statement waits for the delete, then finds the staff member gone.
    w.put_staff(json!([
        {"staff_id": "GONE-1", "name": "Gus", "role": "agent", "group_id": w.group_a},
    ]))
    .await;
    let mut delete = pool.begin().await.expect("begin");
    let deleted = sqlx::query("DELETE FROM staff WHERE staff_id = 'GONE-1'")
        .execute(&mut *delete)
        .await
        .expect("delete")
        .rows_affected();
    assert_eq!(deleted, 1);
    let writing = {
        let store = store.clone();
        let row = one_case("D-5", "GONE-1", &w.group_a);
        tokio::spawn(async move { store.insert_cases(integration, &[row]).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!writing.is_finished(), "the insert waits for the delete");
    delete.commit().await.expect("commit");
    let error = writing
        .await
        .expect("task")
        .expect_err("the staff member is gone");
    assert!(
        matches!(error, intake::store::StoreError::Reference(_)),
        "{error:?}"
    );
    let (orphans,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM cases c WHERE NOT EXISTS (SELECT 1 FROM staff s WHERE s.staff_id = c.staff_id)",
    )
    .fetch_one(pool)
    .await
    .expect("query");
    assert_eq!(orphans, 0);
    // The mark set by a one-case statement ends with its transaction: no
    // connection of the writers' pool (all idle now) still has it.
    let mut connections = Vec::new();
    for _ in 0..pool.size() {
        connections.push(pool.acquire().await.expect("connection"));
    }
    for connection in &mut connections {
        let (checked,): (Option<String>,) =
            sqlx::query_as("SELECT current_setting('intake.references_checked', true)")
                .fetch_one(&mut **connection)
                .await
                .expect("query");
        assert_ne!(checked.as_deref(), Some("on"));
    }
    drop(connections);
    let (stored,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM cases WHERE external_id LIKE 'D-%'")
            .fetch_one(pool)
            .await
            .expect("query");
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn wide_case_data_is_stored_compressed_with_lz4_on_postgres() {
    // Past about 2 kB a case's data is compressed; lz4 (migration 0006)
    // does it several times faster than PostgreSQL's default, pglz. The
    // data reads back as it was sent.
    let w = world().await;
    let data: serde_json::Map<String, Value> = (0..100)
        .map(|i| {
            (
                format!("Column {i}"),
                json!(format!("answer {i} ").repeat(8)),
            )
        })
        .collect();
    let response = w
        .post(&json!({"cases": [{"external_id": "WIDE-1", "staff_id": "A-1", "data": data}]}))
        .await;
    assert_eq!(response.status(), 201);
    let id = body(response).await["cases"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(w.get(&format!("/v1/cases/{id}")).await["data"], json!(data));
    if let intake::store::Pool::Postgres(pool) = &w.app.state.store.reads {
        let (compression,): (Option<String>,) = sqlx::query_as(
            "SELECT pg_column_compression(data) FROM cases WHERE external_id = 'WIDE-1'",
        )
        .fetch_one(pool)
        .await
        .expect("query");
        assert_eq!(compression.as_deref(), Some("lz4"));
    }
}

#[tokio::test]
async fn batches_mixing_new_and_updated_cases_are_all_written() {
    // 5,000 cases are cut into batches; every other one updates a stored
    // case, so each batch holds new rows (one COPY kept open on PostgreSQL)
    // and updates (which close it and go through the staging table).
    let w = world().await;
    let first: Vec<Value> = (0..5_000)
        .step_by(2)
        .map(|i| json!({"external_id": format!("M-{i}"), "staff_id": "A-1", "data": {"v": "old"}}))
        .collect();
    assert_eq!(w.post(&json!({"cases": first})).await.status(), 201);
    let all: Vec<Value> = (0..5_000)
        .map(|i| json!({"external_id": format!("M-{i}"), "staff_id": "A-1", "priority": "high", "data": {"v": i}}))
        .collect();
    let response = w
        .post(&json!({
            "on_conflict": "update",
            "list": {"name": "Mixed", "assignment": {"kind": "group", "id": w.group_a}},
            "cases": all
        }))
        .await;
    assert_eq!(response.status(), 201);
    let summary = body(response).await;
    assert_eq!(
        (summary["created"].clone(), summary["updated"].clone()),
        (json!(2_500), json!(2_500))
    );
    let list_id = summary["list_id"].as_str().expect("list").to_string();
    let mut seen = 0;
    let mut cursor = String::new();
    loop {
        let page = w
            .get(&format!("/v1/cases?list_id={list_id}&limit=1000{cursor}"))
            .await;
        for case in page["items"].as_array().expect("items") {
            let i: u64 = case["external_id"].as_str().expect("id")[2..]
                .parse()
                .expect("number");
            assert_eq!(case["data"], json!({"v": i}), "{case}");
            assert_eq!(case["priority"], "high");
            seen += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, 5_000, "every case, new or updated, is in the list");
}

#[tokio::test]
async fn a_malformed_case_late_in_a_large_request_leaves_nothing_written() {
    // Cases are parsed batch by batch, while earlier batches are written:
    // a case that does not parse still fails the whole request, and what was
    // written before it is rolled back (atomic or not).
    let w = world().await;
    for atomic in [true, false] {
        let mut cases: Vec<Value> = (0..3_000)
            .map(|i| json!({"external_id": format!("L-{i}"), "staff_id": "A-1"}))
            .collect();
        cases[2_500] =
            json!({"external_id": "L-2500", "staff_id": "A-1", "data": {"x": {"nested": 1}}});
        let response = w.post(&json!({"atomic": atomic, "cases": cases})).await;
        let problem = assert_problem(response, 400, "invalid_body").await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("cases[2500]"),
            "{problem}"
        );
        assert!(w.stored().await.is_empty(), "nothing written");
    }
}

#[tokio::test]
async fn small_requests_that_arrive_together_share_one_insert_and_each_is_answered_as_if_alone() {
    // Requests queued while the group writers are busy are written by one
    // statement. A refused group (one request's Case ID is taken, another's
    // staff member is missing) is written again request by request: those
    // two get their own refusal and every other request is stored.
    let w = world().await;
    let store = &w.app.state.store;
    let integration = w.direct_integration("G-TAKEN").await;
    let grouped = store.grouped_inserts();
    let flushers = grouped.flushers();
    let before = grouped.written();

    // All are queued in one poll, before any group writer runs: the first
    // `flushers` requests each start a writer and are written alone, the
    // rest wait and go together. With one good group and then one bad.
    let good = |i: usize| vec![one_case(&format!("G-{i}"), "A-1", &w.group_a)];
    let requests: Vec<Vec<intake::store::cases::CaseRow>> = (0..flushers + 10)
        .map(good)
        .chain([(0..3)
            .map(|i| one_case(&format!("G-THREE-{i}"), "A-1", &w.group_a))
            .collect()])
        .collect();
    let count = requests.len();
    let answers = futures_util::future::join_all(
        requests
            .into_iter()
            .map(|rows| store.insert_cases_grouped(integration, rows)),
    )
    .await;
    for answer in &answers {
        assert!(answer.is_ok(), "{answer:?}");
    }
    let after = grouped.written();
    assert_eq!(after.requests - before.requests, count as u64);
    assert_eq!(
        after.groups - before.groups,
        flushers as u64 + 1,
        "{after:?}"
    );
    assert_eq!(after.refused, before.refused);

    let mut requests: Vec<Vec<intake::store::cases::CaseRow>> =
        (100..100 + flushers + 6).map(good).collect();
    requests.insert(flushers + 2, vec![one_case("G-TAKEN", "A-1", &w.group_a)]);
    requests.insert(
        flushers + 4,
        vec![one_case("G-NOBODY", "NOBODY", &w.group_a)],
    );
    let count = requests.len();
    let answers = futures_util::future::join_all(
        requests
            .into_iter()
            .map(|rows| store.insert_cases_grouped(integration, rows)),
    )
    .await;
    for (i, answer) in answers.iter().enumerate() {
        match i {
            _ if i == flushers + 2 => assert!(
                matches!(answer, Err(intake::store::StoreError::Duplicate(_))),
                "{answer:?}"
            ),
            _ if i == flushers + 4 => assert!(
                matches!(answer, Err(intake::store::StoreError::Reference(_))),
                "{answer:?}"
            ),
            _ => assert!(answer.is_ok(), "{i}: {answer:?}"),
        }
    }
    let last = grouped.written();
    assert_eq!(last.requests - after.requests, count as u64);
    assert_eq!(last.groups - after.groups, flushers as u64 + 1, "{last:?}");
    assert_eq!(last.refused - after.refused, 1);

    let mut stored: Vec<String> = w
        .stored()
        .await
        .iter()
        .map(|c| c["external_id"].as_str().unwrap_or_default().to_string())
        .collect();
    stored.sort();
    let mut expected: Vec<String> = (0..flushers + 10)
        .chain(100..100 + flushers + 6)
        .map(|i| format!("G-{i}"))
        .chain((0..3).map(|i| format!("G-THREE-{i}")))
        .chain(["G-TAKEN".to_string()])
        .collect();
    expected.sort();
    assert_eq!(stored, expected);
}
