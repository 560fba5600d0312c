//! Prometheus metrics, served as text at `/metrics`.
//!
//! Each application has its own registry (tests run several in one process).
//! Route labels are route *patterns* (`/v1/admin/groups/{id}`), never raw
//! paths, so a scanner cannot blow up the label set.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::store::grouped::GroupedWrites;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    rows_accepted: IntCounterVec,
    rows_rejected: IntCounterVec,
    case_groups: IntCounter,
    grouped_requests: IntCounter,
    refused_groups: IntCounter,
    /// One `/metrics` at a time brings those up to date (each adds the
    /// difference it read).
    groups_observed: std::sync::Mutex<()>,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "intake_http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "intake_http_request_duration_seconds",
                "HTTP request latency",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["method", "route"],
        )?;
        let rows_accepted = IntCounterVec::new(
            Opts::new(
                "intake_rows_accepted_total",
                "Rows (cases, customers) accepted, by integration and path",
            ),
            &["integration", "path"],
        )?;
        let rows_rejected = IntCounterVec::new(
            Opts::new(
                "intake_rows_rejected_total",
                "Rows (cases, customers) rejected, by integration and path",
            ),
            &["integration", "path"],
        )?;
        let case_groups = IntCounter::new(
            "intake_case_groups_total",
            "Groups of small case requests written (one INSERT, one commit each)",
        )?;
        let grouped_requests = IntCounter::new(
            "intake_case_grouped_requests_total",
            "Small case requests written in those groups",
        )?;
        let refused_groups = IntCounter::new(
            "intake_case_groups_refused_total",
            "Groups the database refused, whose requests were then written one by one",
        )?;
        registry.register(Box::new(case_groups.clone()))?;
        registry.register(Box::new(grouped_requests.clone()))?;
        registry.register(Box::new(refused_groups.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(rows_accepted.clone()))?;
        registry.register(Box::new(rows_rejected.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            rows_accepted,
            rows_rejected,
            case_groups,
            grouped_requests,
            refused_groups,
            groups_observed: std::sync::Mutex::new(()),
        })
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, latency: Duration) {
        // A label value per made-up method would grow the registry without
        // bound: methods outside HTTP's own share one value.
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
            _ => "other",
        };
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(latency.as_secs_f64());
    }

    /// Counts rows of an ingestion request (`path`: json, ndjson, csv, import).
    pub fn count_rows(&self, integration: &str, path: &str, accepted: u64, rejected: u64) {
        if accepted > 0 {
            self.rows_accepted
                .with_label_values(&[integration, path])
                .inc_by(accepted);
        }
        if rejected > 0 {
            self.rows_rejected
                .with_label_values(&[integration, path])
                .inc_by(rejected);
        }
    }

    /// Brings the grouped inserts' counters up to what the store counted.
    pub fn observe_case_groups(&self, written: GroupedWrites) {
        let _one = self
            .groups_observed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (counter, total) in [
            (&self.case_groups, written.groups),
            (&self.grouped_requests, written.requests),
            (&self.refused_groups, written.refused),
        ] {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// The registry in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}
