//! What the gateway counts, each under one name: requests, leads in and out, CRM calls, feedback, calls; rendered at `/metrics` in the Prometheus text format.
//!
//! The names and labels here are a contract with dashboards and alerts, so they are spelled in
//! this one file. Counters and histograms are recorded where things happen; the queue's and
//! the outbox's contents are counted from the store at each scrape.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::Utc;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::store::stats::{FEEDBACK_KINDS, OutboxCount, QueueCount, UNFINISHED_STATUSES, WAITING_STATUSES};

/// Seconds from a lead's arrival to its settling in the CRM: from a quick answer to a day of
/// retries.
const DELIVERY_BUCKETS: [f64; 12] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0];
/// Seconds of one HTTP exchange, ours or a CRM's.
const REQUEST_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder once and returns the handle that renders it; later calls
/// (several gateways in one test process) share it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("leadgate_lead_delivery_seconds".to_owned()), &DELIVERY_BUCKETS)
                .and_then(|builder| {
                    builder.set_buckets_for_metric(Matcher::Suffix("request_seconds".to_owned()), &REQUEST_BUCKETS)
                })
                .expect("the bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder was installed first, which nothing here does.
            let _ = metrics::set_global_recorder(recorder);
            // A histogram keeps every sample until they are folded into its buckets, which only
            // a scrape or this upkeep does: without it a gateway nobody scrapes grows by every
            // request it answers.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("metrics-upkeep".to_owned()).spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
            if let Err(error) = spawned {
                tracing::warn!(%error, "could not start the metrics' upkeep; histograms are folded at each scrape only");
            }
            handle
        })
        .clone()
}

/// One answered HTTP request, by route template (never the path itself, which may hold keys).
pub fn http_request(route: &str, method: &str, status: u16, took: Duration) {
    let labels = [("route", route.to_owned()), ("method", method.to_owned()), ("status", status.to_string())];
    counter!("leadgate_http_requests_total", &labels).increment(1);
    histogram!("leadgate_http_request_seconds", &labels[..2]).record(took.as_secs_f64());
}

/// How intake's store took a lead: `new`, `existing` (a repeat of an earlier request) or
/// `duplicate` (of another lead).
pub fn lead_received(source: &str, result: &'static str) {
    counter!("leadgate_leads_received_total", "source" => source.to_owned(), "result" => result).increment(1);
}

/// A lead settled: its status, and how long after its arrival.
pub fn lead_settled(source: &str, status: &'static str, received_at: chrono::DateTime<Utc>) {
    counter!("leadgate_leads_settled_total", "source" => source.to_owned(), "status" => status).increment(1);
    let waited = (Utc::now() - received_at).to_std().unwrap_or_default();
    histogram!("leadgate_lead_delivery_seconds", "source" => source.to_owned()).record(waited.as_secs_f64());
}

/// A delivery attempt that will be tried again, by why.
pub fn lead_retried(source: &str, reason: &'static str) {
    counter!("leadgate_lead_retries_total", "source" => source.to_owned(), "reason" => reason).increment(1);
}

/// One request to a CRM: its status, or `error` when no answer came.
pub fn crm_request(destination: &str, method: &str, status: Option<u16>, took: Duration) {
    let status = status.map_or_else(|| "error".to_owned(), |status| status.to_string());
    let labels = [("destination", destination.to_owned()), ("method", method.to_owned()), ("status", status)];
    counter!("leadgate_crm_requests_total", &labels).increment(1);
    histogram!("leadgate_crm_request_seconds", &labels[..1]).record(took.as_secs_f64());
}

/// The requests per second a destination may be sent, for comparing with the calls' rate.
pub fn crm_budget(destination: &str, requests_per_second: u32) {
    gauge!("leadgate_crm_budget_requests_per_second", "destination" => destination.to_owned())
        .set(f64::from(requests_per_second));
}

/// A callback, e-mail or deal note attempt: `delivered`, `retry` or `failed` (for good).
pub fn feedback(kind: &str, result: &'static str) {
    counter!("leadgate_feedback_total", "kind" => kind.to_owned(), "result" => result).increment(1);
}

/// PBX events stored for a telephony source.
pub fn telephony_events(source: &str, count: usize) {
    counter!("leadgate_telephony_events_total", "source" => source.to_owned()).increment(count as u64);
}

/// A call that ended: `logged` (it became a lead) or `ignored`.
pub fn call_closed(source: &str, result: &'static str) {
    counter!("leadgate_calls_total", "source" => source.to_owned(), "result" => result).increment(1);
}

/// The store's waiting leads per source and unfinished feedback per kind, as gauges; every
/// source and status is written, so a group that emptied reads 0 rather than its last value.
pub fn queue(sources: &[&str], leads: &[QueueCount], outbox: &[OutboxCount]) {
    let now = Utc::now();
    for source in sources {
        for status in WAITING_STATUSES {
            let found = leads.iter().find(|count| count.source == *source && count.status == status);
            let labels = [("source", (*source).to_owned()), ("status", status.to_owned())];
            gauge!("leadgate_queue_leads", &labels).set(found.map_or(0.0, |count| count.count as f64));
            let age = found.and_then(|count| (now - count.oldest).to_std().ok()).unwrap_or_default();
            gauge!("leadgate_queue_oldest_seconds", &labels).set(age.as_secs_f64());
        }
    }
    for kind in FEEDBACK_KINDS {
        for status in UNFINISHED_STATUSES {
            let found = outbox.iter().find(|count| count.kind == kind && count.status == status);
            gauge!("leadgate_outbox_items", "kind" => kind, "status" => status)
                .set(found.map_or(0.0, |count| count.count as f64));
        }
    }
}
