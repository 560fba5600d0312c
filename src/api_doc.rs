//! The OpenAPI document, collected from the handlers' `#[utoipa::path]`
//! attributes (nothing is listed by hand) and completed with the answers
//! every route shares.

use actix_web::App;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa_actix_web::AppExt;

use crate::auth::Scope;
use crate::error::{Column, ErrorCode, FieldError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "intake",
        description = "Ingestion API for cases and customers.\n\n\
Every `/v1` route needs `Authorization: Bearer <JWT>`; the scope each operation needs is listed in its \
`security`. Errors are `application/problem+json` with a stable `code` (see the `ErrorCode` schema) and a \
`request_id` that is also echoed in `X-Request-Id`. Collections answer `{items, next_cursor}`, ordered by \
creation; pass `next_cursor` back as `?cursor=`.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    components(schemas(ErrorCode, Problem, FieldError, Column, Scope)),
    tags(
        (name = "admin", description = "Operators' API (scope `admin`): groups, teams, staff, categories, campaigns."),
        (name = "integration", description = "The calling integration."),
        (name = "cases", description = "Cases and case lists (the integration's groups only)."),
        (name = "customers", description = "Campaigns and their customers (the integration's groups only)."),
        (name = "operations", description = "Health, readiness, metrics and public keys; no token."),
    ),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT minted by intake (`intake token`, or `POST /v1/admin/integrations/{id}/tokens`). \
                         The scopes an operation needs are listed in its security requirement.",
                    ))
                    .build(),
            ),
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

/// Adds the answers every operation of a kind can give, unless the
/// operation documents them itself.
fn add_shared_responses(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            let has_body = operation.request_body.is_some();
            let responses = &mut operation.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| problem(description));
            };
            if secured {
                add(
                    "400",
                    "`malformed_json`, `invalid_body`, `unknown_field`, `invalid_query`, `invalid_cursor` or `invalid_path_parameter`",
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
            if has_body {
                add(
                    "413",
                    "`payload_too_large`: the body exceeds the configured limit (stated in `detail`)",
                );
                add(
                    "415",
                    "`unsupported_media_type`: send `Content-Type: application/json`",
                );
            }
        }
    }
}
