//! How long the jobs take on DynamoDB Local (in-memory):
//! - the hourly usage rollup of one hour holding 100,000 events (target
//!   under 10 s);
//! - the daily metrics job (days rebuilt from their hours) and the
//!   dashboard metrics job over a tenant with 90 days of hourly rollups
//!   (target under 2 s).
//!
//! cargo bench -p integration-tests --bench jobs [-- --hour-events 100000 --days-events 100000]
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it does one small
//! round as a smoke test.

use std::time::Instant;

use analytics_shared::jobs::{HostFigures, Job, JobRequest, Jobs, RunContext};
use chrono::{Duration, DurationRound, Utc};
use integration_tests::{BusProbe, fresh_table, seed_world};
use serde_json::{Value, json};

/// The allocator the roll-up function uses, so the figures are its own.
#[global_allocator]
static GLOBAL: analytics_shared::alloc::Allocator = analytics_shared::alloc::Allocator;

fn arg(name: &str) -> Option<u64> {
    std::env::args().skip_while(|a| a != name).nth(1).map(|v| v.parse().expect("a number"))
}

async fn run(jobs: &Jobs, payload: Value) -> (f64, Value) {
    let req = JobRequest::parse(payload).unwrap();
    let job = Job::select(req.job.as_deref(), &Job::ALL).unwrap();
    let ctx = RunContext {
        now: Utc::now(),
        deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(900),
        host: HostFigures::default(),
    };
    let t = Instant::now();
    let summary = jobs.run(job, &req, &ctx).await.unwrap();
    (t.elapsed().as_secs_f64(), summary)
}

/// The jobs' storage budgets, as the template sets them: no API Gateway
/// deadline to meet, so an attempt may take 10 s and a request 60 s.
fn job_budgets(cfg: &mut analytics_shared::Config) {
    cfg.store.attempt_timeout = std::time::Duration::from_secs(10);
    cfg.store.deadline = std::time::Duration::from_secs(60);
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let hour_events = arg("--hour-events").unwrap_or(if bench { 100_000 } else { 2_000 });
    let days_events = arg("--days-events").unwrap_or(if bench { 100_000 } else { 2_000 });
    let days = if bench { 90 } else { 7 };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let probe = BusProbe::new().await;

        // One busy hour. A 1 MB page of DynamoDB Local can take seconds on
        // a loaded machine: the jobs' storage budgets (the template's) apply.
        let (_, mut cfg) = fresh_table().await;
        job_budgets(&mut cfg);
        let client = integration_tests::client(&cfg.store);
        let hour = Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(2);
        let t = Instant::now();
        seed_world(&client, &cfg, "bench", hour_events, hour, 3600).await;
        let seeded = t.elapsed().as_secs_f64();
        let store = analytics_shared::store::Table::new(client.clone(), cfg.store.clone());
        let jobs = Jobs::new(store, probe.bus.clone(), cfg.clone());
        let cpu = integration_tests::process_cpu_ns();
        let (took, summary) = run(&jobs, json!({"job": "usage-rollup"})).await;
        let cpu = (integration_tests::process_cpu_ns() - cpu) as f64 / 1e9;
        assert_eq!(summary["hours"], 1, "{summary}");
        println!(
            "usage-rollup: one hour of {hour_events} events (seeded in {seeded:.1} s) rolled up in {took:.2} s ({:.0} events/s), \
             the job's own CPU {cpu:.2} s",
            hour_events as f64 / took
        );
        client.delete_table().table_name(&cfg.store.table).send().await.unwrap();

        if days_events == 0 {
            return;
        }
        // A tenant with `days` days of hourly rollups.
        let (_, mut cfg) = fresh_table().await;
        job_budgets(&mut cfg);
        let client = integration_tests::client(&cfg.store);
        let today = Utc::now().duration_trunc(Duration::days(1)).unwrap();
        let start = today - Duration::days(days);
        seed_world(&client, &cfg, "bench", days_events, start, (today - start).num_seconds() as u64).await;
        let store = analytics_shared::store::Table::new(client.clone(), cfg.store.clone());
        let jobs = Jobs::new(store, probe.bus.clone(), cfg.clone());
        let (mut rollup, mut hours) = (0.0, 0);
        loop {
            let (took, s) = run(&jobs, json!({"job": "usage-rollup"})).await;
            rollup += took;
            hours += s["hours"].as_u64().unwrap();
            if s["remaining"] == 0 {
                break;
            }
        }
        let window = json!({"window_start": start, "window_end": today});
        let mut daily = window.clone();
        daily["job"] = json!("daily-metrics");
        let (daily_s, d) = run(&jobs, daily).await;
        assert_eq!(d["days_rebuilt"], days, "{d}");
        let (yesterday_s, _) = run(&jobs, json!({"job": "daily-metrics"})).await;
        let mut dash = window;
        dash["job"] = json!("dashboard-metrics");
        let (dash_s, m) = run(&jobs, dash).await;
        let (dash_day_s, _) = run(&jobs, json!({"job": "dashboard-metrics"})).await;
        let (weekly_s, w) = run(&jobs, json!({"job": "weekly-report"})).await;
        println!(
            "{days} days, {days_events} events ({} hours rolled up in {rollup:.1} s): daily-metrics over all {days} days {daily_s:.2} s, \
             for yesterday {yesterday_s:.2} s | dashboard-metrics over {days} days {dash_s:.2} s ({}), for yesterday {dash_day_s:.2} s | \
             weekly-report {weekly_s:.2} s (published {})",
            hours, m["written"], w["published"]
        );
        client.delete_table().table_name(&cfg.store.table).send().await.unwrap();
    });
}
