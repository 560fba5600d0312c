//! intake: a public REST/OpenAPI ingestion API for cases and customers.
//!
//! Modules only look down: `routes` (HTTP, one module per resource) →
//! `ingest` (sources → one engine → writers, with or without a request) →
//! `domain` (validated values, the groups a caller sees) and `auth` (token,
//! scope, access) → `store` (SQLite or PostgreSQL) → `error`, `telemetry`,
//! `settings`, `ids` (the typed ids). `startup` assembles the application;
//! `guard` is the `/v1` gate (authentication, rate limits, idempotency).
//! `cli` holds the binary's client commands (`intake upload`), which call a
//! server over HTTP and use nothing else of the crate.

// The handlers' futures nest the engine's (sources, resources, writers):
// deeper than the compiler's default query depth in release builds.
#![recursion_limit = "256"]

pub mod api_doc;
pub mod auth;
pub mod cli;
pub mod demo;
pub mod domain;
pub mod early_errors;
pub mod error;
pub mod error_docs;
pub mod guard;
pub mod idempotency;
pub mod ids;
pub mod ingest;
pub mod jobs;
pub mod metrics;
pub mod rate_limit;
pub mod redis_client;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;

/// mimalloc instead of the system allocator: ingestion allocates and frees
/// many small values per row (parsed fields, JSON objects, COPY text), which
/// glibc's malloc serves markedly slower (see `cargo bench`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Makes rustls's `ring` provider the process's default, before any HTTP
/// client is built: reqwest is built without a provider of its own (its
/// default, aws-lc-rs, would need cmake and a C toolchain) and panics
/// building a client without one. `ring` is the provider the database
/// connections already use. Idempotent.
pub fn install_tls_provider() {
    // An error means a provider is installed already: the one to use.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
