//! Deployment: several replicas starting together on one database.

use std::time::Duration;

use crate::helpers::{TEST_SECRET, fresh_postgres_schema, intake_command, postgres_url};

/// Two `intake serve` processes started at the same moment on a fresh
/// schema: both come up, and each migration is applied once (sqlx's
/// migrator holds a PostgreSQL advisory lock while it migrates, so the
/// second waits for the first and then finds nothing left to do).
#[tokio::test]
async fn two_replicas_starting_together_apply_each_migration_once() {
    let Some(base) = postgres_url() else {
        eprintln!(
            "skipped: replicas sharing one database run on PostgreSQL (INTAKE_TEST_DATABASE_URL)"
        );
        return;
    };
    let url = fresh_postgres_schema(&base).await;
    let data_dirs = [
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    ];
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("address")
                .port()
        })
        .collect();
    let mut commands: Vec<std::process::Command> = ports
        .iter()
        .zip(&data_dirs)
        .map(|(port, data_dir)| {
            let mut command = intake_command();
            command
                .env("INTAKE_DATABASE_URL", &url)
                .env("INTAKE_BIND", format!("127.0.0.1:{port}"))
                .env("INTAKE_DATA_DIR", data_dir.path())
                .env("INTAKE_JWT_SECRET", TEST_SECRET)
                .env("INTAKE_DATABASE_MAX_CONNECTIONS", "4")
                .env("INTAKE_LOG", "warn")
                .arg("serve")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            command
        })
        .collect();
    // Both spawned before either is waited for: they race to migrate.
    let mut processes: Vec<KillOnDrop> = commands
        .iter_mut()
        .map(|command| KillOnDrop(command.spawn().expect("intake serve")))
        .collect();

    intake::install_tls_provider();
    let client = reqwest::Client::new();
    for (port, process) in ports.iter().zip(processes.iter_mut()) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let exited = process.0.try_wait().expect("try_wait");
            if exited.is_some() || tokio::time::Instant::now() > deadline {
                let _ = process.0.kill();
                let mut stderr = String::new();
                if let Some(mut pipe) = process.0.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                panic!("the replica on port {port} did not come up ({exited:?}): {stderr}");
            }
            let up = client
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if up {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for process in &mut processes {
        assert!(
            process.0.try_wait().expect("try_wait").is_none(),
            "a replica exited"
        );
    }

    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let rows: Vec<(i64, i64, bool)> = sqlx::query_as(
        "SELECT version, COUNT(*), bool_and(success) FROM _sqlx_migrations GROUP BY version ORDER BY version",
    )
    .fetch_all(&mut conn)
    .await
    .expect("the migrations table");
    let expected = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .expect("migrations/postgres")
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert_eq!(rows.len(), expected, "{rows:?}");
    for (version, count, success) in rows {
        assert_eq!(count, 1, "migration {version} recorded {count} times");
        assert!(success, "migration {version} did not succeed");
    }
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
