//! The import runner: one thread per replica that claims running import
//! jobs (confirmed and not held by a live replica: never taken, or whose
//! holder stopped renewing its lease) and runs them one at a time,
//! renewing its lease while it runs. It also cancels the jobs not
//! confirmed in time and deletes finished jobs past their retention.
//!
//! The engine's futures are not `Send` (they run on one thread, as request
//! handlers do): the runner has a thread and a single-threaded runtime of
//! its own, and never takes an HTTP worker.

use std::time::{Duration, Instant};

use actix_web::web;

use crate::startup::AppState;
use crate::store::imports::ImportJob;

/// How often the runner sweeps expired and old jobs.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// How often an idle runner looks for jobs (a confirmation on this replica
/// wakes it at once).
const POLL_EVERY: Duration = Duration::from_secs(1);

/// Starts this replica's runner; it stops once the store is closed.
pub fn start_import_runner(state: web::Data<AppState>) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("import-runner".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::error!(error = %e, "the import runner cannot start");
                    return;
                }
            };
            tokio::task::LocalSet::new().block_on(&runtime, run(state));
        })?;
    Ok(())
}

async fn run(state: web::Data<AppState>) {
    let owner = uuid::Uuid::new_v4();
    let lease = state.settings.import_lease;
    let mut swept: Option<Instant> = None;
    loop {
        if state.store.is_closed() {
            return;
        }
        if swept.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
            swept = Some(Instant::now());
            match state
                .store
                .expire_imports(state.settings.import_retention)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(jobs = n, "import jobs expired or deleted"),
                Err(e) => tracing::warn!(error = %e, "import jobs not swept"),
            }
            remove_stale_uploads(&state.settings.data_dir.join("uploads"));
        }
        match state.store.claim_import(owner, lease).await {
            Ok(Some(job)) => {
                run_held(&state, job, owner, lease).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                if state.store.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "import jobs not claimed");
            }
        }
        tokio::select! {
            _ = state.imports.notified() => {}
            _ = tokio::time::sleep(POLL_EVERY) => {}
        }
    }
}

/// Runs a job while renewing its lease every third of its length.
async fn run_held(state: &AppState, job: ImportJob, owner: uuid::Uuid, lease: Duration) {
    let id = job.id;
    let heartbeat = async {
        let mut every = tokio::time::interval(lease / 3);
        every.tick().await;
        loop {
            every.tick().await;
            match state.store.renew_import_lease(id, owner, lease).await {
                Ok(true) => {}
                // Cancelled or taken over: the next checkpoint refuses.
                Ok(false) => std::future::pending::<()>().await,
                Err(e) => tracing::warn!(error = %e, job = %id, "import lease not renewed"),
            }
        }
    };
    let run = crate::ingest::imports::run_import(state.services(), job, owner);
    tokio::select! {
        _ = run => {}
        _ = heartbeat => {}
    }
}

/// Deletes uploads left behind by a process that stopped while it read
/// them (a finished upload is deleted at once): those older than an hour.
fn remove_stale_uploads(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = path.extension().is_some_and(|e| e == "upload")
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|at| at.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(3600));
        if stale && let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(error = %e, file = %path.display(), "a stale upload not deleted");
        }
    }
}
