//! The admin API (scope `admin`): groups, teams, staff, categories, campaigns.

pub mod admin_tokens;
pub mod campaigns;
pub mod categories;
pub mod groups;
pub mod integrations;
pub mod staff;
pub mod teams;

use validator::Validate;

use crate::domain::field_errors;
use crate::error::{ApiError, ErrorCode, FieldError};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.configure(groups::configure)
        .configure(teams::configure)
        .configure(staff::configure)
        .configure(categories::configure)
        .configure(campaigns::configure)
        .configure(integrations::configure)
        .configure(admin_tokens::configure);
}

/// Runs a body's `validator` rules: 422 `validation_failed` listing every
/// field problem.
pub fn validate(body: &impl Validate) -> Result<(), ApiError> {
    body.validate()
        .map_err(|report| ApiError::validation(ErrorCode::ValidationFailed, field_errors(&report)))
}

/// A 422 whose code is the single reference problem found (e.g.
/// `unknown_group`), or `validation_failed` when there are several kinds.
pub fn check_references(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(reference_error(errors))
    }
}

/// The 422 of [`check_references`], for `errors` known to be non-empty.
pub fn reference_error(errors: Vec<FieldError>) -> ApiError {
    let code = match errors.first() {
        Some(first) if errors.iter().all(|e| e.code == first.code) => first.code,
        _ => ErrorCode::ValidationFailed,
    };
    ApiError::validation(code, errors)
}
