//! CloudWatch metrics from every function, in Embedded Metric Format: each
//! invocation's figures are printed as JSON documents on stdout after it,
//! and CloudWatch Logs turns them into metrics (no API call, no latency).
//!
//! Namespace [`crate::config::METRICS_NAMESPACE`] (the template sets
//! `Analytics/<stack name>`, so two stacks never mix), every metric with the
//! dimension `Function` (`ingest`, `query`, `rollup`, `health`, `cleanup`,
//! `weekly-report`), some with `Route`, `Tenant` or `Job` as well: the
//! README's "Metrics" table lists them all. Until [`init`] runs (tests,
//! tools) every call here records nothing.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::Unit;
use metrics_cloudwatch_embedded::Collector;

/// The metrics and their units (the EMF documents carry the unit).
pub const METRICS: [(&str, Unit, &str); 14] = [
    ("ColdStart", Unit::Count, "1 on the first invocation of an execution environment"),
    ("Requests", Unit::Count, "HTTP requests answered, per Route"),
    ("Latency", Unit::Milliseconds, "time to answer an HTTP request, per Route"),
    ("ServerErrors", Unit::Count, "answers with a 5xx status, per Route"),
    ("Unavailable", Unit::Count, "503 answers: storage failed after retries (what the alarms watch)"),
    ("EventsAccepted", Unit::Count, "events stored, per Tenant"),
    ("EventsRejected", Unit::Count, "events refused (validation_failed, unstorable), per Tenant"),
    ("EventsDuplicate", Unit::Count, "resends recognised as duplicates, per Tenant"),
    ("CacheHits", Unit::Count, "query answers served from the cache, per Route"),
    ("CacheMisses", Unit::Count, "query answers computed, per Route (cached routes only)"),
    ("JobDuration", Unit::Milliseconds, "time a job invocation took, per Job"),
    ("JobLeft", Unit::Count, "work a job left for its next run (tenants or hours), per Job"),
    ("JobTenantsFailed", Unit::Count, "tenants whose part of a job failed, per Job"),
    ("JobFailed", Unit::Count, "job invocations that failed (retried by the schedule), per Job"),
];

static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();

/// Installs the EMF recorder for this process, once; counts the cold start.
/// Later calls (and a recorder already installed) change nothing.
pub fn init(function: &'static str, namespace: &str) {
    if COLLECTOR.get().is_some() {
        return;
    }
    let namespace = namespace.to_owned();
    let built = metrics_cloudwatch_embedded::Builder::new().cloudwatch_namespace(namespace).with_dimension("Function", function).init();
    let Ok(collector) = built else { return };
    if COLLECTOR.set(collector).is_err() {
        return;
    }
    for (name, unit, description) in METRICS {
        metrics::describe_counter!(name, unit, description);
        metrics::describe_histogram!(name, unit, description);
    }
    metrics::counter!("ColdStart").increment(1);
}

/// One HTTP request answered.
pub fn request(route: &'static str, status: u16, took: Duration) {
    metrics::counter!("Requests", "Route" => route).increment(1);
    metrics::histogram!("Latency", "Route" => route).record(took.as_secs_f64() * 1000.0);
    if status >= 500 {
        metrics::counter!("ServerErrors", "Route" => route).increment(1);
    }
    if status == 503 {
        metrics::counter!("Unavailable").increment(1);
    }
}

/// One batch's outcome for a tenant.
pub fn ingested(tenant: &str, accepted: usize, rejected: usize, duplicates: usize) {
    let tenant = tenant.to_owned();
    for (name, n) in [("EventsAccepted", accepted), ("EventsRejected", rejected), ("EventsDuplicate", duplicates)] {
        metrics::counter!(name, "Tenant" => tenant.clone()).increment(n as u64);
    }
}

/// A cached route answered from the cache or not.
pub fn cache(route: &'static str, hit: bool) {
    metrics::counter!(if hit { "CacheHits" } else { "CacheMisses" }, "Route" => route).increment(1);
}

/// One job invocation: how long it took, what it left, the tenants that
/// failed, and whether it failed as a whole.
pub fn job(job: &'static str, took: Duration, left: u64, tenants_failed: u64, failed: bool) {
    metrics::histogram!("JobDuration", "Job" => job).record(took.as_secs_f64() * 1000.0);
    metrics::counter!("JobLeft", "Job" => job).increment(left);
    metrics::counter!("JobTenantsFailed", "Job" => job).increment(tenants_failed);
    metrics::counter!("JobFailed", "Job" => job).increment(u64::from(failed));
}

/// Writes the figures recorded since the last flush, one EMF document per
/// set of dimensions, each with the invocation's request id as a property.
pub fn flush_into(request_id: &str, out: impl std::io::Write) -> std::io::Result<()> {
    match COLLECTOR.get() {
        Some(c) => c.set_property("request_id", request_id.to_owned()).flush(out),
        None => Ok(()),
    }
}

/// [`flush_into`] stdout, where Lambda's log stream picks the documents up.
/// A failed write loses metrics, never the invocation.
pub fn flush(request_id: &str) {
    let _ = flush_into(request_id, std::io::stdout().lock());
}
