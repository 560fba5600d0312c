//! Minting tokens: one path for the admin API and the CLI; every token is
//! recorded (never the token itself), so that it can be listed and revoked.

use std::time::Duration;

use super::Scope;
use super::jwt::JwtKeys;
use crate::error::{ApiError, ErrorCode, FieldError, excerpt};
use crate::ids::{IntegrationId, TokenId};
use crate::store::Store;
use crate::store::models::TokenInfo;

/// Default lifetime of an integration token: 30 days.
pub const DEFAULT_TTL_SECONDS: u64 = 30 * 24 * 3600;
/// Longest lifetime: one year.
pub const MAX_TTL_SECONDS: u64 = 365 * 24 * 3600;
/// Shortest lifetime: one minute.
pub const MIN_TTL_SECONDS: u64 = 60;

/// The scopes an integration token may carry: every scope but `admin`,
/// in the order given, without repeats.
pub fn parse_integration_scopes(requested: &[String]) -> Result<Vec<Scope>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut scopes = Vec::new();
    if requested.is_empty() {
        errors.push(FieldError::field(
            "scopes",
            ErrorCode::Required,
            "at least one scope is required",
        ));
    }
    for (i, name) in requested.iter().enumerate() {
        match Scope::parse(name) {
            Some(Scope::Admin) => errors.push(FieldError::field(
                format!("scopes[{i}]"),
                ErrorCode::InvalidScope,
                "`admin` is for operator tokens (`intake token --admin`), not integrations",
            )),
            Some(scope) => {
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
            None => errors.push(FieldError::field(
                format!("scopes[{i}]"),
                ErrorCode::InvalidScope,
                format!(
                    "{:?} is not a scope; integration scopes are {}",
                    excerpt(name),
                    Scope::ALL
                        .iter()
                        .filter(|s| **s != Scope::Admin)
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    if errors.is_empty() {
        Ok(scopes)
    } else {
        Err(errors)
    }
}

pub fn check_ttl(ttl_seconds: u64) -> Result<Duration, FieldError> {
    if (MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(&ttl_seconds) {
        Ok(Duration::from_secs(ttl_seconds))
    } else {
        Err(FieldError::field(
            "ttl_seconds",
            ErrorCode::OutOfRange,
            format!(
                "ttl_seconds must be from {MIN_TTL_SECONDS} to {MAX_TTL_SECONDS}; got {ttl_seconds}"
            ),
        ))
    }
}

/// Mints a token for a live integration and records it (never the token
/// itself). The token is in the answer only.
pub async fn mint_integration_token(
    store: &Store,
    keys: &JwtKeys,
    integration_id: IntegrationId,
    scopes: &[Scope],
    ttl: Duration,
) -> Result<(String, TokenInfo), ApiError> {
    if store.get_integration(integration_id).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::IntegrationNotFound,
            "No integration has this id.",
        ));
    }
    let (token, claims) = keys
        .mint(&format!("integration:{integration_id}"), scopes, ttl)
        .map_err(ApiError::internal)?;
    let jti: TokenId = claims.jti.parse().map_err(ApiError::internal)?;
    let info = TokenInfo {
        jti,
        integration_id,
        scopes: scopes.iter().map(|s| s.as_str().to_string()).collect(),
        created_at: timestamp(claims.iat),
        expires_at: timestamp(claims.exp),
        last_used_at: None,
        revoked_at: None,
    };
    store.insert_token(&info).await?;
    tracing::info!(%integration_id, %jti, scopes = %claims.scope, "token minted");
    Ok((token, info))
}

/// Mints an operator token and records it (never the token itself): an
/// admin token is accepted only while it is recorded and not revoked.
/// `max_ttl` bounds its lifetime (`INTAKE_ADMIN_TOKEN_MAX_TTL_SECONDS`).
pub async fn mint_admin_token(
    store: &Store,
    keys: &JwtKeys,
    ttl: Duration,
    max_ttl: Duration,
) -> anyhow::Result<(String, TokenId)> {
    anyhow::ensure!(
        ttl >= Duration::from_secs(MIN_TTL_SECONDS) && ttl <= max_ttl,
        "an admin token lives from {MIN_TTL_SECONDS} to {} seconds (INTAKE_ADMIN_TOKEN_MAX_TTL_SECONDS); asked for {}",
        max_ttl.as_secs(),
        ttl.as_secs()
    );
    let (token, claims) = keys.mint("admin", &[Scope::Admin], ttl)?;
    let jti: TokenId = claims.jti.parse()?;
    store
        .insert_admin_token(jti, timestamp(claims.iat), timestamp(claims.exp))
        .await?;
    tracing::info!(%jti, "admin token minted");
    Ok((token, jti))
}

/// A JWT time (seconds since the epoch) as stored.
fn timestamp(seconds: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}
