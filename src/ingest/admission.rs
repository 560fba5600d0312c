//! Admission control: how many bulk ingestions run at once.
//!
//! A bulk ingestion (an NDJSON stream, a CSV upload, a JSON body of more
//! than one batch) holds a writer's connection for as long as it runs. If
//! every writer's connection were taken by bulk work, the small requests
//! of client systems pushing cases as they happen would queue behind it.
//! So at most `max_bulk_requests` run at once (by default one less than the
//! writers' pool holds); one more is answered at once with 503
//! `server_busy` and `Retry-After`, never left to time out.

use std::sync::Arc;

use actix_web::http::header;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, ErrorCode};

/// Seconds a bulk request turned away is asked to wait.
pub const BUSY_RETRY_AFTER_SECONDS: u64 = 1;

/// The bulk ingestions running now, bounded.
pub struct BulkAdmission {
    permits: Arc<Semaphore>,
    capacity: usize,
}

/// A running bulk ingestion's place; dropped when the request ends.
pub type BulkPermit = OwnedSemaphorePermit;

impl BulkAdmission {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// The bulk ingestions allowed at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bulk ingestions running now.
    pub fn running(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }

    /// A place for one bulk ingestion, or 503 `server_busy` at once.
    pub fn enter(&self) -> Result<BulkPermit, ApiError> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            tracing::info!(capacity = self.capacity, "bulk ingestion turned away: at capacity");
            ApiError::new(
                ErrorCode::ServerBusy,
                format!(
                    "{} bulk ingestions (streams, uploads, large bodies) are running, as many as this server writes at once; retry in {BUSY_RETRY_AFTER_SECONDS} s. Small requests are served meanwhile.",
                    self.capacity
                ),
            )
            .with_header(header::RETRY_AFTER, BUSY_RETRY_AFTER_SECONDS.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_capacity_a_bulk_request_is_refused_at_once_and_a_place_frees_on_drop() {
        let admission = BulkAdmission::new(2);
        let first = admission.enter().expect("first");
        let _second = admission.enter().expect("second");
        let refused = admission.enter().expect_err("third refused");
        assert_eq!(refused.code, ErrorCode::ServerBusy);
        drop(first);
        assert!(admission.enter().is_ok(), "a place freed");
    }
}
