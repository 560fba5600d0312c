//! The attack list against integration tokens: each answer exactly.

use base64::Engine;
use intake::auth::jwt::Claims;
use reqwest::{Method, Response};
use serde_json::json;

use crate::helpers::{TestApp, assert_problem, body, spawn_app, spawn_app_with};

/// An app with a group, a campaign in it, an integration of that group and
/// a `customers:read` token: (app, integration id, token, jti).
async fn setup() -> (TestApp, String, String, String) {
    let app = spawn_app().await;
    let group = app.create_group("Support EU").await;
    app.create_campaign(&group, "Spring").await;
    let integration = app.create_integration("CRM", &[&group]).await;
    let (token, jti) = app.mint(&integration, &["customers:read"]).await;
    assert_eq!(
        app.get_as(&token, "/v1/campaigns").await.status(),
        200,
        "the token works"
    );
    (app, integration, token, jti)
}

fn claims_of(token: &str) -> Claims {
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("claims")
}

/// A token this server cannot verify: one answer whatever the flaw, so
/// nothing tells a forger which check failed.
async fn assert_refused(response: Response) {
    assert_refused_saying(
        response,
        "The bearer token is not valid: it is malformed or was not signed by this service.",
    )
    .await;
}

/// A refusal with what the caller can fix (said only of a token whose
/// signature verified), in the body and in `WWW-Authenticate`.
async fn assert_refused_saying(response: Response, detail: &str) {
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(
        challenge,
        format!("Bearer error=\"invalid_token\", error_description=\"{detail}\"")
    );
    let problem = assert_problem(response, 401, "invalid_token").await;
    assert_eq!(problem["detail"], detail);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let (app, _, token, _) = setup().await;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = engine.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = token.split('.').nth(1).expect("payload");
    assert_refused(
        app.get_as(&format!("{header}.{payload}."), "/v1/campaigns")
            .await,
    )
    .await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_of_an_eddsa_deployment_is_refused() {
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keys/ed25519-a.pem"
    );
    let public = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keys/ed25519-a.pub.pem"
    ))
    .expect("key");
    let app = spawn_app_with(|env| {
        env.insert("INTAKE_JWT_ALG".into(), "EdDSA".into());
        env.insert("INTAKE_JWT_PRIVATE_KEY".into(), key.into());
    })
    .await;
    let group = app.create_group("Support EU").await;
    let integration = app.create_integration("CRM", &[&group]).await;
    let (token, _) = app.mint(&integration, &["customers:read"]).await;
    assert_eq!(app.get_as(&token, "/v1/campaigns").await.status(), 200);

    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims_of(&token),
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .expect("sign");
    assert_refused(app.get_as(&forged, "/v1/campaigns").await).await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_refused() {
    let (app, _, token, _) = setup().await;
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims_of(&token),
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-server-secret-0123456789abcdef"),
    )
    .expect("sign");
    assert_refused(app.get_as(&forged, "/v1/campaigns").await).await;
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let (app, _, token, _) = setup().await;
    let mut claims = claims_of(&token);
    claims.scope = "customers:read customers:write cases:write".into();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        engine.encode(serde_json::to_vec(&claims).expect("json")),
        parts[2]
    );
    assert_refused(app.get_as(&tampered, "/v1/campaigns").await).await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let (app, _, token, _) = setup().await;
    let mut claims = claims_of(&token);
    claims.exp = chrono::Utc::now().timestamp() - 120;
    assert_refused_saying(
        app.get_as(&app.state.jwt.sign(&claims).expect("sign"), "/v1/campaigns")
            .await,
        "The token expired; use a new one.",
    )
    .await;
    // Expired and signed with another key: nothing about the expiry is told.
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-server-secret-0123456789abcdef"),
    )
    .expect("sign");
    assert_refused(app.get_as(&forged, "/v1/campaigns").await).await;
}

#[tokio::test]
async fn a_token_with_nbf_in_the_future_is_refused() {
    let (app, _, token, _) = setup().await;
    let mut claims = claims_of(&token);
    claims.nbf = Some(chrono::Utc::now().timestamp() + 600);
    assert_refused_saying(
        app.get_as(&app.state.jwt.sign(&claims).expect("sign"), "/v1/campaigns")
            .await,
        "The token is not valid yet (its `nbf` is in the future).",
    )
    .await;
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let (app, _, token, _) = setup().await;
    let mut claims = claims_of(&token);
    claims.iss = "https://evil.example".into();
    assert_refused(
        app.get_as(&app.state.jwt.sign(&claims).expect("sign"), "/v1/campaigns")
            .await,
    )
    .await;
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let (app, _, token, _) = setup().await;
    let mut claims = claims_of(&token);
    claims.aud = "another-api".into();
    assert_refused(
        app.get_as(&app.state.jwt.sign(&claims).expect("sign"), "/v1/campaigns")
            .await,
    )
    .await;
}

#[tokio::test]
async fn a_revoked_token_is_refused() {
    let (app, integration, token, jti) = setup().await;
    let response = app
        .admin(
            Method::DELETE,
            &format!("/v1/admin/integrations/{integration}/tokens/{jti}"),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    assert_refused_saying(
        app.get_as(&token, "/v1/campaigns").await,
        "The token was revoked; use a new one.",
    )
    .await;
}

#[tokio::test]
async fn a_disabled_integrations_token_is_refused_until_it_is_enabled() {
    let (app, integration, token, _) = setup().await;
    let path = format!("/v1/admin/integrations/{integration}");
    let response = app
        .admin(Method::PATCH, &path)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_refused_saying(
        app.get_as(&token, "/v1/campaigns").await,
        "The token's integration is disabled; an operator can enable it.",
    )
    .await;
    let response = app
        .admin(Method::PATCH, &path)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(app.get_as(&token, "/v1/campaigns").await.status(), 200);
}

#[tokio::test]
async fn a_deleted_integrations_token_is_refused() {
    let (app, integration, token, _) = setup().await;
    let response = app
        .admin(
            Method::DELETE,
            &format!("/v1/admin/integrations/{integration}"),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    assert_refused_saying(
        app.get_as(&token, "/v1/campaigns").await,
        // Deleting an integration revokes its tokens.
        "The token was revoked; use a new one.",
    )
    .await;
    let tokens = app
        .get_admin(&format!("/v1/admin/integrations/{integration}/tokens"))
        .await;
    assert_problem(tokens, 404, "integration_not_found").await;
}

#[tokio::test]
async fn a_token_without_the_scope_is_403_naming_it() {
    let (app, integration, _, _) = setup().await;
    let (token, _) = app.mint(&integration, &["cases:write"]).await;
    let response = app.get_as(&token, "/v1/campaigns").await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"insufficient_scope\", scope=\"customers:read customers:write customers:create\""
    );
    let problem = assert_problem(response, 403, "insufficient_scope").await;
    assert_eq!(
        problem["detail"],
        "This route needs one of the scopes `customers:read`, `customers:write`, `customers:create`."
    );
}

#[tokio::test]
async fn an_admin_route_with_an_integration_token_is_403() {
    let (app, _, token, _) = setup().await;
    for path in ["/v1/admin/groups", "/v1/admin/integrations"] {
        let response = app.get_as(&token, path).await;
        let problem = assert_problem(response, 403, "insufficient_scope").await;
        assert_eq!(problem["detail"], "This route needs the scope `admin`.");
    }
}

#[tokio::test]
async fn a_token_in_the_query_string_is_refused() {
    let (app, _, token, _) = setup().await;
    let response = app
        .client
        .get(app.url(&format!("/v1/campaigns?access_token={token}")))
        .send()
        .await
        .expect("request");
    let problem = assert_problem(response, 401, "invalid_token").await;
    assert!(
        !problem.to_string().contains(&token),
        "the token is not echoed"
    );
}

#[tokio::test]
async fn another_authorization_scheme_is_refused() {
    let (app, _, token, _) = setup().await;
    for value in [
        format!("Basic {token}"),
        format!("Token {token}"),
        token.clone(),
    ] {
        let response = app
            .client
            .get(app.url("/v1/campaigns"))
            .header("authorization", value)
            .send()
            .await
            .expect("request");
        assert_problem(response, 401, "invalid_token").await;
    }
}

#[tokio::test]
async fn a_token_for_an_integration_that_never_existed_is_refused() {
    let (app, _, token, _) = setup().await;
    let mut claims = claims_of(&token);
    claims.sub = format!("integration:{}", uuid::Uuid::now_v7());
    assert_refused_saying(
        app.get_as(&app.state.jwt.sign(&claims).expect("sign"), "/v1/campaigns")
            .await,
        "The token's integration no longer exists.",
    )
    .await;
    // And the signed token of a real integration still works.
    assert_eq!(
        body(app.get_as(&token, "/v1/me").await).await["scopes"],
        json!(["customers:read"])
    );
}

#[tokio::test]
async fn a_control_character_in_a_path_or_a_filter_is_400_not_a_database_error() {
    let (app, _, token, _) = setup().await;
    let (cases_token, _) = {
        let group = app.create_group("Cases").await;
        let integration = app.create_integration("Cases CRM", &[&group]).await;
        app.mint(&integration, &["cases:read"]).await
    };
    for path in [
        "/v1/cases?staff_id=%00",
        "/v1/cases?external_id=a%00b",
        "/v1/cases?staff_id=%0a",
    ] {
        let response = app.get_as(&cases_token, path).await;
        assert_problem(response, 400, "invalid_query").await;
    }
    let response = app.get_as(&token, "/v1/campaigns?cursor=%00").await;
    assert_problem(response, 400, "invalid_query").await;
    for path in ["/v1/admin/staff/%00", "/v1/admin/staff/A%7F1"] {
        let response = app.get_admin(path).await;
        assert_problem(response, 400, "invalid_path_parameter").await;
    }
    // Ordinary encoded characters still pass.
    assert_eq!(
        app.get_as(&cases_token, "/v1/cases?staff_id=A%2D1%20x")
            .await
            .status(),
        200
    );
}
