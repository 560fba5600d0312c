//! Graceful shutdown: on SIGTERM a replica stops accepting, lets the
//! requests in flight finish within its bound, and exits; an in-flight bulk
//! request either completes or leaves nothing.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    ReplicaProcess, TestApp, count_cases, finish_ndjson_stream, spawn_app, start_ndjson_stream,
};

/// An app with staff member A-1 and a `cases:write` token.
async fn world() -> (TestApp, String) {
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
    let (token, _) = app.mint(&integration, &["cases:write"]).await;
    (app, token)
}

fn terminate(replica: &ReplicaProcess) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &replica.process.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits (at most 15 s) for the replica to exit, and answers how.
async fn exited(replica: &mut ReplicaProcess) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = replica.process.try_wait().expect("wait") {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replica did not exit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_stream_finish_and_takes_no_new_connection() {
    let (app, token) = world().await;
    let mut replica = ReplicaProcess::start(&app, &[]).await;

    // An atomic stream of 6,000 cases (two batches), half sent.
    let (socket, rest) = start_ndjson_stream(&replica.address, &token, None, 6_000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    terminate(&replica);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // No new connection is taken.
    let refused = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(&replica.address),
    )
    .await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "a new connection was accepted after SIGTERM"
    );

    // The request in flight finishes: all of it is written.
    let answer = finish_ndjson_stream(socket, rest).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(count_cases(&app).await, 6_000);

    // And the process exits, cleanly, within its bound.
    let exit = exited(&mut replica).await;
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn a_stream_still_open_when_the_bound_runs_out_leaves_nothing() {
    let (app, token) = world().await;
    let mut replica =
        ReplicaProcess::start(&app, &[("INTAKE_SHUTDOWN_TIMEOUT_SECONDS", "1")]).await;
    let (socket, _rest) = start_ndjson_stream(&replica.address, &token, None, 6_000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    terminate(&replica);
    // The stream never ends: past the bound the replica gives it up and
    // exits; its transaction is rolled back.
    exited(&mut replica).await;
    drop(socket);
    assert_eq!(count_cases(&app).await, 0, "nothing half-written");
}
