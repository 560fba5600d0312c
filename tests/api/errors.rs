//! Every bad request answers a problem with a stable code.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn malformed_json_is_400_malformed_json() {
    let app = spawn_app().await;
    let response = app
        .admin(Method::POST, "/v1/admin/groups")
        .header("content-type", "application/json")
        .body(r#"{"name": "Support EU""#)
        .send()
        .await
        .expect("request");
    let problem = assert_problem(response, 400, "malformed_json").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("line 1"),
        "{problem}"
    );
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = spawn_app().await;
    let response = app
        .admin(Method::POST, "/v1/admin/groups")
        .header("content-type", "text/plain")
        .body(r#"{"name": "Support EU"}"#)
        .send()
        .await
        .expect("request");
    assert_problem(response, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn unknown_field_is_400_unknown_field_and_nothing_is_written() {
    let app = spawn_app().await;
    let response = app
        .post_admin(
            "/v1/admin/groups",
            &json!({"name": "Support EU", "colour": "red"}),
        )
        .await;
    let problem = assert_problem(response, 400, "unknown_field").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("colour"),
        "{problem}"
    );
    let list = crate::helpers::body(app.get_admin("/v1/admin/groups").await).await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_400_invalid_body() {
    let app = spawn_app().await;
    let response = app
        .post_admin("/v1/admin/groups", &json!({"name": 42}))
        .await;
    assert_problem(response, 400, "invalid_body").await;
}

#[tokio::test]
async fn oversized_body_is_413_stating_the_limit() {
    let app = spawn_app_with(|env| {
        env.insert("INTAKE_MAX_BODY_BYTES".into(), "4096".into());
    })
    .await;
    let body = json!({"name": "x".repeat(10_000)});
    let sent = serde_json::to_vec(&body).expect("json").len();
    let response = app.post_admin("/v1/admin/groups", &body).await;
    let problem = assert_problem(response, 413, "payload_too_large").await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("4096"), "states the limit: {detail}");
    assert!(
        detail.contains(&sent.to_string()),
        "states the size seen ({sent}): {detail}"
    );
}

#[tokio::test]
async fn unknown_route_is_404_problem() {
    let app = spawn_app().await;
    let response = app.get_admin("/v1/nothing/here").await;
    assert_problem(response, 404, "route_not_found").await;
    let response = app
        .client
        .get(app.url("/favicon.ico"))
        .send()
        .await
        .expect("request");
    assert_problem(response, 404, "route_not_found").await;
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let app = spawn_app().await;
    let response = app
        .admin(Method::PUT, "/v1/admin/groups")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["allow"], "GET, POST");
    assert_problem(response, 405, "method_not_allowed").await;

    let response = app
        .admin(
            Method::POST,
            "/v1/admin/groups/0192f0a0-0000-7000-8000-000000000000",
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["allow"], "GET, PATCH, DELETE");
    assert_problem(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn the_csv_uploader_is_its_own_route_in_metrics() {
    // `/v1/cases/csv` also matches `/v1/cases/{id}`: requests must be
    // labelled with the uploader's pattern, not taken for a case id.
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/cases/csv"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    let text = app.metrics().await;
    assert!(
        text.contains(
            r#"intake_http_requests_total{method="POST",route="/v1/cases/csv",status="401"} 1"#
        ),
        "{text}"
    );
    // Nor is it a case named "csv".
    let response = app
        .admin(Method::GET, "/v1/cases/csv")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["allow"], "POST");
    assert_problem(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn a_malformed_id_in_the_path_is_400() {
    let app = spawn_app().await;
    let response = app.get_admin("/v1/admin/groups/not-a-uuid").await;
    assert_problem(response, 400, "invalid_path_parameter").await;
}

#[tokio::test]
async fn pagination_parameters_are_checked() {
    let app = spawn_app().await;
    let response = app.get_admin("/v1/admin/groups?limit=0").await;
    assert_problem(response, 400, "invalid_query").await;
    let response = app.get_admin("/v1/admin/groups?limit=1001").await;
    let problem = assert_problem(response, 400, "invalid_query").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("1000"),
        "{problem}"
    );
    let response = app.get_admin("/v1/admin/groups?limit=ten").await;
    assert_problem(response, 400, "invalid_query").await;
    let response = app
        .get_admin("/v1/admin/groups?cursor=bm90LWEtY3Vyc29y")
        .await;
    assert_problem(response, 400, "invalid_cursor").await;
}

#[tokio::test]
async fn the_callers_request_id_is_echoed_and_used_in_problems() {
    let app = spawn_app().await;
    let response = app
        .admin(Method::GET, "/v1/admin/groups/not-a-uuid")
        .header("x-request-id", "client-req-42")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["x-request-id"], "client-req-42");
    let problem = assert_problem(response, 400, "invalid_path_parameter").await;
    assert_eq!(problem["request_id"], "client-req-42");

    // An id that is not plain text is replaced, never echoed.
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "<script>")
        .send()
        .await
        .expect("request");
    let id = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
}

#[tokio::test]
async fn long_input_is_quoted_as_a_short_excerpt() {
    let app = spawn_app().await;
    let group_id = app.create_group("Support EU").await;
    let zone = "Z".repeat(3_000_000);
    let response = app
        .post_admin(
            "/v1/admin/campaigns",
            &json!({"name": "c", "group_id": group_id, "default_region": "IL", "timezone": zone}),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    let message = problem["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.len() < 300, "message is {} bytes", message.len());
    assert!(message.contains(&"Z".repeat(100)), "{message}");
}

/// A problem's `type` is the address of its code's entry in the error
/// reference, which the server serves (like Stripe's `doc_url`).
#[tokio::test]
async fn a_problems_type_links_to_its_entry_in_the_served_error_reference() {
    let app = spawn_app().await;
    let problem = assert_problem(
        app.get_admin("/v1/admin/groups/not-a-uuid").await,
        400,
        "invalid_path_parameter",
    )
    .await;
    let link = problem["type"].as_str().expect("type");
    let (page, anchor) = link.split_once('#').expect("an anchor");
    assert_eq!((page, anchor), ("/docs/errors", "invalid_path_parameter"));

    let response = reqwest::get(app.url(page)).await.expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let html = response.text().await.expect("body");
    for code in intake::error::ErrorCode::ALL {
        assert!(
            html.contains(&format!("<section id=\"{code}\">")),
            "no entry for {code}"
        );
    }
    assert!(html.contains("What to do:"));
    // Swagger UI is still there beside it.
    let docs = reqwest::get(app.url("/docs/")).await.expect("request");
    assert_eq!(docs.status(), 200);
}
