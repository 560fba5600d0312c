//! Ingestion: turning rows of any format into validated, authorized batches
//! ready for the store. Formats (JSON, NDJSON, CSV) only produce
//! `CaseInput`s with their row numbers; everything after that is shared.

pub mod cases;

use crate::error::{ApiError, ErrorCode, FieldError};

/// The most row problems one answer lists (the count says how many more).
pub const MAX_REPORTED_ERRORS: usize = 1_000;

/// A 422 listing at most [`MAX_REPORTED_ERRORS`] of `errors` (sorted by row).
pub fn rows_rejected(code: ErrorCode, mut errors: Vec<FieldError>, rows_failed: u64) -> ApiError {
    errors.sort_by_key(|e| e.row);
    let total = errors.len();
    errors.truncate(MAX_REPORTED_ERRORS);
    let detail = if total > MAX_REPORTED_ERRORS {
        format!(
            "{rows_failed} rows are invalid ({total} problems; the first {MAX_REPORTED_ERRORS} are listed); nothing was written."
        )
    } else {
        format!(
            "{rows_failed} of the rows are invalid ({total} problems, listed in `errors`); nothing was written."
        )
    };
    ApiError::new(code, detail).with_errors(errors)
}
