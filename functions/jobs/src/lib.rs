//! The Lambda adapter of the scheduled jobs: it parses the scheduler's or a
//! manual payload, gives the job the invocation's time budget, and returns
//! the job's JSON summary. The jobs themselves live in
//! [`analytics_shared::jobs`].

use std::time::Duration;

use analytics_shared::Config;
use analytics_shared::bus::Bus;
use analytics_shared::jobs::{HostFigures, Job, JobError, JobRequest, Jobs, RunContext};
use analytics_shared::store::{self, Table};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

/// The job functions: binary (and Lambda) name, and the jobs it runs, the
/// first being the default. The template's schedules and `events/` follow it.
pub const FUNCTIONS: [(&str, &[Job]); 4] = [
    ("rollup", &[Job::UsageRollup, Job::DailyMetrics, Job::DashboardMetrics]),
    ("health", &[Job::HealthSnapshot]),
    ("cleanup", &[Job::ActivityCleanup, Job::MetricsCleanup]),
    ("weekly-report", &[Job::WeeklyReport]),
];

/// The jobs a function runs.
pub fn jobs_of(function: &str) -> &'static [Job] {
    FUNCTIONS.iter().find(|(f, _)| *f == function).map(|(_, j)| *j).unwrap_or(&[])
}

/// Time kept back from the invocation's deadline to finish the unit of
/// work in progress and return the summary.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(20);

/// The time a job may start new work in, out of the invocation's: all but
/// the safety margin, or a quarter of it for short invocations (a local
/// runtime's default timeout is shorter than the margin).
pub fn work_budget(invocation: Duration) -> Duration {
    invocation.saturating_sub(SAFETY_MARGIN.min(invocation / 4))
}

/// Builds the clients once and serves invocations of the given jobs (the
/// first is the default when a payload names none).
pub async fn serve(runs: &'static [Job]) -> Result<(), Error> {
    analytics_shared::telemetry::init();
    let cfg = Config::from_env()?;
    analytics_shared::emf::init(FUNCTIONS.iter().find(|(_, j)| *j == runs).map_or("jobs", |(f, _)| *f), &cfg.metrics_namespace);
    // The SDK settings are loaded once for both clients.
    let shared = aws_config::defaults(store::behavior_version()).load().await;
    let client = store::DynamoDbClient::from_conf(store::client_config(&shared, &cfg.store));
    let bus = Bus::from_shared(&shared, cfg.jobs.event_bus.clone());
    let jobs = Jobs::new(Table::new(client, cfg.store.clone()), bus, cfg);
    let measure_host = runs.contains(&Job::HealthSnapshot);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let jobs = &jobs;
        async move {
            analytics_shared::telemetry::begin_invocation(&event.context.request_id);
            // A runtime that gives no deadline (or one already past, as
            // some local emulators do) gets Lambda's longest timeout.
            let budget = event.context.deadline().duration_since(std::time::SystemTime::now()).ok().filter(|b| !b.is_zero());
            let budget = budget.unwrap_or(Duration::from_secs(900));
            tracing::info!(budget_ms = budget.as_millis() as u64, "invocation budget");
            let deadline = tokio::time::Instant::now() + work_budget(budget);
            let host = if measure_host { host_figures().await } else { HostFigures::default() };
            let out = handle(jobs, runs, event.payload, deadline, host).await;
            analytics_shared::emf::flush(&event.context.request_id);
            out
        }
    }))
    .await
}

/// Runs the job a payload asks for. Failures are errors of the invocation,
/// so a scheduled run is retried by its schedule's retry policy.
#[tracing::instrument(skip_all, fields(job))]
pub async fn handle(
    jobs: &Jobs,
    runs: &[Job],
    payload: Value,
    deadline: tokio::time::Instant,
    host: HostFigures,
) -> Result<Value, JobError> {
    let req = JobRequest::parse(payload)?;
    let job = Job::select(req.job.as_deref(), runs)?;
    tracing::Span::current().record("job", job.name());
    let ctx = RunContext { now: chrono::Utc::now(), deadline, host };
    let started = std::time::Instant::now();
    let out = jobs.run(job, &req, &ctx).await;
    match &out {
        Ok(summary) => {
            let (left, failed) = left_and_failed(summary);
            analytics_shared::emf::job(job.name(), started.elapsed(), left, failed, false);
            tracing::info!(summary = %summary, "job done");
        }
        Err(e) => {
            analytics_shared::emf::job(job.name(), started.elapsed(), 0, 0, true);
            tracing::error!(error = %e, "job failed");
        }
    }
    out
}

/// What a job's summary says it left for the next run (tenants or hours
/// not reached) and how many tenants failed: the figures of `JobLeft` and
/// `JobTenantsFailed`.
pub fn left_and_failed(summary: &Value) -> (u64, u64) {
    let left = ["tenants_left", "remaining"].iter().filter_map(|k| summary.get(*k).and_then(Value::as_u64)).sum();
    let failed = summary.get("failed").and_then(Value::as_array).map_or(0, |f| f.len() as u64);
    (left, failed)
}

/// Host CPU and memory, and this process's memory, measured with sysinfo.
/// CPU use needs two samples some time apart; 200 ms is sysinfo's minimum.
pub async fn host_figures() -> HostFigures {
    use sysinfo::{MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, System};
    let mut sys = System::new();
    sys.refresh_cpu_usage();
    tokio::time::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL).await;
    sys.refresh_cpu_usage();
    sys.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
    let pid = Pid::from_u32(std::process::id());
    sys.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, ProcessRefreshKind::nothing().with_memory());
    let mb = |bytes: u64| (bytes as f64 / 1_048_576.0 * 100.0).round() / 100.0;
    let total = sys.total_memory();
    HostFigures {
        cpu_percent: Some((f64::from(sys.global_cpu_usage()) * 100.0).round() / 100.0),
        memory_percent: (total > 0).then(|| (sys.used_memory() as f64 / total as f64 * 10_000.0).round() / 100.0),
        memory_used_mb: Some(mb(sys.used_memory())),
        process_memory_mb: sys.process(pid).map(|p| mb(p.memory())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn short_invocations_keep_most_of_their_time() {
        assert_eq!(super::work_budget(Duration::from_secs(600)), Duration::from_secs(580));
        assert_eq!(super::work_budget(Duration::from_secs(20)), Duration::from_secs(15));
        assert_eq!(super::work_budget(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test]
    async fn host_figures_are_measured() {
        let h = super::host_figures().await;
        let cpu = h.cpu_percent.expect("cpu");
        assert!((0.0..=100.0).contains(&cpu), "{cpu}");
        assert!(h.memory_percent.is_some_and(|p| p > 0.0 && p <= 100.0), "{h:?}");
        assert!(h.memory_used_mb.is_some_and(|m| m > 1.0), "{h:?}");
        assert!(h.process_memory_mb.is_some_and(|m| m > 0.5), "this process has some memory: {h:?}");
    }
}
