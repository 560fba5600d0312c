//! Graceful shutdown: on SIGTERM a replica stops accepting, lets the
//! requests in flight finish within its bound, and exits; an in-flight bulk
//! request either completes or leaves nothing.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{ReplicaProcess, count_cases, spawn_app};

#[tokio::test]
async fn sigterm_lets_an_in_flight_stream_finish_and_takes_no_new_connection() {
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
    let mut replica = ReplicaProcess::start(&app, &[]).await;

    // An atomic stream of 6,000 cases (two batches), half sent.
    let mut socket = tokio::net::TcpStream::connect(&replica.address)
        .await
        .expect("connect");
    let head = format!(
        "POST /v1/cases HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n",
        replica.address
    );
    socket.write_all(head.as_bytes()).await.expect("write");
    let lines: String = (0..6_000)
        .map(|i| {
            format!(
                "{}\n",
                json!({"external_id": format!("G-{i}"), "staff_id": "A-1"})
            )
        })
        .collect();
    let (first, rest) = lines.as_bytes().split_at(lines.len() / 2);
    for part in [first] {
        socket
            .write_all(format!("{:x}\r\n", part.len()).as_bytes())
            .await
            .expect("write");
        socket.write_all(part).await.expect("write");
        socket.write_all(b"\r\n").await.expect("write");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let status = std::process::Command::new("kill")
        .args(["-TERM", &replica.process.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
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
    socket
        .write_all(format!("{:x}\r\n", rest.len()).as_bytes())
        .await
        .expect("write");
    socket.write_all(rest).await.expect("write");
    socket.write_all(b"\r\n0\r\n\r\n").await.expect("write");
    let mut answer = vec![0u8; 4096];
    let n = socket.read(&mut answer).await.expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(count_cases(&app).await, 6_000);

    // And the process exits, cleanly, within its bound.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(status) = replica.process.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replica did not exit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn a_stream_still_open_when_the_bound_runs_out_leaves_nothing() {
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
    let mut replica =
        ReplicaProcess::start(&app, &[("INTAKE_SHUTDOWN_TIMEOUT_SECONDS", "1")]).await;

    let mut socket = tokio::net::TcpStream::connect(&replica.address)
        .await
        .expect("connect");
    let head = format!(
        "POST /v1/cases HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n",
        replica.address
    );
    socket.write_all(head.as_bytes()).await.expect("write");
    let lines: String = (0..6_000)
        .map(|i| {
            format!(
                "{}\n",
                json!({"external_id": format!("H-{i}"), "staff_id": "A-1"})
            )
        })
        .collect();
    socket
        .write_all(format!("{:x}\r\n", lines.len()).as_bytes())
        .await
        .expect("write");
    socket.write_all(lines.as_bytes()).await.expect("write");
    socket.write_all(b"\r\n").await.expect("write");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &replica.process.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    // The stream never ends: past the bound the replica gives it up and
    // exits; its transaction is rolled back.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while replica.process.try_wait().expect("wait").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica did not exit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(socket);
    assert_eq!(count_cases(&app).await, 0, "nothing half-written");
}
