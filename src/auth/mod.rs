//! Authentication and authorization.
//!
//! Every `/v1` handler takes an [`Authorized<S>`] argument, where `S` names
//! the scope the route needs: the check is part of the handler's signature,
//! so a handler cannot forget it, and the OpenAPI `security` of the route
//! names the same scope. Only the `Authorization: Bearer` header is read; a
//! token in the query string is never accepted.

pub mod access;
pub mod jwt;
pub mod tokens;

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::access::GroupAccess;
use crate::error::{ApiError, ErrorCode};
use crate::ids::{IntegrationId, TokenId};
use crate::settings::RatePolicy;
use crate::store::Store;
use jwt::Claims;
use jwt::JwtKeys;

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
        // Exact names only: scopes are identifiers, not enum values.
        Scope::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// Who may call a route, as a type: the token's subject kind and the
/// scopes of which it needs one.
pub trait RequiredScope {
    /// Any one of these scopes opens the route.
    const SCOPES: &'static [Scope];
    /// `Admin` or `IntegrationPrincipal`.
    type Principal: FromPrincipal;
}

/// Narrows a [`Principal`] to the kind a route serves.
pub trait FromPrincipal: Sized {
    fn from_principal(principal: Principal) -> Option<Self>;
}

/// An operator (`sub: admin`).
#[derive(Clone, Debug)]
pub struct Admin;

/// An integration, with the groups it sees now.
#[derive(Clone, Debug)]
pub struct IntegrationPrincipal {
    pub id: IntegrationId,
    pub jti: TokenId,
    pub access: GroupAccess,
    /// The rate limit in force for it (its own, or the default).
    pub rate_limit: RatePolicy,
}

/// The outcome of verifying a request's token, left in the request's
/// extensions by the `/v1` gate (the `guard` middleware) so that the handler's
/// [`Authorized`] takes it instead of verifying the token again.
pub struct Authentication(pub Option<Result<(Principal, Claims), ApiError>>);

/// Who is calling.
#[derive(Clone, Debug)]
pub enum Principal {
    Admin(Admin),
    Integration(IntegrationPrincipal),
}

impl FromPrincipal for Admin {
    fn from_principal(principal: Principal) -> Option<Self> {
        match principal {
            Principal::Admin(admin) => Some(admin),
            Principal::Integration(_) => None,
        }
    }
}

impl FromPrincipal for IntegrationPrincipal {
    fn from_principal(principal: Principal) -> Option<Self> {
        match principal {
            Principal::Integration(integration) => Some(integration),
            Principal::Admin(_) => None,
        }
    }
}

macro_rules! scope_markers {
    ($( $(#[doc = $doc:literal])* $name:ident => $principal:ty : [$($scope:ident),+]; )+) => {
        $(
            $(#[doc = $doc])*
            pub struct $name;
            impl RequiredScope for $name {
                const SCOPES: &'static [Scope] = &[$(Scope::$scope),+];
                type Principal = $principal;
            }
        )+
    };
}

scope_markers! {
    /// The admin API.
    AdminScope => Admin: [Admin];
    /// Any integration token (e.g. `GET /v1/me`).
    AnyIntegration => IntegrationPrincipal: [CasesWrite, CasesRead, CustomersWrite, CustomersRead, CustomersCreate, ImportsWrite, ImportsRead];
    /// Writing cases.
    CasesWrite => IntegrationPrincipal: [CasesWrite];
    /// Reading cases and lists.
    CasesRead => IntegrationPrincipal: [CasesRead, CasesWrite];
    /// Bulk customer upserts.
    CustomersWrite => IntegrationPrincipal: [CustomersWrite];
    /// Reading customers.
    CustomersRead => IntegrationPrincipal: [CustomersRead, CustomersWrite];
    /// Adding one customer (agent-facing apps).
    CustomersCreate => IntegrationPrincipal: [CustomersCreate, CustomersWrite];
    /// Reading campaigns: whoever works with customers.
    CampaignsRead => IntegrationPrincipal: [CustomersRead, CustomersWrite, CustomersCreate];
    /// Uploading and confirming imports.
    ImportsWrite => IntegrationPrincipal: [ImportsWrite];
    /// Reading imports.
    ImportsRead => IntegrationPrincipal: [ImportsRead, ImportsWrite];
    /// Reading reference data (teams, staff, categories): whoever sends cases.
    ReferenceRead => IntegrationPrincipal: [CasesRead, CasesWrite, ImportsWrite];
}

/// Proof that the request carries a valid token of the kind and with a scope
/// that `S` names.
pub struct Authorized<S: RequiredScope> {
    pub principal: S::Principal,
    pub claims: Claims,
}

impl<S: RequiredScope + 'static> FromRequest for Authorized<S> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let authenticator = req.app_data::<web::Data<Authenticator>>().cloned();
        let done = req
            .extensions_mut()
            .get_mut::<Authentication>()
            .and_then(|done| done.0.take());
        let token = bearer_token(req).map(str::to_string);
        Box::pin(async move {
            let (principal, claims) = match done {
                Some(done) => done?,
                None => {
                    let authenticator = authenticator.ok_or_else(|| {
                        ApiError::internal(anyhow::anyhow!("authenticator missing"))
                    })?;
                    authenticator.authenticate(&token?).await?
                }
            };
            let has_scope = S::SCOPES.iter().any(|scope| claims.has_scope(*scope));
            let principal = if has_scope {
                S::Principal::from_principal(principal)
            } else {
                None
            };
            match principal {
                Some(principal) => Ok(Authorized { principal, claims }),
                None => Err(insufficient_scope(S::SCOPES)),
            }
        })
    }
}

/// What verifying a token takes: the keys, the integrations' access (and
/// revocations), the recorded admin tokens, and two settings. Registered as
/// its own `web::Data`, read by the [`Authorized`] extractor.
pub struct Authenticator {
    pub jwt: std::sync::Arc<JwtKeys>,
    pub access: std::sync::Arc<access::AccessControl>,
    pub store: Store,
    /// `INTAKE_ADMIN_TOKEN_MAX_TTL_SECONDS`.
    pub admin_token_max_ttl: std::time::Duration,
    /// The rate limit of an integration without one of its own.
    pub default_rate_limit: RatePolicy,
}

impl Authenticator {
    /// Verifies a request's bearer token and finds who it speaks for.
    pub async fn authenticate_request(
        &self,
        req: &HttpRequest,
    ) -> Result<(Principal, Claims), ApiError> {
        self.authenticate(bearer_token(req)?).await
    }

    /// Verifies the token and finds who it speaks for.
    async fn authenticate(&self, token: &str) -> Result<(Principal, Claims), ApiError> {
        let refuse = |refusal: jwt::Refusal| {
            tracing::info!(reason = %refusal.reason, "token refused");
            invalid_token(refusal.public)
        };
        let invalid = |reason: &str| refuse(jwt::Refusal::invalid(reason));
        let claims = self.jwt.verify(token).map_err(refuse)?;
        // From here on the signature is verified: the caller may be told
        // what to fix.
        if claims.sub == "admin" {
            // An admin token is accepted while it is recorded (minted by this
            // deployment), not revoked, and no longer-lived than allowed.
            let jti: TokenId = claims.jti.parse().map_err(|_| invalid("malformed jti"))?;
            let lifetime = claims.exp.saturating_sub(claims.iat);
            if lifetime > self.admin_token_max_ttl.as_secs() as i64 {
                return Err(refuse(jwt::Refusal::new(
                    "admin token outlives INTAKE_ADMIN_TOKEN_MAX_TTL_SECONDS",
                    "The admin token lives longer than this deployment allows; mint a shorter one.",
                )));
            }
            if !self.store.admin_token_live(jti).await? {
                return Err(refuse(jwt::Refusal::new(
                    "admin token not recorded, revoked or expired",
                    "The admin token was revoked, or was not minted by this deployment.",
                )));
            }
            tracing::Span::current().record("integration_id", "admin");
            return Ok((Principal::Admin(Admin), claims));
        }
        let Some(id) = claims
            .sub
            .strip_prefix("integration:")
            .and_then(|id| id.parse::<IntegrationId>().ok())
        else {
            return Err(invalid("unknown subject"));
        };
        let jti: TokenId = claims.jti.parse().map_err(|_| invalid("malformed jti"))?;
        let checked = self.access.check(jti, id).await?;
        if checked.revoked {
            return Err(refuse(jwt::Refusal::new("revoked", jwt::Refusal::REVOKED)));
        }
        let access = match checked.access {
            None => {
                return Err(refuse(jwt::Refusal::new(
                    "integration deleted",
                    "The token's integration no longer exists.",
                )));
            }
            Some(access) if !access.enabled => {
                return Err(refuse(jwt::Refusal::new(
                    "integration disabled",
                    "The token's integration is disabled; an operator can enable it.",
                )));
            }
            Some(access) => access,
        };
        tracing::Span::current().record("integration_id", id.to_string().as_str());
        self.access.touch(jti);
        Ok((
            Principal::Integration(IntegrationPrincipal {
                id,
                jti,
                access: GroupAccess::new(id, access.groups)
                    .with_staff_generation(checked.staff_generation),
                rate_limit: access.rate_limit.unwrap_or(self.default_rate_limit),
            }),
            claims,
        ))
    }
}

fn insufficient_scope(scopes: &[Scope]) -> ApiError {
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let detail = match names.as_slice() {
        [one] => format!("This route needs the scope `{one}`."),
        many => format!(
            "This route needs one of the scopes `{}`.",
            many.join("`, `")
        ),
    };
    ApiError::new(ErrorCode::InsufficientScope, detail).with_header(
        header::WWW_AUTHENTICATE,
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"{}\"",
            names.join(" ")
        ),
    )
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
