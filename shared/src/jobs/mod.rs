//! The scheduled jobs. Each takes the EventBridge Scheduler payload (which
//! names the job and its scheduled time) or a manual window
//! (`{"window_start": "...", "window_end": "..."}`, optionally one
//! `tenant`), does its work tenant by tenant inside a time budget, and
//! returns a JSON summary. Every job recomputes what it writes from the
//! data, so a second run for the same window changes nothing and publishes
//! nothing new.

mod cleanup;
mod health;
mod metrics;
pub mod rollup;
mod weekly;
pub mod windows;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::Deserialize;
use tokio::time::Instant;

use crate::bus::{Bus, BusError};
use crate::config::Config;
use crate::store::StoreError;
use crate::store::Table;

pub use health::HostFigures;

/// The jobs of the contract's "Scheduled jobs" table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    UsageRollup,
    DailyMetrics,
    DashboardMetrics,
    HealthSnapshot,
    ActivityCleanup,
    MetricsCleanup,
    WeeklyReport,
}

impl Job {
    pub const ALL: [Job; 7] = [
        Job::UsageRollup,
        Job::DailyMetrics,
        Job::DashboardMetrics,
        Job::HealthSnapshot,
        Job::ActivityCleanup,
        Job::MetricsCleanup,
        Job::WeeklyReport,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Job::UsageRollup => "usage-rollup",
            Job::DailyMetrics => "daily-metrics",
            Job::DashboardMetrics => "dashboard-metrics",
            Job::HealthSnapshot => "health-snapshot",
            Job::ActivityCleanup => "activity-cleanup",
            Job::MetricsCleanup => "metrics-cleanup",
            Job::WeeklyReport => "weekly-report",
        }
    }

    /// Picks the job a payload names among those a function runs; the
    /// first is the default when the payload names none.
    pub fn select(named: Option<&str>, runs: &[Job]) -> Result<Job, JobError> {
        let names = || runs.iter().map(|j| j.name()).collect::<Vec<_>>().join(", ");
        match named {
            None => runs.first().copied().ok_or_else(|| JobError::BadRequest("this function runs no job".into())),
            Some(n) => runs
                .iter()
                .find(|j| j.name() == n)
                .copied()
                .ok_or_else(|| JobError::BadRequest(format!("job {n:?} is not run by this function; it runs: {}", names()))),
        }
    }
}

/// What a job is invoked with: the scheduler's payload
/// (`{"job": "...", "scheduled_time": "<aws.scheduler.scheduled-time>"}`) or
/// a manual window.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    #[serde(default)]
    pub job: Option<String>,
    #[serde(default)]
    pub scheduled_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub window_start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub window_end: Option<DateTime<Utc>>,
    /// Restricts a manual run to one tenant.
    #[serde(default)]
    pub tenant: Option<crate::tenant::TenantId>,
}

impl JobRequest {
    /// Parses an invocation payload; the error names what is wrong.
    pub fn parse(payload: serde_json::Value) -> Result<Self, JobError> {
        let req: JobRequest = serde_json::from_value(payload).map_err(|e| {
            JobError::BadRequest(format!(
                "invalid job payload: {e}; expected {{\"job\", \"scheduled_time\"}} or {{\"window_start\", \"window_end\", \"tenant\"?}} with RFC 3339 times"
            ))
        })?;
        for (name, t) in [("scheduled_time", req.scheduled_time), ("window_start", req.window_start), ("window_end", req.window_end)] {
            if let Some(t) = t
                && !crate::time::in_range(t)
            {
                return Err(JobError::BadRequest(format!("{name} {t} must lie within {}", crate::time::RANGE_TEXT)));
            }
        }
        Ok(req)
    }

    /// The instant the run stands for: the scheduled time, or now.
    pub fn at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.scheduled_time.unwrap_or(now)
    }

    /// The manual window, if any, checked: both ends, in order, not in the
    /// future, and at most `max` long.
    pub fn manual_window(&self, now: DateTime<Utc>, max: Duration) -> Result<Option<Window>, JobError> {
        match (self.window_start, self.window_end) {
            (None, None) => Ok(None),
            (Some(start), Some(end)) => {
                if start >= end {
                    return Err(JobError::BadRequest(format!("window_start {start} must be before window_end {end}")));
                }
                if end > now + Duration::hours(1) {
                    return Err(JobError::BadRequest(format!("window_end {end} is in the future")));
                }
                if end - start > max {
                    return Err(JobError::BadRequest(format!(
                        "the window spans {} hours; this job takes at most {} hours per run: split the backfill",
                        (end - start).num_hours(),
                        max.num_hours()
                    )));
                }
                Ok(Some(Window { start, end }))
            }
            _ => Err(JobError::BadRequest("a manual run needs both window_start and window_end".into())),
        }
    }
}

/// A half-open span of time `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    /// Every UTC day the window touches (their midnights).
    pub fn days(&self) -> Vec<DateTime<Utc>> {
        let mut d = crate::time::day_start(self.start);
        let mut out = Vec::new();
        while d < self.end {
            out.push(d);
            d += Duration::days(1);
        }
        out
    }

    /// Every hour the window touches (their starts).
    pub fn hours(&self) -> Vec<DateTime<Utc>> {
        let mut h = crate::time::hour_start(self.start);
        let mut out = Vec::new();
        while h < self.end {
            out.push(h);
            h += Duration::hours(1);
        }
        out
    }
}

/// Why a job failed. A bad payload is the invoker's to fix; storage or
/// bus failures make the invocation fail so the schedule retries it.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Some tenants failed after every tenant was tried: the invocation
    /// fails (so the schedule's retry runs again) with the whole summary.
    #[error("{failed} tenant(s) failed; the others were done. Summary: {summary}")]
    TenantsFailed { failed: usize, summary: serde_json::Value },
}

impl JobError {
    /// What kind of failure this is, as the invocation's `errorType`: what
    /// tells a payload to fix from an outage to wait out or a bug.
    pub fn error_type(&self) -> &'static str {
        match self {
            JobError::BadRequest(_) => "BadRequest",
            JobError::Store(StoreError::Unavailable(_)) => "StorageUnavailable",
            JobError::Store(StoreError::Mapping(_) | StoreError::Corrupt(_)) => "CorruptData",
            JobError::Bus(_) => "BusUnavailable",
            JobError::TenantsFailed { .. } => "TenantsFailed",
        }
    }
}

impl From<JobError> for lambda_runtime::Diagnostic {
    fn from(e: JobError) -> Self {
        lambda_runtime::Diagnostic { error_type: e.error_type().to_owned(), error_message: e.to_string() }
    }
}

/// What [`Jobs::each_tenant`] goes through: tenants, by name or with
/// their registry entry.
pub(crate) trait Named {
    fn name(&self) -> &str;
}

impl Named for String {
    fn name(&self) -> &str {
        self
    }
}

impl Named for crate::store::tenants::TenantEntry {
    fn name(&self) -> &str {
        &self.tenant
    }
}

/// What a tenant-by-tenant run did ([`Jobs::each_tenant`]).
pub(crate) struct TenantRun<T> {
    /// The results of the tenants done.
    pub done: Vec<T>,
    /// Tenants not started before the time budget ran out.
    pub left: usize,
    pub failed: Vec<TenantFailure>,
}

/// A tenant whose part of a run failed: the run goes on with the others.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TenantFailure {
    pub tenant: String,
    pub error: String,
}

impl TenantFailure {
    pub fn of(tenant: &str, e: &JobError) -> Self {
        tracing::error!(tenant, error = %e, "a tenant's part of the job failed; going on with the others");
        TenantFailure { tenant: tenant.to_owned(), error: e.to_string() }
    }
}

/// What every job needs, built once per process.
pub struct Jobs {
    pub store: Table,
    pub bus: Bus,
    pub cfg: Config,
}

/// One run: the clock, the time budget and (for the health job) the host.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub now: DateTime<Utc>,
    /// No new unit of work (a tenant, an hour) starts after this.
    pub deadline: Instant,
    pub host: HostFigures,
}

impl RunContext {
    pub fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

impl Jobs {
    pub fn new(store: Table, bus: Bus, cfg: Config) -> Self {
        Self { store, bus, cfg }
    }

    /// Runs a job and returns its JSON summary.
    pub async fn run(&self, job: Job, req: &JobRequest, ctx: &RunContext) -> Result<serde_json::Value, JobError> {
        // Each job's future is boxed: their nested state machines would
        // otherwise make one type too deep for the compiler.
        let summary = match job {
            Job::UsageRollup => serde_json::to_value(Box::pin(self.usage_rollup(req, ctx)).await?),
            Job::DailyMetrics => serde_json::to_value(Box::pin(self.daily_metrics(req, ctx)).await?),
            Job::DashboardMetrics => serde_json::to_value(Box::pin(self.dashboard_metrics(req, ctx)).await?),
            Job::HealthSnapshot => serde_json::to_value(Box::pin(self.health_snapshot(req, ctx)).await?),
            Job::ActivityCleanup => serde_json::to_value(Box::pin(self.activity_cleanup(req, ctx)).await?),
            Job::MetricsCleanup => serde_json::to_value(Box::pin(self.metrics_cleanup(req, ctx)).await?),
            Job::WeeklyReport => serde_json::to_value(Box::pin(self.weekly_report(req, ctx)).await?),
        };
        let mut summary = summary.map_err(|e| StoreError::corrupt(format!("summary: {e}")))?;
        if let Some(map) = summary.as_object_mut() {
            map.insert("job".into(), job.name().into());
        }
        match summary.get("failed").and_then(|f| f.as_array()).map(Vec::len) {
            Some(failed) if failed > 0 => Err(JobError::TenantsFailed { failed, summary }),
            _ => Ok(summary),
        }
    }

    /// Runs `work` for each tenant, `concurrency` at a time, starting no
    /// tenant once the time budget is spent: each tenant's result, how many
    /// were left, and which failed and why (one tenant's failure stops
    /// nobody else's work).
    pub(crate) async fn each_tenant<K, T, F, Fut>(&self, tenants: Vec<K>, ctx: &RunContext, concurrency: usize, work: F) -> TenantRun<T>
    where
        K: Named,
        F: Fn(K) -> Fut,
        Fut: std::future::Future<Output = Result<T, JobError>>,
    {
        let work = &work;
        let results: Vec<(String, Option<Result<T, JobError>>)> = futures::stream::iter(tenants)
            .map(|tenant| async move {
                let name = tenant.name().to_owned();
                if ctx.out_of_time() {
                    return (name, None);
                }
                (name, Some(work(tenant).await))
            })
            .buffered(concurrency.max(1))
            .collect()
            .await;
        let mut run = TenantRun { done: Vec::new(), left: 0, failed: Vec::new() };
        for (tenant, r) in results {
            match r {
                Some(Ok(t)) => run.done.push(t),
                Some(Err(e)) => run.failed.push(TenantFailure::of(&tenant, &e)),
                None => run.left += 1,
            }
        }
        run
    }

    /// The tenants a run visits: the one a manual run names, or every
    /// registered tenant.
    async fn tenants(&self, req: &JobRequest, now: DateTime<Utc>) -> Result<Vec<crate::store::tenants::TenantEntry>, StoreError> {
        self.store.tenants().list(req.tenant.as_deref(), now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_invocation_names_what_kind_of_failure_it_is() {
        let d = lambda_runtime::Diagnostic::from(JobError::BadRequest("tenant `a b` is not a tenant id".into()));
        assert_eq!(d.error_type, "BadRequest");
        assert!(d.error_message.contains("a b"));
        let outage = lambda_runtime::Diagnostic::from(JobError::Store(StoreError::unavailable("timeout")));
        assert_eq!(outage.error_type, "StorageUnavailable");
        assert_eq!(lambda_runtime::Diagnostic::from(JobError::Store(StoreError::corrupt("x"))).error_type, "CorruptData");
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn payloads_are_checked_with_messages_that_say_what_to_fix() {
        let now = at("2026-11-22T10:00:00Z");
        let sched = JobRequest::parse(serde_json::json!({"job": "usage-rollup", "scheduled_time": "2026-11-22T09:05:00Z"})).unwrap();
        assert_eq!(sched.at(now), at("2026-11-22T09:05:00Z"));
        assert_eq!(Job::select(sched.job.as_deref(), &[Job::UsageRollup, Job::DailyMetrics]).unwrap(), Job::UsageRollup);
        assert_eq!(Job::select(None, &[Job::DailyMetrics]).unwrap(), Job::DailyMetrics);
        let e = Job::select(Some("weekly-report"), &[Job::UsageRollup]).unwrap_err();
        assert!(e.to_string().contains("usage-rollup"), "{e}");
        let typo = JobRequest::parse(serde_json::json!({"window_strat": "2026-11-01T00:00:00Z"})).unwrap_err();
        assert!(typo.to_string().contains("window_strat"), "{typo}");
        assert!(JobRequest::parse(serde_json::json!({"tenant": "a#b"})).is_err());
        for far in ["+262142-12-31T00:00:00Z", "-0001-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "1969-12-31T23:00:00Z"] {
            for field in ["scheduled_time", "window_start", "window_end"] {
                let e = JobRequest::parse(serde_json::json!({ field: far })).unwrap_err();
                assert!(e.to_string().contains(field), "{field}={far}: {e}");
            }
        }
        let w = |a: &str, b: &str| JobRequest { window_start: Some(at(a)), window_end: Some(at(b)), ..Default::default() };
        assert!(w("2026-11-02T00:00:00Z", "2026-11-01T00:00:00Z").manual_window(now, Duration::days(1)).is_err());
        assert!(w("2026-11-01T00:00:00Z", "2026-11-30T00:00:00Z").manual_window(now, Duration::days(1)).is_err(), "future end");
        assert!(w("2026-11-01T00:00:00Z", "2026-11-03T00:00:00Z").manual_window(now, Duration::days(1)).is_err(), "too long");
        let ok = w("2026-11-01T10:30:00Z", "2026-11-02T00:00:00Z").manual_window(now, Duration::days(1)).unwrap().unwrap();
        assert_eq!(ok.hours().len(), 14);
        assert_eq!(ok.days(), vec![at("2026-11-01T00:00:00Z")]);
        let half = JobRequest { window_start: Some(now), ..Default::default() };
        assert!(half.manual_window(now, Duration::days(1)).is_err());
    }
}
