//! The OpenAPI document, collected from the handlers' `#[utoipa::path]`
//! attributes (nothing is listed by hand) and completed with the answers
//! every route shares.

use actix_web::App;
use utoipa::OpenApi;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Scopes, SecurityRequirement,
    SecurityScheme,
};
use utoipa::openapi::{Content, Ref, RefOr, Required, Response, ResponseBuilder};
use utoipa_actix_web::AppExt;

use crate::auth::Scope;
use crate::error::{Column, ErrorCode, FieldError, Problem};

mod examples;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "intake",
        description = "Ingestion API for cases and customers.\n\n\
Every `/v1` route needs `Authorization: Bearer <JWT>` (the `bearer` scheme); the scopes the token must carry are \
listed in each operation's `security`, under the `scopes` scheme. Errors are `application/problem+json` with a stable \
`code`, a `type` that links to the code's entry in the error reference (`/docs/errors`), and a `request_id` that is \
also echoed in `X-Request-Id`. Collections answer `{items, next_cursor}`, ordered by creation; pass `next_cursor` \
back as `?cursor=`.\n\nThe examples name the data `intake seed-demo` creates (staff `DEMO-A1`, evaluator \
`DEMO-E1`, category `General`), so that \"Try it out\" works on a demo server as written.",
        version = env!("CARGO_PKG_VERSION"),
        contact(name = "intake operators"),
    ),
    servers((url = "/", description = "The server that serves this document")),
    components(schemas(ErrorCode, Problem, FieldError, Column)),
    tags(
        (name = "integration", description = "The calling integration: who it is, its limits, the enums."),
        (name = "cases", description = "Cases and case lists (the integration's groups only)."),
        (name = "reference", description = "Reference data for integrations (scope `cases:read`, `cases:write` or `imports:write`): the teams and active staff of the integration's groups and the categories, to fill `staff_id`, `external_staff_id`, `assign_team`, `assign_evaluator`, `category` and `agent` from the API alone."),
        (name = "customers", description = "Campaigns and their customers (the integration's groups only)."),
        (name = "imports", description = "Import jobs: a spreadsheet file checked and previewed, confirmed, then written in the background with its progress and failed rows (the integration's own jobs only)."),
        (name = "templates", description = "Import templates: a file to fill in a spreadsheet program and upload as an import job, with examples and the values in force for the integration."),
        (name = "operations", description = "Health, readiness, metrics and public keys; no token."),
        (name = "admin", description = "Operators' API (scope `admin`): groups, teams, staff, categories, campaigns, integrations and their tokens."),
    ),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

/// The name of the scheme that carries the token.
const BEARER: &str = "bearer";
/// The name of the scheme that lists the scopes (see [`SecuritySchemes`]).
const SCOPES: &str = "scopes";

/// What a scope lets a token do (the `scopes` scheme lists them).
fn scope_description(scope: Scope) -> &'static str {
    match scope {
        Scope::CasesWrite => "Send cases (JSON, NDJSON, CSV) and read the reference data.",
        Scope::CasesRead => "Read cases and case lists, and the reference data.",
        Scope::CustomersWrite => "Upsert customers of the integration's campaigns.",
        Scope::CustomersRead => "Read campaigns and their customers.",
        Scope::CustomersCreate => "Add single customers to a campaign.",
        Scope::ImportsWrite => {
            "Upload, confirm and cancel import jobs; read the templates and reference data."
        }
        Scope::ImportsRead => "Read import jobs, their progress and failed rows.",
        Scope::Admin => "The operators' API (admin tokens only).",
    }
}

/// Two schemes, required together: `bearer` says how the token is sent,
/// `scopes` (OAuth2-shaped, so that linters, generators and Swagger UI
/// read them) which scopes it must carry. Tokens are minted by intake
/// itself, not by an OAuth2 server: the flow's token URL is the admin route
/// that mints them, which takes an admin token, not client credentials.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT minted by intake (`intake token`, `intake seed-demo`, or `POST \
                         /v1/admin/integrations/{id}/tokens`), sent as `Authorization: Bearer <token>`. \
                         In Swagger UI, paste it here.",
                    ))
                    .build(),
            ),
        );
        let scopes = Scopes::from_iter(Scope::ALL.iter().map(|scope| {
            (
                scope.as_str().to_string(),
                scope_description(*scope).to_string(),
            )
        }));
        components.add_security_scheme(
            SCOPES,
            SecurityScheme::OAuth2(OAuth2::with_description(
                // The minting route, its `{id}` escaped (a token URL is a
                // URI reference, not a template).
                [Flow::ClientCredentials(ClientCredentials::new(
                    "/v1/admin/integrations/%7Bid%7D/tokens",
                    scopes,
                ))],
                "The scopes a token carries (its `scope` claim), listed so that tools can read them. \
                 intake is not an OAuth2 server: an operator mints tokens with `POST \
                 /v1/admin/integrations/{id}/tokens` (or `intake token`), and they are sent with the \
                 `bearer` scheme. An operation lists one requirement per scope that lets a token call \
                 it: a bearer token carrying that scope.",
            )),
        );
    }
}

/// The whole document, as `/openapi.json` serves it and `intake openapi` prints it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::routes::configure)
        .split_for_parts();
    add_shared_responses(&mut doc);
    examples::complete(&mut doc);
    doc
}

fn problem(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .build(),
    )
}

/// The `Idempotency-Key` header every secured write takes.
fn idempotency_key_parameter() -> Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes a retry safe: 1 to 255 visible ASCII characters (a UUID is a good one), unique per request \
             of this caller. The first answer (any 2xx or 4xx but 408, 409 `concurrent_write` and 429) is kept for \
             24 h and replayed, byte for byte and with `Idempotent-Replayed: true`, to a request with the same key, \
             method, path, query and body. The same key with another request: 422 `idempotency_key_reused`; while \
             the first still runs: 409 `idempotency_key_in_use` with `Retry-After`. An answer that says to retry \
             (5xx, 408, 409 `concurrent_write`) is not kept: the retry runs again.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(crate::idempotency::MAX_KEY_CHARS))
                .pattern(Some("^[\\x21-\\x7E]+$")),
        ))
        .example(Some(serde_json::json!("6f1c2d9e-8a4b-4c1e-9f3a-2b7d5e8c0a11")))
        .build()
}

/// 429 with the headers that say when to come back.
fn rate_limited() -> RefOr<Response> {
    let header = |description: &str| {
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(description))
            .build()
    };
    RefOr::T(
        ResponseBuilder::new()
            .description(
                "`rate_limited`: the integration's rate limit is spent (`GET /v1/limits`); retry after `Retry-After` seconds",
            )
            .header("Retry-After", header("Seconds until a request will pass."))
            .header(
                "RateLimit-Policy",
                header("The quota: `\"integration\";q=<burst>;w=<seconds to refill it>` (every answer to an integration carries it)."),
            )
            .header(
                "RateLimit",
                header("What is left: `\"integration\";r=<requests left>;t=<seconds until whole again>` (every answer to an integration carries it)."),
            )
            .content(
                "application/problem+json",
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .build(),
    )
}

/// Declares the header `name` on the answers of `statuses` that are
/// written out here (not references) and do not declare it already.
fn declare_header(
    responses: &mut std::collections::BTreeMap<String, RefOr<Response>>,
    statuses: &[&str],
    name: &str,
    description: &str,
) {
    for status in statuses {
        if let Some(RefOr::T(response)) = responses.get_mut(*status) {
            response.headers.entry(name.to_string()).or_insert_with(|| {
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some(description))
                    .build()
            });
        }
    }
}

/// Adds the answers every operation of a kind can give, unless the
/// operation documents them itself.
fn add_shared_responses(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let admin = path.starts_with("/v1/admin");
        let operations = [
            (false, &mut item.get),
            (true, &mut item.post),
            (true, &mut item.put),
            (true, &mut item.patch),
            (false, &mut item.delete),
        ];
        for (write, operation) in operations {
            let Some(operation) = operation.as_mut() else {
                continue;
            };
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            split_scopes(&mut operation.security);
            let body_types: Vec<String> = operation
                .request_body
                .as_ref()
                .map(|body| body.content.keys().cloned().collect())
                .unwrap_or_default();
            if secured && write {
                operation
                    .parameters
                    .get_or_insert_with(Vec::new)
                    .push(idempotency_key_parameter());
            }
            let responses = &mut operation.responses.responses;
            if secured && !admin {
                responses
                    .entry("429".to_string())
                    .or_insert_with(rate_limited);
            }
            let mut add = |status: &str, description: &str| match responses.get_mut(status) {
                Some(RefOr::T(response)) if secured && write && matches!(status, "409" | "422") => {
                    let extra = if status == "409" {
                        "`idempotency_key_in_use`"
                    } else {
                        "`idempotency_key_reused`"
                    };
                    response.description = format!("{}; or {extra}", response.description);
                }
                Some(_) => {}
                None => {
                    responses.insert(status.to_string(), problem(description));
                }
            };
            if secured && write {
                add(
                    "409",
                    "`idempotency_key_in_use`: a request with this `Idempotency-Key` is still running; retry after `Retry-After` seconds",
                );
                add(
                    "422",
                    "`idempotency_key_reused`: this `Idempotency-Key` was used for another request",
                );
            }
            if secured {
                add(
                    "400",
                    if write {
                        "`malformed_json`, `invalid_body`, `unknown_field`, `invalid_query`, `invalid_cursor`, `invalid_path_parameter` or `invalid_idempotency_key`"
                    } else {
                        "`malformed_json`, `invalid_body`, `unknown_field`, `invalid_query`, `invalid_cursor` or `invalid_path_parameter`"
                    },
                );
                add(
                    "401",
                    "`invalid_token`: no bearer token, or one that is malformed, expired, revoked or not ours (`WWW-Authenticate: Bearer error=\"invalid_token\"`)",
                );
                add(
                    "403",
                    "`insufficient_scope`: the token lacks the scope this operation needs",
                );
                add(
                    "503",
                    "`service_unavailable`: the database is unreachable; retry after `Retry-After` seconds",
                );
                add("500", "`internal_error`: quote the `request_id`");
            }
            if !body_types.is_empty() {
                add(
                    "413",
                    "`payload_too_large`: the body exceeds the configured limit (stated in `detail`)",
                );
                add(
                    "415",
                    &format!(
                        "`unsupported_media_type`: send `Content-Type: {}`",
                        body_types.join("` or `")
                    ),
                );
            }
            if secured {
                declare_header(
                    responses,
                    &["401", "403"],
                    "WWW-Authenticate",
                    "RFC 6750's challenge: `Bearer error=\"invalid_token\", error_description=\"…\"` (401) or `Bearer error=\"insufficient_scope\", scope=\"…\"` (403).",
                );
                declare_header(
                    responses,
                    &["503"],
                    "Retry-After",
                    "Seconds to wait before retrying.",
                );
            }
        }
    }
}

/// `bearer = [scopes]` as the handlers write it (a token with any one of
/// the scopes may call) becomes one requirement per scope, each of
/// `bearer = []` and `scopes = [that scope]` (see [`SecuritySchemes`]):
/// requirements are alternatives, while the scopes of one are all needed.
/// An operation without a token says so with an empty `security`.
fn split_scopes(security: &mut Option<Vec<SecurityRequirement>>) {
    let Some(requirements) = security.take().filter(|r| !r.is_empty()) else {
        *security = Some(Vec::new());
        return;
    };
    let mut split = Vec::new();
    for requirement in requirements {
        let scopes: Vec<String> = match serde_json::to_value(&requirement) {
            Ok(serde_json::Value::Object(schemes)) => schemes
                .get(BEARER)
                .and_then(|scopes| scopes.as_array())
                .map(|scopes| {
                    scopes
                        .iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        if scopes.is_empty() {
            split.push(requirement);
        }
        for scope in scopes {
            split.push(SecurityRequirement::new(BEARER, Vec::<String>::new()).add(SCOPES, [scope]));
        }
    }
    *security = Some(split);
}
