//! HTTP routes, one module per resource. Every handler is attribute-routed
//! and carries `#[utoipa::path]`, so the OpenAPI document is collected from
//! the handlers themselves (see [`configure`]).

pub mod admin;
pub mod campaigns;
pub mod case_csv;
pub mod cases;
pub mod customers;
pub mod enums;
pub mod extract;
pub mod health;
pub mod imports;
pub mod limits;
pub mod me;
pub mod reference;
pub mod templates;

use actix_web::dev::ResourceDef;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::{Method, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Deserializer};
use utoipa::IntoParams;

use crate::error::{ApiError, ErrorCode, json_body_error};
use crate::ids::GroupId;
use crate::startup::AppState;

/// Registers every route (and so every documented operation).
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.configure(health::configure);
    cfg.service(utoipa_actix_web::scope("/v1/admin").configure(admin::configure));
    cfg.service(
        utoipa_actix_web::scope("/v1")
            .configure(me::configure)
            .configure(limits::configure)
            .configure(enums::configure)
            .configure(reference::configure)
            .configure(campaigns::configure)
            // Before `cases`: `/cases/csv` must not be taken for `/cases/{id}`.
            .configure(case_csv::configure)
            .configure(cases::configure)
            .configure(customers::configure)
            .configure(imports::configure)
            .configure(templates::configure),
    );
}

pub use extract::page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageQuery, PageRequest};

/// `?group_id=` filter of collections that belong to a group.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupFilter {
    /// Only items of this group.
    #[param(value_type = Option<uuid::Uuid>)]
    pub group_id: Option<GroupId>,
}

/// For PATCH bodies: tells a field set to `null` (`Some(None)`) from an
/// absent one (`None`).
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

// ---- rejections ---------------------------------------------------------------

/// Extractor settings whose rejections answer in the problem shape.
pub fn extractor_configs(
    max_body_bytes: usize,
) -> (web::JsonConfig, web::QueryConfig, web::PathConfig) {
    let json = web::JsonConfig::default()
        .limit(max_body_bytes)
        .error_handler(|error, _req| json_rejection(error).into());
    let query =
        web::QueryConfig::default().error_handler(|error, _req| query_rejection(error).into());
    let path = web::PathConfig::default().error_handler(|error, _req| path_rejection(error).into());
    (json, query, path)
}

fn json_rejection(error: JsonPayloadError) -> ApiError {
    match error {
        JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("The body is {length} bytes; the limit is {limit} bytes."),
        ),
        JsonPayloadError::Overflow { limit } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("The body exceeds the limit of {limit} bytes."),
        ),
        JsonPayloadError::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "The body must be sent with `Content-Type: application/json`.",
        ),
        JsonPayloadError::Deserialize(e) => json_body_error(&e),
        other => ApiError::new(
            ErrorCode::InvalidBody,
            format!("The body could not be read: {other}"),
        ),
    }
}

fn query_rejection(error: QueryPayloadError) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidQuery,
        format!("The query string is invalid: {error}"),
    )
}

fn path_rejection(error: PathError) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidPathParameter,
        format!("The path is invalid: {error}"),
    )
}

// ---- unknown routes ------------------------------------------------------------

/// The documented routes and their methods, to tell a 405 from a 404.
pub struct RouteTable(Vec<(ResourceDef, Vec<Method>)>);

impl RouteTable {
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    (Method::GET, item.get.is_some()),
                    (Method::POST, item.post.is_some()),
                    (Method::PUT, item.put.is_some()),
                    (Method::PATCH, item.patch.is_some()),
                    (Method::DELETE, item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(m, present)| present.then_some(m))
                .collect();
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        RouteTable(routes)
    }

    fn allowed(&self, path: &str) -> Option<&[Method]> {
        self.0
            .iter()
            .find(|(def, _)| def.is_match(path))
            .map(|(_, methods)| methods.as_slice())
    }
}

/// Every request no route took: 405 where the path exists, else 404.
pub async fn fallback(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Err(match state.routes.allowed(req.path()) {
        Some(methods) if !methods.is_empty() => {
            let allow = methods
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{} is not allowed here; allowed: {allow}.", req.method()),
            )
            .with_header(header::ALLOW, allow)
        }
        _ => ApiError::new(ErrorCode::RouteNotFound, "No route has this path."),
    })
}
