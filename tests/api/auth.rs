//! The admin token: only a valid, unexpired token of ours, in the
//! Authorization header, with the `admin` scope, opens the admin API.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use intake::auth::Scope;
use intake::auth::jwt::{Claims, JwtKeys};
use intake::settings::Settings;
use reqwest::{Method, Response};

use crate::helpers::{TestApp, assert_problem, spawn_app};

fn keys_with_secret(secret: &str) -> JwtKeys {
    let env: BTreeMap<&str, &str> = [("INTAKE_JWT_SECRET", secret)].into_iter().collect();
    let settings =
        Settings::load_from(None, |k| env.get(k).map(|v| v.to_string())).expect("settings");
    JwtKeys::from_settings(&settings).expect("keys")
}

/// The claims of a fresh admin token, recorded like one `intake token
/// --admin` mints (so that only what a test changes makes it refused).
async fn admin_claims(app: &TestApp) -> Claims {
    let (_, claims) = app
        .state
        .jwt
        .mint("admin", &[Scope::Admin], Duration::from_secs(600))
        .expect("mint");
    crate::helpers::record_admin_token(app, &claims).await;
    claims
}

async fn get_groups_with(app: &TestApp, authorization: &str) -> Response {
    app.client
        .get(app.url("/v1/admin/groups"))
        .header("authorization", authorization)
        .send()
        .await
        .expect("request")
}

async fn assert_invalid_token(response: Response) {
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    assert_problem(response, 401, "invalid_token").await;
}

#[tokio::test]
async fn the_admin_token_opens_the_admin_api() {
    let app = spawn_app().await;
    let response = get_groups_with(&app, &format!("Bearer {}", app.admin_token)).await;
    assert_eq!(response.status(), 200);
    // The scheme is case-insensitive (RFC 7235).
    let response = get_groups_with(&app, &format!("bearer {}", app.admin_token)).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_missing_token_is_401_with_www_authenticate() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/v1/admin/groups"))
        .send()
        .await
        .expect("request");
    assert_invalid_token(response).await;
}

#[tokio::test]
async fn another_scheme_is_401() {
    let app = spawn_app().await;
    assert_invalid_token(get_groups_with(&app, "Basic YWRtaW46YWRtaW4=").await).await;
    assert_invalid_token(get_groups_with(&app, &app.admin_token.clone()).await).await;
}

#[tokio::test]
async fn a_token_in_the_query_string_is_not_accepted() {
    let app = spawn_app().await;
    for name in ["access_token", "token", "jwt"] {
        let response = app
            .client
            .get(app.url(&format!("/v1/admin/groups?{name}={}", app.admin_token)))
            .send()
            .await
            .expect("request");
        assert_invalid_token(response).await;
    }
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_401() {
    let app = spawn_app().await;
    let other = keys_with_secret("another-secret-0123456789-abcdefghijklmnopqrstuvwxyz");
    let token = other.sign(&admin_claims(&app).await).expect("sign");
    assert_invalid_token(get_groups_with(&app, &format!("Bearer {token}")).await).await;
}

#[tokio::test]
async fn a_tampered_payload_is_401() {
    let app = spawn_app().await;
    let mut claims = admin_claims(&app).await;
    claims.scope = "cases:read".into();
    let token = app.state.jwt.sign(&claims).expect("sign");
    // Put the admin payload under the signature of the cases:read token.
    let admin = app.admin_token.split('.').collect::<Vec<_>>();
    let signed = token.split('.').collect::<Vec<_>>();
    let forged = format!("{}.{}.{}", signed[0], admin[1], signed[2]);
    assert_invalid_token(get_groups_with(&app, &format!("Bearer {forged}")).await).await;
}

#[tokio::test]
async fn a_token_with_critical_extensions_is_401_though_its_signature_is_ours() {
    let app = spawn_app().await;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.crit = Some(vec!["x-unknown".into()]);
    let token = jsonwebtoken::encode(
        &header,
        &admin_claims(&app).await,
        &jsonwebtoken::EncodingKey::from_secret(crate::helpers::TEST_SECRET.as_bytes()),
    )
    .expect("sign");
    assert_invalid_token(get_groups_with(&app, &format!("Bearer {token}")).await).await;
    // The same claims without `crit` pass: only the header differs.
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &admin_claims(&app).await,
        &jsonwebtoken::EncodingKey::from_secret(crate::helpers::TEST_SECRET.as_bytes()),
    )
    .expect("sign");
    let response = get_groups_with(&app, &format!("Bearer {token}")).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_admin_token_this_deployment_never_minted_is_401() {
    // Signed with the real key, but its jti was never recorded.
    let app = spawn_app().await;
    let (token, _) = app
        .state
        .jwt
        .mint("admin", &[Scope::Admin], Duration::from_secs(600))
        .expect("mint");
    assert_invalid_token(get_groups_with(&app, &format!("Bearer {token}")).await).await;
}

#[tokio::test]
async fn a_revoked_admin_token_is_refused_at_once_and_listed_as_revoked() {
    let app = spawn_app().await;
    let (token, jti) = intake::auth::tokens::mint_admin_token(
        &app.state.store,
        &app.state.jwt,
        Duration::from_secs(600),
        app.state.settings.admin_token_max_ttl,
    )
    .await
    .expect("mint");
    assert_eq!(
        get_groups_with(&app, &format!("Bearer {token}"))
            .await
            .status(),
        200
    );
    let response = app
        .admin(Method::DELETE, &format!("/v1/admin/tokens/{jti}"))
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 204);
    assert_invalid_token(get_groups_with(&app, &format!("Bearer {token}")).await).await;
    // Again: not an error. An unknown jti: 404.
    let response = app
        .admin(Method::DELETE, &format!("/v1/admin/tokens/{jti}"))
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 204);
    let response = app
        .admin(
            Method::DELETE,
            &format!("/v1/admin/tokens/{}", uuid::Uuid::new_v4()),
        )
        .send()
        .await
        .expect("revoke");
    assert_problem(response, 404, "token_not_found").await;
    let listed: serde_json::Value = app
        .get_admin("/v1/admin/tokens")
        .await
        .json()
        .await
        .expect("json");
    let entry = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|t| t["jti"] == jti.to_string().as_str())
        .cloned()
        .expect("listed");
    assert!(entry["revoked_at"].is_string(), "{entry}");
}

#[tokio::test]
async fn an_admin_token_living_longer_than_allowed_is_401() {
    let app = crate::helpers::spawn_app_with(|env| {
        env.insert("INTAKE_ADMIN_TOKEN_MAX_TTL_SECONDS".into(), "900".into());
    })
    .await;
    let (token, claims) = app
        .state
        .jwt
        .mint("admin", &[Scope::Admin], Duration::from_secs(3600))
        .expect("mint");
    crate::helpers::record_admin_token(&app, &claims).await;
    assert_invalid_token(get_groups_with(&app, &format!("Bearer {token}")).await).await;
}

#[tokio::test]
async fn alg_none_is_401() {
    let app = spawn_app().await;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = engine.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = engine.encode(serde_json::to_vec(&admin_claims(&app).await).expect("json"));
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert_invalid_token(get_groups_with(&app, &format!("Bearer {token}")).await).await;
    }
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let app = spawn_app().await;
    let mut claims = admin_claims(&app).await;
    claims.exp = chrono::Utc::now().timestamp() - 120; // beyond the 30 s leeway
    let token = app.state.jwt.sign(&claims).expect("sign");
    assert_invalid_token(get_groups_with(&app, &format!("Bearer {token}")).await).await;
}

#[tokio::test]
async fn a_token_not_yet_valid_is_401() {
    let app = spawn_app().await;
    let mut claims = admin_claims(&app).await;
    claims.nbf = Some(chrono::Utc::now().timestamp() + 600);
    let token = app.state.jwt.sign(&claims).expect("sign");
    assert_invalid_token(get_groups_with(&app, &format!("Bearer {token}")).await).await;
}

#[tokio::test]
async fn a_wrong_issuer_or_audience_is_401() {
    let app = spawn_app().await;
    let mut claims = admin_claims(&app).await;
    claims.iss = "someone-else".into();
    let token = app.state.jwt.sign(&claims).expect("sign");
    assert_invalid_token(get_groups_with(&app, &format!("Bearer {token}")).await).await;

    let mut claims = admin_claims(&app).await;
    claims.aud = "another-api".into();
    let token = app.state.jwt.sign(&claims).expect("sign");
    assert_invalid_token(get_groups_with(&app, &format!("Bearer {token}")).await).await;
}

#[tokio::test]
async fn an_unknown_subject_is_401() {
    let app = spawn_app().await;
    let mut claims = admin_claims(&app).await;
    claims.sub = "root".into();
    let token = app.state.jwt.sign(&claims).expect("sign");
    assert_invalid_token(get_groups_with(&app, &format!("Bearer {token}")).await).await;
}

#[tokio::test]
async fn a_token_without_the_admin_scope_is_403_insufficient_scope() {
    let app = spawn_app().await;
    let (token, claims) = app
        .state
        .jwt
        .mint("admin", &[Scope::CasesRead], Duration::from_secs(600))
        .expect("mint");
    crate::helpers::record_admin_token(&app, &claims).await;
    let response = app
        .client
        .request(Method::GET, app.url("/v1/admin/groups"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"insufficient_scope\", scope=\"admin\""
    );
    let problem = assert_problem(response, 403, "insufficient_scope").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("`admin`"),
        "{problem}"
    );
}
