//! Ingestion, with or without a request: sources (JSON, NDJSON, CSV) yield
//! numbered rows, one engine ([`engine::run`]) validates and resolves them
//! by resource (cases, customers) and hands them to the store's writers.

pub mod admission;
pub mod case_csv;
pub mod cases;
pub mod csv;
pub mod csv_file;
pub mod customer_csv;
pub mod customers;
pub mod engine;
pub mod imports;
pub mod input;
pub mod ndjson;
pub mod sources;
pub mod staff;
pub mod templates;
pub mod workbook;

use crate::auth::access::AccessControl;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::metrics::Metrics;
use crate::store::Store;

/// What a run takes from the service around it.
#[derive(Clone, Copy)]
pub struct Services<'a> {
    pub store: &'a Store,
    /// The configured categories (and access generations).
    pub control: &'a AccessControl,
    /// The staff directories of small runs.
    pub staff: &'a staff::StaffCache,
    pub metrics: &'a Metrics,
}

/// The most row problems one answer lists (the count says how many more).
pub const MAX_REPORTED_ERRORS: usize = 1_000;

/// The row problems of a request: every one counted, the first
/// [`MAX_REPORTED_ERRORS`] kept (memory stays bounded on any stream).
#[derive(Debug)]
pub struct RowErrors {
    pub listed: Vec<FieldError>,
    pub problems: u64,
    pub failed_rows: u64,
    /// The most problems kept.
    limit: usize,
}

impl Default for RowErrors {
    fn default() -> Self {
        Self {
            listed: Vec::new(),
            problems: 0,
            failed_rows: 0,
            limit: MAX_REPORTED_ERRORS,
        }
    }
}

impl RowErrors {
    /// Keeps every problem: for inputs bounded by other limits (a CSV
    /// upload's records), whose answer lists them all.
    pub fn every_one() -> Self {
        Self {
            limit: usize::MAX,
            ..Self::default()
        }
    }

    /// Adds one batch's problems (sorted here by row, fields in order).
    pub fn add(&mut self, mut errors: Vec<FieldError>, failed_rows: u64) {
        errors.sort_by_key(|e| e.row);
        self.problems += errors.len() as u64;
        self.failed_rows += failed_rows;
        let room = self.limit.saturating_sub(self.listed.len());
        self.listed.extend(errors.into_iter().take(room));
    }

    pub fn is_empty(&self) -> bool {
        self.problems == 0
    }

    /// Problems not listed for want of room.
    pub fn unlisted(&self) -> u64 {
        self.problems - self.listed.len() as u64
    }

    /// The 422 of an atomic request: nothing was written.
    pub fn into_rejection(self, code: ErrorCode) -> ApiError {
        let (failed, problems) = (self.failed_rows, self.problems);
        let rows = if failed == 1 {
            "1 row is invalid".to_owned()
        } else {
            format!("{failed} rows are invalid")
        };
        let detail = if self.unlisted() > 0 {
            format!(
                "{rows} ({problems} problems; the first {MAX_REPORTED_ERRORS} are listed); nothing was written."
            )
        } else if problems == 1 {
            format!("{rows} (1 problem, listed in `errors`); nothing was written.")
        } else {
            format!("{rows} ({problems} problems, listed in `errors`); nothing was written.")
        };
        ApiError::new(code, detail).with_errors(self.listed)
    }
}
