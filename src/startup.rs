//! Building and running the server: `Application::build(settings)` binds the
//! listener (port 0 in tests), connects and migrates the store, and wires
//! state, middleware and routes.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_http::body::MessageBody;
use actix_http::error::DispatchError;
use actix_http::{HttpService, Protocol, Request, Response};
use actix_service::{
    IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt, fn_service, map_config,
};
use actix_web::dev::{AppConfig, Server};
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, web};
use anyhow::Context;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::auth::Authenticator;
use crate::auth::access::AccessControl;
use crate::auth::jwt::JwtKeys;
use crate::early_errors::EarlyErrors;
use crate::guard::guard;
use crate::idempotency::IdempotencyKeys;
use crate::ingest::admission::BulkAdmission;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::redis_client::RedisClient;
use crate::routes::{self, RouteTable};
use crate::settings::Settings;
use crate::store::Store;
use crate::telemetry::observe_request;

/// How long a connection may take to send its request line and headers
/// (then 408 `header_timeout`), and to stay idle between requests.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `app` on `listener`, as `actix_web::HttpServer` would (a worker
/// per core, SIGINT/SIGTERM stop it gracefully), with each connection's
/// socket wrapped in [`EarlyErrors`], so that what actix-http refuses
/// before routing (400, 408, 431) is answered as a problem too.
/// `HttpServer` has no way to wrap the socket, so the server is put
/// together here from the same parts.
fn serve<F, I, S, B>(
    app: F,
    listener: TcpListener,
    shutdown_timeout: Duration,
) -> std::io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let builder = actix_server::Server::build();
    let stopping = builder.graceful_shutdown_signal();
    let address = listener.local_addr()?;
    Ok(builder
        .listen("intake", listener, move || {
            let stopping = stopping.clone();
            let http = HttpService::build()
                .graceful_shutdown_signal(move || {
                    let stopping = stopping.clone();
                    async move { stopping.notified().await }
                })
                .keep_alive(HEAD_TIMEOUT)
                .client_request_timeout(HEAD_TIMEOUT)
                .client_disconnect_timeout(Duration::from_secs(1))
                .local_addr(address)
                .finish(map_config(
                    app().into_factory().map_err(|e| e.into().error_response()),
                    // What HttpServer passes, but for the host assumed when a
                    // request has no `Host` header (HTTP/1.0 only): actix-web
                    // keeps its constructor private, so "localhost:8080".
                    |_| AppConfig::default(),
                ));
            fn_service(|io: actix_web::rt::net::TcpStream| async move {
                // Answers go out as written: with Nagle's algorithm the end
                // of a large answer waited for the client's delayed ACK (up
                // to 40 ms).
                let _ = io.set_nodelay(true);
                let peer = io.peer_addr().ok();
                Ok::<_, DispatchError>((EarlyErrors::new(io), Protocol::Http1, peer))
            })
            .and_then(http)
        })?
        .shutdown_timeout(shutdown_timeout.as_secs())
        .run())
}

/// What every handler can reach.
pub struct AppState {
    pub settings: Settings,
    pub store: Store,
    pub jwt: Arc<JwtKeys>,
    pub metrics: web::Data<Metrics>,
    pub redis: Option<Arc<RedisClient>>,
    pub access: Arc<AccessControl>,
    /// Token verification, shared with the [`crate::auth::Authorized`]
    /// extractor (its own `web::Data`).
    pub auth: web::Data<Authenticator>,
    pub routes: RouteTable,
    /// How many bulk ingestions run at once.
    pub bulk: BulkAdmission,
    /// The staff directories of small requests.
    pub staff: crate::ingest::staff::StaffCache,
    /// Requests counted against each integration's rate limit.
    pub rate_limiter: RateLimiter,
    /// The `Idempotency-Key`s of every caller, and their answers.
    pub idempotency: Arc<IdempotencyKeys>,
    /// Wakes this replica's import runner (a job was confirmed).
    pub imports: Arc<tokio::sync::Notify>,
}

impl AppState {
    /// What an ingestion run takes from the service.
    pub fn services(&self) -> crate::ingest::Services<'_> {
        crate::ingest::Services {
            store: &self.store,
            control: &self.access,
            staff: &self.staff,
            metrics: &self.metrics,
        }
    }
}

/// Deletes expired idempotency answers from the database every ten minutes
/// (Redis expires its own), for as long as the process runs.
fn purge_expired_keys(keys: Arc<IdempotencyKeys>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            every.tick().await;
            match keys.purge().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(purged = n, "expired idempotency keys deleted"),
                Err(e) => tracing::warn!(error = %e, "expired idempotency keys not deleted"),
            }
        }
    });
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let store = Store::connect(&settings)
            .await
            .with_context(|| format!("connecting to {}", settings.database_url))?;
        store
            .migrate()
            .await
            .with_context(|| format!("migrating {}", settings.database_url))?;
        let jwt = Arc::new(JwtKeys::from_settings(&settings)?);
        let redis = match &settings.redis_url {
            // Short time limits and a breaker: a Redis that hangs must not
            // hang requests (they go on with the database).
            Some(url) => Some(Arc::new(
                RedisClient::new(url.expose(), settings.redis_timeout)
                    .with_context(|| format!("INTAKE_REDIS_URL: cannot use {url}"))?,
            )),
            None => None,
        };
        let access = Arc::new(AccessControl::load(store.clone(), redis.clone()).await?);
        let auth = web::Data::new(Authenticator {
            jwt: jwt.clone(),
            access: access.clone(),
            store: store.clone(),
            admin_token_max_ttl: settings.admin_token_max_ttl,
            default_rate_limit: settings.default_rate_limit(),
        });
        let listener = TcpListener::bind(settings.bind)
            .with_context(|| format!("INTAKE_BIND: cannot listen on {}", settings.bind))?;
        let port = listener.local_addr()?.port();

        let doc = crate::api_doc::openapi();
        let (_, writers) = store.pool_sizes();
        let bulk = BulkAdmission::new(
            settings
                .max_bulk_requests
                .map(|n| n as usize)
                .unwrap_or((writers as usize).saturating_sub(1)),
        );
        let idempotency = Arc::new(IdempotencyKeys::new(
            store.clone(),
            redis.clone(),
            settings.idempotency_ttl,
            settings.idempotency_lease,
        ));
        purge_expired_keys(idempotency.clone());
        let state = web::Data::new(AppState {
            bulk,
            staff: Default::default(),
            rate_limiter: RateLimiter::new(redis.clone()),
            idempotency,
            imports: Arc::new(tokio::sync::Notify::new()),
            routes: RouteTable::from_openapi(&doc),
            metrics: web::Data::new(Metrics::new()?),
            store,
            jwt,
            redis,
            access,
            auth,
            settings,
        });
        if state.settings.import_runner {
            crate::jobs::start_import_runner(state.clone())?;
        }
        let (json, query, path) = routes::extractor_configs(state.settings.max_body_bytes);
        let payload = web::PayloadConfig::new(state.settings.max_body_bytes);
        let app_state = state.clone();
        let app = move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(app_state.auth.clone())
                .app_data(app_state.metrics.clone())
                .app_data(json.clone())
                .app_data(query.clone())
                .app_data(path.clone())
                .app_data(payload.clone())
                .wrap(from_fn(guard))
                .wrap(from_fn(observe_request))
                .configure(|cfg| {
                    routes::configure(&mut utoipa_actix_web::service_config::ServiceConfig::new(
                        cfg,
                    ))
                })
                // Before Swagger UI, whose service takes every `/docs/…` path.
                .route(
                    crate::error::ERRORS_PAGE,
                    web::get().to(crate::error_docs::errors_page),
                )
                .service(
                    SwaggerUi::new("/docs/{_:.*}")
                        .url("/openapi.json", doc.clone())
                        .config(Config::new(["/openapi.json"]).validator_url("none")),
                )
                .route(
                    "/docs",
                    web::get().to(|| async {
                        HttpResponse::PermanentRedirect()
                            .insert_header((header::LOCATION, "/docs/"))
                            .finish()
                    }),
                )
                .default_service(web::to(routes::fallback))
        };
        let server = serve(app, listener, state.settings.shutdown_timeout)?;
        Ok(Application {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Stops the server from elsewhere (tests).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM (graceful: in-flight requests finish).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.state.store.close().await;
        result
    }
}
