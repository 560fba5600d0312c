//! intake: a public REST/OpenAPI ingestion API for cases and customers.
//!
//! Modules only look down: `routes` (HTTP, one module per resource) →
//! `ingest` (sources → one engine → writers, with or without a request) →
//! `domain` (validated values, the groups a caller sees) and `auth` (token,
//! scope, access) → `store` (SQLite or PostgreSQL) → `error`, `telemetry`,
//! `settings`, `ids` (the typed ids). `startup` assembles the application;
//! `guard` is the `/v1` gate (authentication, rate limits, idempotency).

// The handlers' futures nest the engine's (sources, resources, writers):
// deeper than the compiler's default query depth in release builds.
#![recursion_limit = "256"]

pub mod api_doc;
pub mod auth;
pub mod demo;
pub mod domain;
pub mod error;
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
