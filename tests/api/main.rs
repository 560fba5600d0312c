//! Integration tests: the real server over real HTTP, on SQLite by default
//! and on PostgreSQL when `INTAKE_TEST_DATABASE_URL` is set (see helpers).

mod admin_campaigns_categories;
mod admin_groups_teams;
mod admin_staff;
mod attacks;
mod auth;
mod case_csv;
mod cases;
mod cli;
mod concurrency;
mod control_characters;
mod customers;
mod deploy;
mod engine;
mod errors;
mod group_access;
mod helpers;
mod idempotency;
mod imports;
mod integrations;
mod keys;
mod openapi;
mod operations;
mod reference;
mod shutdown;
mod telemetry;
mod templates;
