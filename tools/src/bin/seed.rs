//! Creates the local table and event bus if needed, loads demo events
//! through the real ingest pipeline (validation, sanitizing, conditional
//! writes), then runs the jobs over the seeded days as their schedules
//! would: roll-up, dashboard metrics, weekly reports, a health snapshot.
//!
//! cargo run -q -p analytics-tools --bin seed -- [--tenant T] [--days N]
//!
//! Event ids are derived from the day and a counter, so seeding twice on the
//! same day stores nothing twice.

use analytics_shared::store::{self, table};
use analytics_shared::{Config, ingest};
use analytics_tools::demo;

#[tokio::main]
async fn main() {
    let cfg = Config::from_env().unwrap_or_else(|e| fail(&e.to_string()));
    let mut tenant = cfg.auth.default_tenant.clone();
    let mut days = 14_u32;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--tenant" => {
                let t = value();
                tenant = analytics_shared::tenant::TenantId::parse(&t)
                    .unwrap_or_else(|| fail(&format!("--tenant {t:?}: {}", analytics_shared::tenant::TENANT_ID_RULE)))
            }
            "--days" => days = value().parse().unwrap_or_else(|_| fail("--days takes a number")),
            other => fail(&format!("unknown flag {other}")),
        }
    }
    let client = store::dynamodb_client(&cfg.store).await;
    match table::ensure_table(&client, &cfg.store.table).await {
        Ok(true) => eprintln!("seed: created table {}", cfg.store.table),
        Ok(false) => {}
        Err(e) => fail(&format!(
            "cannot reach DynamoDB at {} ({}); is the local stack up? (make stack)",
            std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(|_| "the default endpoint".into()),
            aws_smithy_types::error::display::DisplayErrorContext(&e)
        )),
    }
    let store = analytics_shared::store::Table::new(client, cfg.store.clone());
    let now = analytics_shared::time::receive_time();
    let (mut accepted, mut duplicates) = (0, 0);
    for batch in demo::batches(now, days) {
        let body = serde_json::to_vec(&batch).expect("demo batch serializes");
        match ingest::ingest(&store, &tenant, &body, false, now, &cfg.retention).await {
            Ok(o) => {
                accepted += o.accepted;
                duplicates += o.duplicates;
                if let Some(r) = o.rejected.first() {
                    fail(&format!("demo event rejected: {}", r.message));
                }
            }
            Err(e) => fail(&format!("{}: {}", e.code.as_str(), e.message)),
        }
    }
    eprintln!("seed: tenant {tenant}: {accepted} events stored, {duplicates} already there");
    // Roll the seeded hours up, as the hourly job would, so period routes
    // read rollups from the start.
    match analytics_shared::jobs::rollup::roll_up_tenant(
        &store,
        &tenant,
        analytics_shared::time::receive_time(),
        &cfg.retention,
        usize::MAX,
    )
    .await
    {
        Ok(s) => eprintln!("seed: rolled up {} hours into {} days", s.hours, s.days),
        Err(e) => fail(&format!("roll-up failed: {e}")),
    }
    run_jobs(store, cfg, &tenant, days).await;
}

/// The bus the jobs publish on, then the daily and weekly jobs over the
/// seeded days (manual windows, as a backfill) and a health snapshot.
async fn run_jobs(store: analytics_shared::store::Table, cfg: Config, tenant: &str, days: u32) {
    let bus = analytics_shared::bus::Bus::from_env(cfg.jobs.event_bus.clone()).await;
    match bus.create_if_missing().await {
        Ok(true) => eprintln!("seed: created event bus {}", bus.name()),
        Ok(false) => {}
        Err(e) => fail(&format!("{e}; is the local stack up? (make stack)")),
    }
    let jobs = analytics_shared::jobs::Jobs::new(store, bus, cfg);
    let now = chrono::Utc::now();
    let ctx = analytics_shared::jobs::RunContext {
        now,
        deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(300),
        host: jobs::host_figures().await,
    };
    let window = |job: &str| serde_json::json!({"job": job, "tenant": tenant, "window_start": now - chrono::Duration::days(i64::from(days) + 7), "window_end": now});
    for payload in [window("dashboard-metrics"), window("weekly-report"), serde_json::json!({"job": "health-snapshot", "tenant": tenant})] {
        let req = analytics_shared::jobs::JobRequest::parse(payload).unwrap_or_else(|e| fail(&e.to_string()));
        let job = analytics_shared::jobs::Job::select(req.job.as_deref(), &analytics_shared::jobs::Job::ALL)
            .unwrap_or_else(|e| fail(&e.to_string()));
        match jobs.run(job, &req, &ctx).await {
            Ok(summary) => eprintln!("seed: {summary}"),
            Err(e) => fail(&format!("{}: {e}", job.name())),
        }
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("seed: {msg}");
    std::process::exit(2)
}
