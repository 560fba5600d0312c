//! EdDSA and RS256 deployments: JWKS with kid, and key rotation.

use serde_json::Value;

use crate::helpers::{TestApp, body, spawn_app, spawn_app_with};

fn key(name: &str) -> String {
    format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

async fn app_with(alg: &str, private: &str, previous: Option<&str>) -> TestApp {
    let (alg, private, previous) = (alg.to_string(), key(private), previous.map(key));
    spawn_app_with(move |env| {
        env.insert("INTAKE_JWT_ALG".into(), alg);
        env.insert("INTAKE_JWT_PRIVATE_KEY".into(), private);
        if let Some(previous) = previous {
            env.insert("INTAKE_JWT_PREVIOUS_KEY".into(), previous);
        }
    })
    .await
}

fn header_of(token: &str) -> Value {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').next().expect("header"))
        .expect("base64");
    serde_json::from_slice(&bytes).expect("json")
}

/// Records `token` (an admin token of another test app) in `app`'s
/// database, as if both were one deployment before and after a rotation.
async fn same_deployment(app: &TestApp, token: &str) {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).expect("payload"))
        .expect("base64");
    let claims: intake::auth::jwt::Claims = serde_json::from_slice(&bytes).expect("claims");
    crate::helpers::record_admin_token(app, &claims).await;
}

async fn jwks(app: &TestApp) -> Value {
    body(
        app.client
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("request"),
    )
    .await
}

#[tokio::test]
async fn an_eddsa_deployment_signs_with_its_key_and_publishes_it() {
    let app = app_with("EdDSA", "ed25519-a.pem", None).await;
    let set = jwks(&app).await;
    let keys = set["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert_eq!(keys[0]["alg"], "EdDSA");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0].get("d").is_none(), "no private part");

    let group = app.create_group("G").await;
    let integration = app.create_integration("CRM", &[&group]).await;
    let (token, _) = app.mint(&integration, &["cases:read"]).await;
    let header = header_of(&token);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], keys[0]["kid"]);
    assert_eq!(app.get_as(&token, "/v1/me").await.status(), 200);
    assert_eq!(header_of(&app.admin_token)["alg"], "EdDSA");
    assert_eq!(app.get_admin("/v1/admin/groups").await.status(), 200);
}

#[tokio::test]
async fn an_rs256_deployment_publishes_its_modulus() {
    let app = app_with("RS256", "rsa.pem", None).await;
    let set = jwks(&app).await;
    assert_eq!(set["keys"][0]["kty"], "RSA");
    assert_eq!(set["keys"][0]["alg"], "RS256");
    assert!(set["keys"][0]["n"].as_str().is_some_and(|n| n.len() > 300));
    assert_eq!(header_of(&app.admin_token)["alg"], "RS256");
    assert_eq!(app.get_admin("/v1/admin/groups").await.status(), 200);
}

#[tokio::test]
async fn during_a_rotation_tokens_of_the_previous_key_are_still_accepted() {
    let old = app_with("EdDSA", "ed25519-a.pem", None).await;
    let old_kid = jwks(&old).await["keys"][0]["kid"].clone();
    let old_token = old.admin_token.clone();

    let rotated = app_with("EdDSA", "ed25519-b.pem", Some("ed25519-a.pub.pem")).await;
    let set = jwks(&rotated).await;
    let kids: Vec<&Value> = set["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| &k["kid"])
        .collect();
    assert_eq!(kids.len(), 2);
    assert_eq!(
        kids[1], &old_kid,
        "the previous key is published after the current one"
    );
    assert_ne!(kids[0], &old_kid);
    same_deployment(&rotated, &old_token).await;

    let response = rotated
        .client
        .get(rotated.url("/v1/admin/groups"))
        .bearer_auth(&old_token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "a token of the previous key");

    // Once the rotation is over, the old key's tokens are refused.
    let after = app_with("EdDSA", "ed25519-b.pem", None).await;
    same_deployment(&after, &old_token).await;
    let response = after
        .client
        .get(after.url("/v1/admin/groups"))
        .bearer_auth(&old_token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn an_hs256_deployment_publishes_no_keys() {
    let app = spawn_app().await;
    assert_eq!(jwks(&app).await["keys"], serde_json::json!([]));
}
