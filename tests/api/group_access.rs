//! Group access: an integration sees only its groups' data; anything else is
//! answered exactly as if it did not exist; changes take effect at once.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    assert_problem, body, eventually, redis_url, spawn_app, spawn_app_with, spawn_replica,
    without_request_id,
};

#[tokio::test]
async fn another_groups_campaign_is_answered_like_a_missing_one() {
    let app = spawn_app().await;
    let a = app.create_group("Group A").await;
    let b = app.create_group("Group B").await;
    let campaign_a = app.create_campaign(&a, "A campaign").await;
    let campaign_b = app.create_campaign(&b, "B campaign").await;
    let integration = app.create_integration("A only", &[&a]).await;
    let (token, _) = app.mint(&integration, &["customers:read"]).await;

    let response = app
        .get_as(&token, &format!("/v1/campaigns/{campaign_a}"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await["id"], campaign_a.as_str());

    let other = app
        .get_as(&token, &format!("/v1/campaigns/{campaign_b}"))
        .await;
    let other = assert_problem(other, 404, "campaign_not_found").await;
    let missing = app
        .get_as(&token, &format!("/v1/campaigns/{}", uuid::Uuid::now_v7()))
        .await;
    let missing = assert_problem(missing, 404, "campaign_not_found").await;
    assert_eq!(without_request_id(other), without_request_id(missing));

    let page = body(app.get_as(&token, "/v1/campaigns").await).await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, vec![campaign_a.as_str()]);
}

#[tokio::test]
async fn an_integration_of_several_groups_sees_them_all() {
    let app = spawn_app().await;
    let a = app.create_group("Group A").await;
    let b = app.create_group("Group B").await;
    let c = app.create_group("Group C").await;
    let campaign_a = app.create_campaign(&a, "A").await;
    let campaign_b = app.create_campaign(&b, "B").await;
    app.create_campaign(&c, "C").await;
    let integration = app.create_integration("A and B", &[&a, &b]).await;
    let (token, _) = app.mint(&integration, &["customers:write"]).await;
    let page = body(app.get_as(&token, "/v1/campaigns?limit=1").await).await;
    assert_eq!(page["items"][0]["id"], campaign_a.as_str());
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let page = body(
        app.get_as(&token, &format!("/v1/campaigns?limit=1&cursor={cursor}"))
            .await,
    )
    .await;
    assert_eq!(page["items"][0]["id"], campaign_b.as_str());
    assert_eq!(
        page["next_cursor"],
        serde_json::Value::Null,
        "group C's campaign is not there"
    );
}

#[tokio::test]
async fn taking_a_group_away_takes_effect_at_once_in_the_process_that_made_the_change() {
    let app = spawn_app().await;
    let a = app.create_group("Group A").await;
    let b = app.create_group("Group B").await;
    let campaign_a = app.create_campaign(&a, "A").await;
    let integration = app.create_integration("A and B", &[&a, &b]).await;
    let (token, _) = app.mint(&integration, &["customers:read"]).await;
    let path = format!("/v1/campaigns/{campaign_a}");
    assert_eq!(
        app.get_as(&token, &path).await.status(),
        200,
        "cached as visible"
    );

    let response = app
        .admin(
            Method::PATCH,
            &format!("/v1/admin/integrations/{integration}"),
        )
        .json(&json!({"groups": [b]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_problem(app.get_as(&token, &path).await, 404, "campaign_not_found").await;
    let me = body(app.get_as(&token, "/v1/me").await).await;
    assert_eq!(me["groups"][0]["id"], b.as_str());
}

#[tokio::test]
async fn taking_a_group_away_reaches_another_replica_within_seconds() {
    let app = spawn_app().await;
    let replica = spawn_replica(&app).await;
    let a = app.create_group("Group A").await;
    let b = app.create_group("Group B").await;
    let campaign_a = app.create_campaign(&a, "A").await;
    let integration = app.create_integration("A and B", &[&a, &b]).await;
    let (token, _) = app.mint(&integration, &["customers:read"]).await;
    let path = format!("/v1/campaigns/{campaign_a}");
    assert_eq!(
        replica.get_as(&token, &path).await.status(),
        200,
        "the replica caches the access"
    );

    let response = app
        .admin(
            Method::PATCH,
            &format!("/v1/admin/integrations/{integration}"),
        )
        .json(&json!({"groups": [b]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    if redis_url().is_some() {
        // Shared through Redis: at once.
        assert_problem(
            replica.get_as(&token, &path).await,
            404,
            "campaign_not_found",
        )
        .await;
    } else {
        // In process: within the local cache's lifetime.
        let gone = eventually(Duration::from_secs(6), || async {
            replica.get_as(&token, &path).await.status() == 404
        })
        .await;
        assert!(
            gone,
            "the replica stops showing the campaign within seconds"
        );
    }
}

#[tokio::test]
async fn a_revocation_reaches_every_replica_through_redis() {
    let Some(_) = redis_url() else {
        eprintln!(
            "skipped: needs INTAKE_TEST_REDIS_URL (replicas share revocations through Redis)"
        );
        return;
    };
    let app = spawn_app().await;
    let replica = spawn_replica(&app).await;
    let group = app.create_group("Group A").await;
    let integration = app.create_integration("CRM", &[&group]).await;
    let (token, jti) = app.mint(&integration, &["customers:read"]).await;
    assert_eq!(replica.get_as(&token, "/v1/me").await.status(), 200);
    let response = app
        .admin(
            Method::DELETE,
            &format!("/v1/admin/integrations/{integration}/tokens/{jti}"),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    assert_problem(replica.get_as(&token, "/v1/me").await, 401, "invalid_token").await;
}

#[tokio::test]
async fn without_redis_revocations_hold_in_process_and_survive_a_restart() {
    let app = spawn_app_with(|env| {
        env.remove("INTAKE_REDIS_URL");
    })
    .await;
    let group = app.create_group("Group A").await;
    let integration = app.create_integration("CRM", &[&group]).await;
    let (token, jti) = app.mint(&integration, &["customers:read"]).await;
    let response = app
        .admin(
            Method::DELETE,
            &format!("/v1/admin/integrations/{integration}/tokens/{jti}"),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    assert_problem(app.get_as(&token, "/v1/me").await, 401, "invalid_token").await;
    // A process started later loads the revocations from the database.
    let restarted = spawn_replica(&app).await;
    assert_problem(
        restarted.get_as(&token, "/v1/me").await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn with_redis_down_access_falls_back_to_the_database() {
    // Nothing listens on port 1: every Redis call fails.
    let app = spawn_app_with(|env| {
        env.insert("INTAKE_REDIS_URL".into(), "redis://127.0.0.1:1".into());
    })
    .await;
    let group = app.create_group("Group A").await;
    let campaign = app.create_campaign(&group, "A").await;
    let integration = app.create_integration("CRM", &[&group]).await;
    let (token, jti) = app.mint(&integration, &["customers:read"]).await;
    assert_eq!(
        app.get_as(&token, &format!("/v1/campaigns/{campaign}"))
            .await
            .status(),
        200
    );
    let response = app
        .admin(
            Method::DELETE,
            &format!("/v1/admin/integrations/{integration}/tokens/{jti}"),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    assert_problem(app.get_as(&token, "/v1/me").await, 401, "invalid_token").await;
}

#[tokio::test]
async fn a_redis_that_lost_its_data_does_not_forget_revocations() {
    let Some(url) = redis_url() else {
        eprintln!("skipped: needs INTAKE_TEST_REDIS_URL");
        return;
    };
    // A Redis database of its own: this test empties it.
    let url = format!("{}/7", url.trim_end_matches('/'));
    let app = spawn_app_with({
        let url = url.clone();
        move |env| {
            env.insert("INTAKE_REDIS_URL".into(), url);
        }
    })
    .await;
    let group = app.create_group("Group A").await;
    let integration = app.create_integration("CRM", &[&group]).await;
    let (token, jti) = app.mint(&integration, &["customers:read"]).await;
    let response = app
        .admin(
            Method::DELETE,
            &format!("/v1/admin/integrations/{integration}/tokens/{jti}"),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);

    let pool = deadpool_redis::Config::from_url(url)
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .expect("pool");
    let mut conn = pool.get().await.expect("redis");
    let () = deadpool_redis::redis::cmd("FLUSHDB")
        .query_async(&mut conn)
        .await
        .expect("flush");

    assert_problem(app.get_as(&token, "/v1/me").await, 401, "invalid_token").await;
}
