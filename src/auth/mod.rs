//! Authentication and authorization.
//!
//! Every `/v1` handler takes an [`Authorized<S>`] argument, where `S` names
//! the scope the route needs: the check is part of the handler's signature,
//! so a handler cannot forget it, and the OpenAPI `security` of the route
//! names the same scope. Only the `Authorization: Bearer` header is read; a
//! token in the query string is never accepted.

pub mod jwt;

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorCode};
use crate::startup::AppState;
use jwt::Claims;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    #[serde(rename = "cases:write")]
    CasesWrite,
    #[serde(rename = "cases:read")]
    CasesRead,
    #[serde(rename = "customers:write")]
    CustomersWrite,
    #[serde(rename = "customers:read")]
    CustomersRead,
    #[serde(rename = "customers:create")]
    CustomersCreate,
    #[serde(rename = "imports:write")]
    ImportsWrite,
    #[serde(rename = "imports:read")]
    ImportsRead,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::CasesWrite,
        Scope::CasesRead,
        Scope::CustomersWrite,
        Scope::CustomersRead,
        Scope::CustomersCreate,
        Scope::ImportsWrite,
        Scope::ImportsRead,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CasesWrite => "cases:write",
            Scope::CasesRead => "cases:read",
            Scope::CustomersWrite => "customers:write",
            Scope::CustomersRead => "customers:read",
            Scope::CustomersCreate => "customers:create",
            Scope::ImportsWrite => "imports:write",
            Scope::ImportsRead => "imports:read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// A scope a route requires, as a type.
pub trait RequiredScope {
    const SCOPE: Scope;
}

/// The `admin` scope.
pub struct AdminScope;
impl RequiredScope for AdminScope {
    const SCOPE: Scope = Scope::Admin;
}

/// Who is calling.
#[derive(Clone, Debug)]
pub enum Principal {
    /// An operator's token (`sub: admin`).
    Admin,
}

/// Proof that the request carries a valid token with the scope `S`.
pub struct Authorized<S> {
    pub principal: Principal,
    pub claims: Claims,
    _scope: PhantomData<S>,
}

impl<S: RequiredScope> FromRequest for Authorized<S> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authorize::<S>(req))
    }
}

fn authorize<S: RequiredScope>(req: &HttpRequest) -> Result<Authorized<S>, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))?;
    let token = bearer_token(req)?;
    let claims = state.jwt.verify(token).map_err(|reason| {
        tracing::info!(%reason, "token refused");
        invalid_token("The bearer token is invalid or expired.")
    })?;
    let principal = match claims.sub.as_str() {
        "admin" => Principal::Admin,
        _ => {
            tracing::info!(sub = %claims.sub, "token refused: unknown subject");
            return Err(invalid_token("The bearer token is invalid or expired."));
        }
    };
    if !claims.has_scope(S::SCOPE) {
        let scope = S::SCOPE.as_str();
        return Err(ApiError::new(
            ErrorCode::InsufficientScope,
            format!("This route needs the scope `{scope}`."),
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\""),
        ));
    }
    Ok(Authorized {
        principal,
        claims,
        _scope: PhantomData,
    })
}

fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| invalid_token("An `Authorization: Bearer <token>` header is required."))?;
    let value = value
        .to_str()
        .map_err(|_| invalid_token("The Authorization header is not readable text."))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(invalid_token(
            "The Authorization header must use the Bearer scheme.",
        )),
    }
}

fn invalid_token(detail: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidToken, detail).with_header(
        header::WWW_AUTHENTICATE,
        format!("Bearer error=\"invalid_token\", error_description=\"{detail}\""),
    )
}
