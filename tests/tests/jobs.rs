//! The scheduled jobs against DynamoDB Local and moto's event bus: each
//! job's effect, its summary, its idempotency (a second run changes nothing
//! and publishes nothing), and what reached the bus, read back through an
//! SQS target of a bus rule.

use analytics_shared::jobs::JobError;
use analytics_shared::query::period::{self, DateRange};
use analytics_shared::store::Table;
use analytics_shared::store::rollups::Resolution;
use chrono::{DateTime, Datelike, Duration, DurationRound, SecondsFormat, Utc};
use integration_tests::*;
use query::BASE;
use serde_json::{Value, json};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn activity(id: &str, at: DateTime<Utc>, user: &str, action: &str) -> Value {
    json!({"event_id": id, "kind": "activity", "occurred_at": ts(at), "user_id": user, "action": action, "client_id": "c-1"})
}

fn failed_login(id: &str, at: DateTime<Utc>, user: &str, ip: &str) -> Value {
    json!({"event_id": id, "kind": "auth", "occurred_at": ts(at), "user_id": user, "event_type": "login_failed",
        "success": false, "ip_address": ip})
}

fn api(id: &str, at: DateTime<Utc>, status: u16) -> Value {
    json!({"event_id": id, "kind": "api_request", "occurred_at": ts(at), "endpoint": "/clients", "method": "GET",
        "status_code": status, "response_time_ms": 40})
}

fn store_of(client: &aws_sdk_dynamodb::Client, cfg: &analytics_shared::Config) -> Table {
    Table::new(client.clone(), cfg.store.clone())
}

fn hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::hours(1)).unwrap()
}

/// Hourly rollups are recomputed for exactly the dirty hours of every
/// tenant, equal the raw events' figures, and a rerun does nothing; a
/// manual window recomputes its hours again to the same result.
#[tokio::test]
async fn usage_rollup_rolls_up_every_tenant_once() {
    let (client, cfg) = fresh_table().await;
    let (jobs, _bus) = jobs_env(cfg.clone(), &client).await;
    let base = hour(Utc::now()) - Duration::hours(30);
    for (tenant, n) in [("acme", 40), ("globex", 25)] {
        let events: Vec<Value> =
            (0..n).map(|i| activity(&format!("{tenant}-{i}"), base + Duration::minutes(37 * i), "u-1", "login")).collect();
        store_events(&client, &cfg, tenant, &events).await;
    }
    // Every kind of event, for the comparison with whole items below.
    let mixed = random_world(&mut fastrand::Rng::with_seed(4), "initech", 300, base, 24 * 60);
    store_events(&client, &cfg, "initech", &mixed).await;
    let store = store_of(&client, &cfg);
    let mut dirty = 0;
    for t in ["acme", "globex", "initech"] {
        dirty += store.markers().dirty_hours(t).await.unwrap().len();
    }
    let first = run_job(&jobs, json!({"job": "usage-rollup", "scheduled_time": ts(Utc::now())})).await.unwrap();
    assert_eq!(first["job"], "usage-rollup");
    assert_eq!(first["tenants"], 3);
    assert_eq!(first["hours"], dirty as u64, "{first}");
    assert_eq!((first["still_dirty"].as_u64(), first["remaining"].as_u64()), (Some(0), Some(0)));
    assert!(store.markers().dirty_hours("acme").await.unwrap().is_empty());
    let tenants: Vec<String> = store.tenants().list(None, Utc::now()).await.unwrap().into_iter().map(|t| t.tenant).collect();
    assert_eq!(tenants, ["acme", "globex", "initech"], "the roll-up registers the tenants the other jobs visit");

    // The stored hours are the raw events' rollups: the whole items,
    // folded here, give the same as the roll-up's projected reads.
    let now = Utc::now();
    for (tenant, activities) in [("acme", 40), ("initech", mixed.iter().filter(|e| e["kind"] == "activity").count() as u64)] {
        let stored = store.rollups().read(tenant, Resolution::Hour, &keys_hour(base), &keys_hour(now), now).await.unwrap();
        let mut total = 0;
        for (label, r) in &stored {
            let mut direct = analytics_shared::rollup::Rollup::default();
            for e in store.events().hour_events(tenant, label, now).await.unwrap() {
                direct.add(&e.event);
            }
            assert_eq!(r, &direct, "{tenant} {label}");
            total += r.activities();
        }
        assert_eq!(total, activities, "{tenant}");
    }
    let stored = store.rollups().read("acme", Resolution::Hour, &keys_hour(base), &keys_hour(now), now).await.unwrap();

    let again = run_job(&jobs, json!({"job": "usage-rollup", "scheduled_time": ts(Utc::now())})).await.unwrap();
    assert_eq!((again["tenants"].as_u64(), again["hours"].as_u64()), (Some(0), Some(0)), "{again}");

    // A manual backfill of a window recomputes its hours: same rollups.
    let w = json!({"job": "usage-rollup", "window_start": ts(base), "window_end": ts(base + Duration::hours(6)), "tenant": "acme"});
    let backfill = run_job(&jobs, w).await.unwrap();
    assert_eq!((backfill["marked"].as_u64(), backfill["hours"].as_u64()), (Some(6), Some(6)), "{backfill}");
    let now = Utc::now();
    assert_eq!(store.rollups().read("acme", Resolution::Hour, &keys_hour(base), &keys_hour(now), now).await.unwrap(), stored);
}

fn keys_hour(t: DateTime<Utc>) -> String {
    analytics_shared::time::hour_label(t)
}

/// Daily rollups are rebuilt from the hours and period metrics are stored
/// for the day, ISO week, month and year; both drop the cache, and a
/// second run writes the same figures.
#[tokio::test]
async fn daily_and_dashboard_metrics_store_every_period_and_drop_the_cache() {
    let (client, cfg) = fresh_table().await;
    let (jobs, _bus) = jobs_env(cfg.clone(), &client).await;
    let yesterday = Utc::now().duration_trunc(Duration::days(1)).unwrap() - Duration::days(1);
    let mut events: Vec<Value> = (0..12).map(|i| activity(&format!("a{i}"), yesterday + Duration::hours(i), "u-1", "login")).collect();
    events.push(json!({"event_id": "r1", "kind": "activity", "occurred_at": ts(yesterday + Duration::hours(3)), "user_id": "u-2",
        "action": "generate_report", "client_id": "c-2",
        "report": {"status": "completed", "processing_time_ms": 3000, "categories": {"cost": 2, "security": 1},
                   "impact": {"high": 1, "medium": 0, "low": 2}}}));
    events.push(json!({"event_id": "r2", "kind": "activity", "occurred_at": ts(yesterday + Duration::hours(4)), "user_id": "u-2",
        "action": "generate_report", "client_id": "c-2", "report": {"status": "failed", "processing_time_ms": 1000}}));
    store_events(&client, &cfg, "acme", &events).await;
    run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap();
    let store = store_of(&client, &cfg);
    let now = Utc::now();
    store.documents().put_cached("acme", "dashboard#x", "{}", 900, now).await.unwrap();

    let daily = run_job(&jobs, json!({"job": "daily-metrics", "scheduled_time": ts(Utc::now())})).await.unwrap();
    assert_eq!((daily["days_rebuilt"].as_u64(), daily["cache_entries_dropped"].as_u64()), (Some(1), Some(1)), "{daily}");
    assert_eq!(daily["window_start"], json!(yesterday), "the default window is yesterday");
    let day = analytics_shared::time::day_label(yesterday);
    let days = store.rollups().read("acme", Resolution::Day, &day, &day, now).await.unwrap();
    assert_eq!(days[&day].activities(), 14);

    store.documents().put_cached("acme", "dashboard#y", "{}", 900, now).await.unwrap();
    let dash = run_job(&jobs, json!({"job": "dashboard-metrics", "scheduled_time": ts(Utc::now())})).await.unwrap();
    assert_eq!(dash["written"], json!({"daily": 1, "weekly": 1, "monthly": 1, "yearly": 1}), "{dash}");
    assert_eq!(dash["cache_entries_dropped"], 1);
    assert!(store.documents().cached("acme", "dashboard#y", now).await.unwrap().is_none());
    let d = yesterday.date_naive();
    let monday = d - Duration::days(i64::from(d.weekday().num_days_from_monday()));
    let weekly: Value =
        serde_json::from_str(&store.documents().metrics_of("acme", "weekly", &monday.to_string(), now).await.unwrap().unwrap()).unwrap();
    assert_eq!(weekly["total_activities"], 14);
    assert_eq!(weekly["reports_this_period"], 2);
    assert_eq!(weekly["success_rate_percentage"], 50);
    assert_eq!(weekly["avg_processing_time_seconds"], 2);
    assert_eq!(weekly["active_clients"], 2);
    assert_eq!(weekly["categories"]["total"], 3);
    assert_eq!(weekly["business_impact"]["low"]["count"], 2);
    let daily_m: Value =
        serde_json::from_str(&store.documents().metrics_of("acme", "daily", &d.to_string(), now).await.unwrap().unwrap()).unwrap();
    assert_eq!(daily_m["active_users"], 2);

    let before: Vec<Option<String>> = futures_bodies(&store, d).await;
    run_job(&jobs, json!({"job": "dashboard-metrics", "scheduled_time": ts(Utc::now())})).await.unwrap();
    assert_eq!(futures_bodies(&store, d).await, before, "a rerun writes the same figures");
}

async fn futures_bodies(store: &Table, d: chrono::NaiveDate) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for p in analytics_shared::report::Period::ALL {
        out.push(store.documents().metrics_of("acme", p.as_str(), &p.bounds(d).0.to_string(), Utc::now()).await.unwrap());
    }
    out
}

/// A snapshot carries the host figures and the app figures; bursts of
/// failed logins and 5xx responses raise one alert per condition and
/// window, which reaches the bus once however often the job runs.
#[tokio::test]
async fn health_snapshots_and_alerts_once_per_window() {
    let (client, cfg) = fresh_table().await;
    let (jobs, bus) = jobs_env(cfg.clone(), &client).await;
    let slot = Utc::now().duration_trunc(Duration::minutes(5)).unwrap();
    let at = slot - Duration::minutes(7);
    let mut events: Vec<Value> = (0..25).map(|i| failed_login(&format!("f{i}"), at, &format!("user-{}", i % 2), "203.0.113.9")).collect();
    events.extend((0..30).map(|i| api(&format!("q{i}"), at, if i < 6 { 503 } else { 200 })));
    events.extend((0..5).map(|i| failed_login(&format!("g{i}"), at, "carol", "198.51.100.7")));
    store_events(&client, &cfg, "acme", &events).await;
    store_events(&client, &cfg, "quiet", &[activity("q-1", at, "u-1", "login")]).await;

    let run = |t: DateTime<Utc>| run_job(&jobs, json!({"job": "health-snapshot", "scheduled_time": ts(t)}));
    let first = run(slot + Duration::seconds(20)).await.unwrap();
    assert_eq!(first["captured_at"], json!(slot), "a snapshot is stamped with its five-minute slot");
    assert_eq!((first["tenants"].as_u64(), first["snapshots"].as_u64()), (Some(2), Some(2)), "{first}");
    assert_eq!(first["alerts_published"], 2, "error rate and one IP; no user passed 20: {first}");
    let got = bus.received().await;
    assert_eq!(got.len(), 2, "{got:?}");
    let mut conditions: Vec<&str> = got.iter().map(|e| e["detail"]["condition"].as_str().unwrap()).collect();
    conditions.sort();
    assert_eq!(conditions, ["error_rate", "failed_logins_ip"]);
    for e in &got {
        assert_eq!((e["source"].as_str(), e["detail-type"].as_str()), (Some("analytics"), Some("AnalyticsHealthAlert")));
        assert_eq!(e["detail"]["tenant"], "acme");
        assert_eq!(e["detail"]["window_end"], json!(slot));
        assert_eq!(e["detail"]["window_start"], json!(slot - Duration::minutes(15)));
        match e["detail"]["condition"].as_str().unwrap() {
            "error_rate" => {
                assert_eq!((e["detail"]["value"].as_f64(), e["detail"]["threshold"].as_f64()), (Some(20.0), Some(5.0)));
                assert_eq!(e["detail"]["threshold_setting"], "ANALYTICS_ALERT_ERROR_RATE");
            }
            _ => {
                assert_eq!((e["detail"]["subject"].as_str(), e["detail"]["value"].as_f64()), (Some("203.0.113.9"), Some(25.0)));
                assert_eq!(e["detail"]["threshold_setting"], "ANALYTICS_ALERT_FAILED_LOGINS");
            }
        }
    }
    // The same slot again, then the next slot (an overlapping window):
    // the conditions still hold, nothing new is published.
    let again = run(slot + Duration::seconds(50)).await.unwrap();
    assert_eq!((again["alerts_published"].as_u64(), again["alerts_suppressed"].as_u64()), (Some(0), Some(2)), "{again}");
    let next = run(slot + Duration::minutes(5)).await.unwrap();
    assert_eq!(next["alerts_published"], 0, "{next}");
    assert!(bus.received().await.is_empty());

    let store = store_of(&client, &cfg);
    let snap = store.documents().latest_snapshot("acme", Utc::now() + Duration::minutes(10)).await.unwrap().unwrap();
    assert_eq!((snap.cpu_percent, snap.memory_used_mb, snap.process_memory_mb), (Some(12.5), Some(512.0), Some(20.0)));
    assert_eq!(snap.requests_24h, 30.0);
    assert_eq!(snap.error_rate, 20.0);
    assert_eq!(snap.failed_logins_24h, 30);
    // The query route serves the stored snapshot, host figures included.
    let app = query::App::new(cfg.clone(), client.clone()).unwrap();
    let tok = token("boss", Some("acme"), &["admin"], &[]);
    let health = Answer::from(app.handle(ApiEvent::get(&format!("{BASE}/system-health")).bearer(&tok).into_request()).await);
    assert_eq!(health.status, 200);
    assert_eq!(health.body["cpu_percent"], 12.5, "{}", health.body);
}

/// A bus that refuses entries fails the job (so its schedule retries) and
/// gives the alert's claim back: the retry publishes it.
#[tokio::test]
async fn an_alert_that_could_not_be_published_is_sent_by_the_retry() {
    let (client, cfg) = fresh_table().await;
    let (jobs, bus) = jobs_env(cfg.clone(), &client).await;
    let slot = Utc::now().duration_trunc(Duration::minutes(5)).unwrap();
    let events: Vec<Value> = (0..22).map(|i| failed_login(&format!("f{i}"), slot - Duration::minutes(3), "bob", "192.0.2.1")).collect();
    store_events(&client, &cfg, "acme", &events).await;
    let broken = analytics_shared::jobs::Jobs::new(store_of(&client, &cfg), bus.broken(), cfg.clone());
    let payload = json!({"job": "health-snapshot", "scheduled_time": ts(slot)});
    let err = run_job(&broken, payload.clone()).await.unwrap_err();
    // The tenant's failure is reported after every tenant was tried, and
    // fails the invocation so the schedule retries it.
    assert!(matches!(&err, JobError::TenantsFailed { failed: 1, summary } if summary["failed"][0]["tenant"] == "acme"), "{err}");
    assert!(err.to_string().contains("no-such-bus"), "the cause is named: {err}");
    let retry = run_job(&jobs, payload).await.unwrap();
    assert_eq!(retry["alerts_published"], 2, "ip and user: {retry}");
    assert_eq!(bus.received().await.len(), 2);
}

/// The claim of an alert lands but its answer comes too late: the
/// client's retry finds the claim and it is still this run's, so the alert
/// goes out; another run of the same window finds it claimed.
#[tokio::test]
async fn an_alert_claim_whose_answer_was_lost_is_still_this_runs() {
    let (client, cfg) = fresh_table().await;
    let (store, connections) = store_losing_its_first_answer(&cfg).await;
    let end = Utc::now().duration_trunc(Duration::minutes(5)).unwrap();
    let start = end - Duration::minutes(15);
    assert!(store.alerts().claim("acme", "failed_logins#ip#192.0.2.1", start, end).await.unwrap());
    assert!(connections.taken() >= 2, "the held answer made the client retry");
    let direct = store_of(&client, &cfg);
    assert!(!direct.alerts().claim("acme", "failed_logins#ip#192.0.2.1", start, end).await.unwrap(), "a rerun is refused");
    let next = end + Duration::minutes(15);
    assert!(direct.alerts().claim("acme", "failed_logins#ip#192.0.2.1", end, next).await.unwrap(), "the next window is free");
}

/// Events and snapshots written under a longer retention are removed once
/// the current one has passed; recent ones stay; a rerun removes nothing.
#[tokio::test]
async fn cleanup_removes_what_an_older_retention_left() {
    let (client, mut cfg) = fresh_table().await;
    // One shard: the sweep reads every shard of every hour, and a test
    // need not read eight empty ones.
    cfg.store.shards = 1;
    let now = Utc::now();
    // Written while retention was 400 days (api logs 100).
    let mut long = cfg.clone();
    long.retention.events_days = 400;
    long.retention.api_log_days = 100;
    long.retention.metrics_days = 400;
    let old = now - Duration::days(100);
    let mut events: Vec<Value> = (0..30).map(|i| activity(&format!("old-{i}"), old + Duration::hours(i), "u-1", "login")).collect();
    events.extend((0..10).map(|i| api(&format!("api-old-{i}"), now - Duration::days(45) + Duration::hours(i), 200)));
    events.extend((0..5).map(|i| activity(&format!("new-{i}"), now - Duration::days(2) + Duration::hours(i), "u-1", "login")));
    events.extend((0..5).map(|i| api(&format!("api-new-{i}"), now - Duration::days(2) + Duration::hours(i), 200)));
    store_events(&client, &long, "acme", &events).await;
    let store = store_of(&client, &long);
    analytics_shared::jobs::rollup::roll_up_tenant(&store, "acme", now, &long.retention, 10_000).await.unwrap();
    let mut snap = analytics_shared::query::period::app_health_now(&store, "acme", now, &cfg.retention).await.unwrap();
    for days_ago in [90, 60, 1] {
        snap.captured_at = now - Duration::days(days_ago);
        store.documents().put_snapshot("acme", &snap, long.retention.metrics_days).await.unwrap();
    }

    // Today's retention: 90 days (api logs 30, snapshots 30).
    cfg.retention.events_days = 90;
    let (jobs, _bus) = jobs_env(cfg.clone(), &client).await;
    let first = run_job(&jobs, json!({"job": "activity-cleanup", "scheduled_time": ts(now)})).await.unwrap();
    assert_eq!(first["ttl_enabled"], true);
    assert!(first.get("warning").is_none());
    assert_eq!(first["removed"], 40, "30 old activities and 10 old API requests: {first}");
    assert_eq!(first["complete"], true);
    let left = store.events().user_events("acme", "u-1", Utc::now()).await.unwrap();
    assert_eq!(left.len(), 5, "recent activity stays");
    let again = run_job(&jobs, json!({"job": "activity-cleanup", "scheduled_time": ts(Utc::now())})).await.unwrap();
    assert_eq!((again["removed"].as_u64(), again["swept"].as_u64()), (Some(0), Some(0)), "the sweep resumes where it stopped: {again}");

    let metrics = run_job(&jobs, json!({"job": "metrics-cleanup", "scheduled_time": ts(now)})).await.unwrap();
    assert_eq!(metrics["removed"], 2, "{metrics}");
    assert!(store.documents().latest_snapshot("acme", now).await.unwrap().is_some(), "yesterday's snapshot stays");
    let metrics_again = run_job(&jobs, json!({"job": "metrics-cleanup"})).await.unwrap();
    assert_eq!(metrics_again["removed"], 0);
}

/// With TTL off nothing expires by itself: the cleanup says so and removes
/// everything past retention.
#[tokio::test]
async fn cleanup_says_when_ttl_is_off() {
    let (client, cfg) = fresh_table().await;
    client
        .update_time_to_live()
        .table_name(&cfg.store.table)
        .time_to_live_specification(
            aws_sdk_dynamodb::types::TimeToLiveSpecification::builder().enabled(false).attribute_name("expires_at").build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (jobs, _bus) = jobs_env(cfg.clone(), &client).await;
    let out = run_job(&jobs, json!({"job": "activity-cleanup"})).await.unwrap();
    assert_eq!(out["ttl_enabled"], false);
    assert!(out["warning"].as_str().unwrap().contains("TTL is not enabled"), "{out}");
}

/// The weekly report: stored, readable by admins and managers through the
/// new routes, published once; a late event changes it and it is
/// published again.
#[tokio::test]
async fn weekly_report_is_stored_readable_and_published_once() {
    let (client, cfg) = fresh_table().await;
    let (jobs, bus) = jobs_env(cfg.clone(), &client).await;
    let today = Utc::now().duration_trunc(Duration::days(1)).unwrap();
    let this_monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let last_monday = this_monday - Duration::days(7);
    let mut events: Vec<Value> =
        (0..10).map(|i| activity(&format!("w{i}"), last_monday + Duration::hours(5 + 7 * i), "alice", "login")).collect();
    events.extend((0..4).map(|i| activity(&format!("p{i}"), last_monday - Duration::days(3) + Duration::hours(i), "bob", "login")));
    events.extend((0..3).map(|i| api(&format!("e{i}"), last_monday + Duration::days(1), if i == 0 { 500 } else { 200 })));
    events.push(json!({"event_id": "x1", "kind": "external_call", "occurred_at": ts(last_monday + Duration::days(2)),
        "service": "openai", "endpoint": "/v1/chat", "status_code": 200, "response_time_ms": 900, "cost_estimate": 0.25}));
    events.push(failed_login("l1", last_monday + Duration::days(3), "alice", "203.0.113.5"));
    store_events(&client, &cfg, "acme", &events).await;
    run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap();

    let scheduled = json!({"job": "weekly-report", "scheduled_time": ts(this_monday + Duration::hours(9))});
    let first = run_job(&jobs, scheduled.clone()).await.unwrap();
    let week = analytics_shared::time::week_label(last_monday.date_naive());
    assert_eq!(first["weeks"], json!([week]));
    assert_eq!((first["stored"].as_u64(), first["published"].as_u64()), (Some(1), Some(1)), "{first}");
    let got = bus.received().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["detail-type"], "WeeklyReportGenerated");
    let summary = &got[0]["detail"];
    assert_eq!((summary["tenant"].as_str(), summary["week"].as_str()), (Some("acme"), Some(week.as_str())));
    assert_eq!(summary["totals"]["activity"], 10);
    assert_eq!(summary["change_percent"]["activity"], 150, "10 against 4 the week before");
    assert_eq!(summary["total_external_cost"], 0.25);
    assert_eq!(summary["path"], format!("/api/v1/analytics/reports/weekly/{week}"));

    let again = run_job(&jobs, scheduled.clone()).await.unwrap();
    assert_eq!((again["unchanged"].as_u64(), again["published"].as_u64()), (Some(1), Some(0)), "{again}");
    assert!(bus.received().await.is_empty(), "a rerun publishes nothing");

    // The routes.
    let app = query::App::new(cfg.clone(), client.clone()).unwrap();
    let get = |path: String, tok: String| {
        let app = &app;
        async move { Answer::from(app.handle(ApiEvent::get(&format!("{BASE}{path}")).bearer(&tok).into_request()).await) }
    };
    let manager = token("m", Some("acme"), &["manager"], &[]);
    let one = get(format!("/reports/weekly/{week}"), manager.clone()).await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body["totals"]["activity"], 10);
    assert_eq!(one.body["most_active_users"][0], json!({"key": "alice", "count": 10}));
    assert_eq!(one.body["most_failing_endpoints"][0]["error_count"], 1);
    assert_eq!(one.body["failed_logins"]["total"], 1);
    assert_eq!(one.body["external_api_cost"][0]["service"], "openai");
    let list = get("/reports/weekly".into(), manager.clone()).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["items"][0]["week"], week);
    assert_eq!(get("/reports/weekly/2026-W99".into(), manager.clone()).await.status, 400);
    assert_eq!(get("/reports/weekly/2020-W01".into(), manager.clone()).await.status, 404);
    assert_eq!(get(format!("/reports/weekly/{week}"), token("u", Some("acme"), &["member"], &[])).await.status, 403);
    assert_eq!(get(format!("/reports/weekly/{week}"), token("m2", Some("globex"), &["manager"], &[])).await.status, 404, "tenants apart");

    // A late event of that week changes the figures: stored and published again.
    store_events(&client, &cfg, "acme", &[activity("late", last_monday + Duration::days(6), "carol", "login")]).await;
    let late = run_job(&jobs, scheduled).await.unwrap();
    assert_eq!((late["stored"].as_u64(), late["published"].as_u64()), (Some(1), Some(1)), "{late}");
    let got = bus.received().await;
    assert_eq!(got[0]["detail"]["totals"]["activity"], 11);
}

/// A weekly report whose publication failed is published by the next run,
/// even though its figures did not change.
#[tokio::test]
async fn a_report_stored_but_not_published_is_published_by_the_retry() {
    let (client, cfg) = fresh_table().await;
    let (jobs, bus) = jobs_env(cfg.clone(), &client).await;
    let today = Utc::now().duration_trunc(Duration::days(1)).unwrap();
    let last_monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()) + 7);
    store_events(&client, &cfg, "acme", &[activity("w1", last_monday + Duration::hours(30), "alice", "login")]).await;
    run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap();
    let broken = analytics_shared::jobs::Jobs::new(store_of(&client, &cfg), bus.broken(), cfg.clone());
    let payload = json!({"job": "weekly-report"});
    assert!(matches!(run_job(&broken, payload.clone()).await, Err(JobError::TenantsFailed { failed: 1, .. })));
    let retry = run_job(&jobs, payload.clone()).await.unwrap();
    assert_eq!((retry["unchanged"].as_u64(), retry["published"].as_u64()), (Some(1), Some(1)), "{retry}");
    assert_eq!(bus.received().await.len(), 1);
    assert_eq!(run_job(&jobs, payload).await.unwrap()["published"], 0);
}

/// Bad payloads are refused with a message naming the problem, before
/// anything is read or written.
#[tokio::test]
async fn bad_payloads_are_clear_errors() {
    let (client, cfg) = fresh_table().await;
    let (jobs, _bus) = jobs_env(cfg, &client).await;
    for (payload, says) in [
        (json!({"job": "nope"}), "not run by this function"),
        (json!({"job": "usage-rollup", "window_start": "2026-11-01T00:00:00Z"}), "both window_start and window_end"),
        (json!({"job": "daily-metrics", "window_start": "2026-11-02T00:00:00Z", "window_end": "2026-11-01T00:00:00Z"}), "before"),
        (json!({"job": "weekly-report", "window_start": "yesterday", "window_end": "today"}), "RFC 3339"),
        (json!({"job": "health-snapshot", "tenant": "a b"}), "tenant"),
        (json!({"job": "usage-rollup", "window_start": "2025-01-01T00:00:00Z", "window_end": "2025-06-01T00:00:00Z"}), "split"),
    ] {
        let err = run_job(&jobs, payload.clone()).await.unwrap_err();
        assert!(matches!(err, JobError::BadRequest(_)), "{payload}: {err}");
        assert!(err.to_string().contains(says), "{payload}: {err}");
    }
}

/// The stored figures the jobs build come out the same as reading the raw
/// events directly.
#[tokio::test]
async fn period_reads_match_after_the_jobs() {
    let (client, cfg) = fresh_table().await;
    let (jobs, _bus) = jobs_env(cfg.clone(), &client).await;
    let start = Utc::now().duration_trunc(Duration::days(1)).unwrap() - Duration::days(3);
    let events: Vec<Value> = (0..50).map(|i| activity(&format!("a{i}"), start + Duration::minutes(83 * i), "u", "login")).collect();
    store_events(&client, &cfg, "acme", &events).await;
    let store = store_of(&client, &cfg);
    let range = DateRange { from: start, to: Utc::now() };
    let raw = period::total(
        &analytics_shared::query::planner::read_pieces(&store, "acme", range, &[], Utc::now(), &cfg.retention).await.unwrap(),
    );
    run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap();
    run_job(&jobs, json!({"job": "daily-metrics"})).await.unwrap();
    let rolled = period::total(
        &analytics_shared::query::planner::read_pieces(&store, "acme", range, &[], Utc::now(), &cfg.retention).await.unwrap(),
    );
    // Stored days keep no quarter-hour detail; every figure is the same.
    assert_eq!(raw.counters(), rolled.counters());
    assert_eq!((raw.actions(), &raw.clients, &raw.reports), (rolled.actions(), &rolled.clients, &rolled.reports));
    assert_eq!(rolled.activities(), 50);
}

/// The dashboard's routes read each stored day's part (no latency
/// histograms, no auth or external calls): the figures they answer are
/// those of the whole days, and a day stored without its part (before it
/// existed) is read whole instead.
#[tokio::test]
async fn the_dashboard_reads_each_days_part_and_the_whole_day_where_it_is_missing() {
    use analytics_shared::query::planner::{read_pieces, read_pieces_of};
    use analytics_shared::store::rollups::DayPart;
    let (client, cfg) = fresh_table().await;
    let (jobs, _bus) = jobs_env(cfg.clone(), &client).await;
    let start = Utc::now().duration_trunc(Duration::days(1)).unwrap() - Duration::days(4);
    let mut rng = fastrand::Rng::with_seed(7);
    store_events(&client, &cfg, "acme", &random_world(&mut rng, "acme", 400, start, 3 * 24 * 60)).await;
    run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap();
    let store = store_of(&client, &cfg);
    let (now, range) = (Utc::now(), DateRange { from: start, to: Utc::now() });
    let whole = period::total(&read_pieces(&store, "acme", range, &[], now, &cfg.retention).await.unwrap());
    let dashboard =
        || async { period::total(&read_pieces_of(&store, "acme", range, &[], DayPart::Dashboard, now, &cfg.retention).await.unwrap()) };
    let part = dashboard().await;
    assert!(!whole.auth.is_empty() && !whole.external.is_empty() && whole.api.values().any(|s| s.latency != Default::default()));
    assert_eq!(part, whole.dashboard_part(), "the same figures, less what the dashboard never shows");
    assert!(part.auth.is_empty() && part.external.is_empty() && part.api.values().all(|s| s.latency == Default::default()));
    assert_eq!((part.counters(), part.activities(), part.users.len()), (whole.counters(), whole.activities(), whole.users.len()));

    let (first, last) = (time_label(start), time_label(start + Duration::days(3)));
    let stored = store.rollups().read("acme", Resolution::DayDashboard, &first, &last, now).await.unwrap();
    let days = store.rollups().read("acme", Resolution::Day, &first, &last, now).await.unwrap();
    assert_eq!(stored.len(), 3, "each day the roll-up rebuilt has its part");
    for (label, day) in &days {
        assert_eq!(stored.get(label), Some(&day.dashboard_part()), "{label}");
        let size = |r: &analytics_shared::rollup::Rollup| serde_json::to_vec(r).unwrap().len();
        assert!(size(&stored[label]) < size(day), "{label}: the part is smaller than its day");
    }
    // A part that is not its whole day's newest revision (left by a
    // rebuild racing another) is not read: the day is read whole.
    let label = days.keys().next().unwrap().clone();
    let mut stale = analytics_shared::store::rollups::StoredRollup::default();
    stale.rollup.users.insert("nobody".into(), Default::default());
    let rev = analytics_shared::store::rollups::new_revision();
    store.rollups().put_revision("acme", Resolution::DayDashboard, &label, &stale, i64::MAX, &rev).await.unwrap();
    assert_eq!(store.rollups().read("acme", Resolution::DayDashboard, &label, &label, now).await.unwrap()[&label], stale.rollup);
    assert_eq!(dashboard().await, part, "a part under another revision than its day's is not read");
    // Days stored before their part existed: read whole, same answer.
    let (parts, _) = integration_tests::delete_partition(&client, &cfg.store.table, "T#acme#R#day-dashboard").await;
    assert!(parts > 0);
    assert!(store.rollups().read("acme", Resolution::DayDashboard, &first, &last, now).await.unwrap().is_empty());
    assert_eq!(dashboard().await, part, "a day without its part is read whole");
}

fn time_label(t: DateTime<Utc>) -> String {
    analytics_shared::time::day_label(t)
}

fn pick<T: Copy>(rng: &mut fastrand::Rng, xs: &[T]) -> T {
    xs[rng.usize(..xs.len())]
}

/// A random world: several tenants, every kind of event, sampled API
/// requests, spread over days and landing on every quarter hour.
fn random_world(rng: &mut fastrand::Rng, tenant: &str, n: usize, start: DateTime<Utc>, span_minutes: i64) -> Vec<Value> {
    let users = ["ann", "ben", "cid", "dee", "eve"];
    let clients = ["c-1", "c-2", "c-3"];
    let actions = ["login", "generate_report", "create_client", "upload_csv", "download_report", "tune_model"];
    (0..n)
        .map(|i| {
            let at = start + Duration::minutes(rng.i64(0..span_minutes)) + Duration::seconds(rng.i64(0..60));
            let id = format!("{tenant}-{i}");
            let user = users[rng.usize(..users.len())];
            match rng.u8(0..10) {
                0..=4 => {
                    let action = actions[rng.usize(..actions.len())];
                    let mut e = json!({"event_id": id, "kind": "activity", "occurred_at": ts(at), "user_id": user, "action": action,
                        "client_id": clients[rng.usize(..clients.len())]});
                    if action == "generate_report" && rng.bool() {
                        e["report"] = json!({"status": if rng.u8(0..4) == 0 { "failed" } else { "completed" },
                            "processing_time_ms": rng.u64(100..20_000),
                            "categories": {"cost": rng.u64(0..4), "security": rng.u64(0..3)},
                            "impact": {"high": rng.u64(0..2), "medium": rng.u64(0..3), "low": rng.u64(0..4)},
                            "estimated_monthly_savings": rng.u64(0..5000) as f64 / 4.0});
                    }
                    e
                }
                5..=7 => {
                    let status = [200, 200, 200, 201, 404, 500, 503][rng.usize(..7)];
                    let mut e = json!({"event_id": id, "kind": "api_request", "occurred_at": ts(at), "user_id": user,
                        "endpoint": pick(rng, &["/clients", "/reports/{id}", "/health"]), "method": pick(rng, &["GET", "POST"]),
                        "status_code": status, "response_time_ms": rng.u64(1..3000)});
                    if rng.bool() {
                        e["sample_rate"] = json!(0.25);
                    }
                    e
                }
                8 => json!({"event_id": id, "kind": "auth", "occurred_at": ts(at), "user_id": user,
                    "event_type": pick(rng, &["login", "login_failed", "logout", "signup"]), "success": rng.u8(0..3) != 0,
                    "ip_address": format!("198.51.100.{}", rng.u8(1..5))}),
                _ => json!({"event_id": id, "kind": "external_call", "occurred_at": ts(at), "service": pick(rng, &["openai", "stripe"]),
                    "endpoint": "/v1/x", "status_code": pick(rng, &[200, 429, 500]), "response_time_ms": rng.u64(10..2000),
                    "cost_estimate": rng.u64(0..1000) as f64 / 1000.0}),
            }
        })
        .collect()
}

/// Every period route of a tenant, in several time zones, without the
/// parts that move with the clock.
async fn every_period_answer(app: &query::App, tok: &str, from: &str, to: &str) -> Vec<(String, Value)> {
    let mut queries: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/activity-summary", vec![("group_by", "activity_type")]),
        ("/activity-summary", vec![("group_by", "user")]),
        ("/activity-summary", vec![("group_by", "day")]),
        ("/api-requests", vec![]),
        ("/api-requests", vec![("status_class", "5xx")]),
        ("/auth-events", vec![]),
        ("/external-calls", vec![("granularity", "day")]),
    ];
    for tz in ["UTC", "Asia/Kolkata", "America/New_York", "Australia/Adelaide", "Asia/Kathmandu"] {
        for (metric, granularity) in
            [("activities", "day"), ("active_users", "day"), ("api_requests", "hour"), ("errors", "week"), ("reports", "day")]
        {
            queries.push(("/trends", vec![("metric", metric), ("granularity", granularity), ("tz", tz)]));
        }
    }
    let mut out = Vec::new();
    for (path, mut q) in queries {
        q.extend([("date_from", from), ("date_to", to)]);
        let a = Answer::from(app.handle(with_query(ApiEvent::get(&format!("{BASE}{path}")).bearer(tok), &q).into_request()).await);
        assert_eq!(a.status, 200, "{path} {q:?}: {}", a.body);
        out.push((format!("{path} {q:?}"), a.body));
    }
    for path in ["/metrics", "/categories", "/client-performance", "/business-impact", "/dashboard"] {
        for period in ["7d", "30d"] {
            let ev = ApiEvent::get(&format!("{BASE}{path}")).bearer(tok).query("period", period);
            let mut a = Answer::from(app.handle(ev.into_request()).await);
            assert_eq!(a.status, 200, "{path}: {}", a.body);
            if let Some(o) = a.body.as_object_mut() {
                o.remove("date_to");
                o.remove("recent_activity");
            }
            out.push((format!("{path} {period}"), a.body));
        }
    }
    out
}

fn with_query(mut ev: ApiEvent, q: &[(&str, &str)]) -> ApiEvent {
    for (k, v) in q {
        ev = ev.query(k, v);
    }
    ev
}

/// The jobs' rollups give every period route the same answer as reading
/// the raw events directly: random events across hours, days, tenants and
/// time zones (whole, half and quarter-hour offsets), before and after the
/// hourly, daily and dashboard jobs. `ANALYTICS_TEST_SEED` picks another
/// world. Totals are also checked against sums
/// taken straight from the generated events.
#[tokio::test]
async fn rollups_answer_like_raw_events_for_random_worlds() {
    let (client, mut cfg) = fresh_table().await;
    // One shard: before the roll-up every answer reads every raw hour, one
    // query per shard; eight would only make the test slower.
    cfg.store.shards = 1;
    let (jobs, _bus) = jobs_env(cfg.clone(), &client).await;
    let app = query::App::new(cfg.clone(), client.clone()).unwrap();
    let seed: u64 = std::env::var("ANALYTICS_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_122);
    let mut rng = fastrand::Rng::with_seed(seed);
    let end = Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(1);
    let start = end - Duration::days(4) - Duration::minutes(45);
    let tenants = ["t-a", "t-b", "t-c"];
    let mut worlds = Vec::new();
    for t in tenants {
        let n = 300 + rng.usize(0..200);
        let world = random_world(&mut rng, t, n, start, (end - start).num_minutes());
        store_events(&client, &cfg, t, &world).await;
        worlds.push(world);
    }
    let (from, to) = (ts(start - Duration::days(1)), ts(end + Duration::hours(2)));
    let mut raw = Vec::new();
    for t in tenants {
        raw.push(every_period_answer(&app, &token("boss", Some(t), &["admin"], &[]), &from, &to).await);
    }

    // A backlog takes as many hourly runs as the per-run bound requires.
    let mut runs = 0;
    while run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap()["remaining"] != 0 {
        runs += 1;
        assert!(runs < 5, "the backlog shrinks with every run");
    }
    let window = json!({"window_start": ts(start - Duration::days(1)), "window_end": ts(end)});
    let mut daily = window.clone();
    daily["job"] = json!("daily-metrics");
    run_job(&jobs, daily).await.unwrap();
    let mut dash = window;
    dash["job"] = json!("dashboard-metrics");
    run_job(&jobs, dash).await.unwrap();
    for (i, t) in tenants.iter().enumerate() {
        assert!(store_of(&client, &cfg).markers().dirty_hours(t).await.unwrap().is_empty());
        let tok = token("boss", Some(t), &["admin"], &[]);
        let rolled = every_period_answer(&app, &tok, &from, &to).await;
        for ((name, a), (_, b)) in raw[i].iter().zip(&rolled) {
            assert_eq!(a, b, "seed {seed}, tenant {t}, {name}");
        }
        // Straight from the generated events.
        let world = &worlds[i];
        let of = |k: &'static str| world.iter().filter(move |e| e["kind"] == k);
        let summary = &rolled[0].1;
        assert_eq!(summary["total"].as_u64().unwrap() as usize, of("activity").count(), "seed {seed}, {t}");
        let weighted: f64 = of("api_request").map(|e| 1.0 / e["sample_rate"].as_f64().unwrap_or(1.0)).sum();
        let api: f64 = rolled[3].1["endpoints"].as_array().unwrap().iter().map(|e| e["count"].as_f64().unwrap()).sum();
        assert!((api - weighted).abs() < 1e-6, "seed {seed}, {t}: {api} vs {weighted}");
        let failed =
            of("auth").filter(|e| e["event_type"] == "login_failed" || (e["event_type"] == "login" && e["success"] == false)).count();
        assert_eq!(rolled[5].1["failed_logins"].as_u64().unwrap() as usize, failed, "seed {seed}, {t}");
        let cost: f64 = of("external_call").map(|e| e["cost_estimate"].as_f64().unwrap()).sum();
        assert!((rolled[6].1["total_cost"].as_f64().unwrap() - cost).abs() < 1e-6, "seed {seed}, {t}");
    }
}

/// Every committed job payload names a job of the function its file is
/// named after, and runs as is (on an empty table: nothing to do).
#[tokio::test]
async fn the_committed_job_payloads_run() {
    let (client, cfg) = fresh_table().await;
    let (jobs, _bus) = jobs_env(cfg, &client).await;
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(root().join("events")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(function) = ::jobs::FUNCTIONS
            .iter()
            .map(|(f, _)| *f)
            .find(|f| ::jobs::jobs_of(f).iter().any(|j| name.starts_with(&format!("{}-", j.name())) || name.starts_with(&format!("{f}-"))))
        else {
            continue;
        };
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let job = analytics_shared::jobs::Job::select(payload["job"].as_str(), ::jobs::jobs_of(function))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(name.starts_with(job.name()) || name.starts_with(function), "{name} runs {}", job.name());
        let summary = run_job(&jobs, payload).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(summary["job"], job.name(), "{name}");
        seen.insert(job.name());
    }
    assert_eq!(seen.len(), analytics_shared::jobs::Job::ALL.len(), "a payload for every job: {seen:?}");
}
