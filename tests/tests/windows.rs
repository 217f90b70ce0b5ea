//! The dashboard's stored windows, on DynamoDB Local: the dashboard routes
//! read one or two window documents and today instead of a document per
//! day, answer exactly what the day-by-day read answers, and never answer
//! from a window that a late event or a rebuilt day made stale.

use analytics_shared::query::planner::RollupSource;
use analytics_shared::store::Table;
use analytics_shared::store::rollups::Resolution;
use analytics_shared::time::day_start;
use chrono::{Duration, Utc};
use integration_tests::{Answer, ApiEvent, delete_partition, fresh_table, jobs_env, run_job, seed_world, store_events, token};
use serde_json::{Value, json};

const BASE: &str = "/api/v1/analytics";
const ROUTES: [&str; 5] = ["/dashboard", "/metrics", "/categories", "/client-performance", "/business-impact"];
const PERIODS: [&str; 4] = ["7d", "30d", "90d", "365d"];

/// Every dashboard route and period, computed (the cache dropped first),
/// without the parts that move with the clock, each with the items it read.
async fn answers(app: &query::App, tenant: &str) -> Vec<(String, Value, u64)> {
    let tok = token("boss", Some(tenant), &["admin"], &[]);
    let mut out = Vec::new();
    for path in ROUTES {
        for period in PERIODS {
            app.store.documents().invalidate_cache(tenant).await.unwrap();
            let ev = ApiEvent::get(&format!("{BASE}{path}")).bearer(&tok).query("period", period);
            let before = app.store.items_read();
            let mut a = Answer::from(app.handle(ev.into_request()).await);
            assert_eq!(a.status, 200, "{path} {period}: {}", a.body);
            if let Some(o) = a.body.as_object_mut() {
                o.remove("recent_activity");
                o.remove("date_to");
            }
            out.push((format!("{path} {period}"), a.body, app.store.items_read() - before));
        }
    }
    out
}

fn assert_same(a: &[(String, Value, u64)], b: &[(String, Value, u64)], what: &str) {
    assert_eq!(a.len(), b.len());
    for ((name, x, _), (_, y, _)) in a.iter().zip(b) {
        assert_eq!(x, y, "{what}: {name}");
    }
}

fn activities(a: &[(String, Value, u64)], i: usize) -> u64 {
    a[i].1["metrics"]["total_activities"].as_u64().unwrap()
}

/// A report outcome of `user` at `t`.
fn report(id: &str, user: &str, t: chrono::DateTime<Utc>, savings: f64) -> Value {
    json!({"event_id": id, "kind": "activity", "action": "generate_report", "user_id": user, "client_id": format!("c-{user}"),
        "occurred_at": t.to_rfc3339(), "report": {"status": "completed", "processing_time_ms": 1234,
        "categories": {"finance": 1}, "estimated_monthly_savings": savings}})
}

/// A fresh table with the jobs, the query function and the store over it,
/// under a configuration `tune` adjusts first.
struct World {
    client: aws_sdk_dynamodb::Client,
    cfg: analytics_shared::Config,
    jobs: analytics_shared::jobs::Jobs,
    _bus: integration_tests::BusProbe,
    app: query::App,
    store: Table,
}

async fn world(tune: impl FnOnce(&mut analytics_shared::Config)) -> World {
    let (client, mut cfg) = fresh_table().await;
    tune(&mut cfg);
    let (jobs, _bus) = jobs_env(cfg.clone(), &client).await;
    let app = query::App::new(cfg.clone(), client.clone()).unwrap();
    let store = Table::new(client.clone(), cfg.store.clone());
    World { client, cfg, jobs, _bus, app, store }
}

#[tokio::test]
async fn the_dashboard_answers_from_its_windows_as_it_does_day_by_day_and_never_from_a_stale_one() {
    // A kept history longer than every period: its window is its own.
    let World { client, cfg, jobs, _bus, app, store } = world(|c| c.retention.events_days = 400).await;
    let now = Utc::now();
    let today = day_start(now);
    let start = today - Duration::days(12);
    seed_world(&client, &cfg, "acme", 3_000, start, (now - start).num_seconds() as u64).await;
    // One report on each side of every window's first day, so that mixing
    // the windows up, or an off-by-one at their oldest day, shows.
    let edges: Vec<Value> = [6, 7, 29, 30, 89, 90, 364, 365, 399]
        .iter()
        .map(|d| report(&format!("edge-{d}"), &format!("old-{d}"), today - Duration::days(*d) + Duration::hours(3), 0.1 * *d as f64))
        .collect();
    assert_eq!(store_events(&client, &cfg, "acme", &edges).await, edges.len());
    // A backlog takes as many hourly runs as the per-run bound requires.
    for _ in 0..5 {
        if run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap()["remaining"] == 0 {
            break;
        }
    }
    let as_of = today - Duration::days(1);

    // The roll-up built the windows as of yesterday, under the current epoch.
    let epoch = store.windows().epoch("acme").await.unwrap();
    let built = store.windows().built("acme").await.unwrap().expect("windows built");
    assert_eq!((built.as_of.as_str(), built.epoch), (analytics_shared::time::day_label(as_of).as_str(), epoch));
    assert!(epoch > 0, "the rebuilt past days bumped the epoch");
    let found = store.current_windows("acme", as_of, &[7, 30, 90, 365, 400], Utc::now()).await.unwrap().expect("current windows");
    let lens: Vec<usize> = found.iter().map(|w| w.days.len()).collect();
    assert_eq!(lens, [6, 29, 89, 364, 399], "a window of n days holds the n - 1 completed days before today");
    let olds: Vec<usize> = found.iter().map(|w| w.rollup.users.keys().filter(|u| u.starts_with("old-")).count()).collect();
    assert_eq!(olds, [1, 3, 5, 7, 9], "each window holds exactly its own days");

    let windowed = answers(&app, "acme").await;
    let (removed, _) = delete_partition(&client, &cfg.store.table, "T#acme#R#window").await;
    assert!(removed >= 5, "a window per length: {removed}");
    let daily = answers(&app, "acme").await;
    assert_same(&windowed, &daily, "windows against day by day");
    for ((name, _, w), (_, _, d)) in windowed.iter().zip(&daily) {
        assert!(w < d, "{name}: the windows read fewer items, {w} against {d}");
    }
    let dash = &windowed[0].1;
    assert_eq!(dash["trends"].as_array().unwrap().len(), 7, "{dash}");
    assert!(activities(&windowed, 0) > 0);

    // The daily job builds them again; a second build changes nothing.
    run_job(&jobs, json!({"job": "daily-metrics"})).await.unwrap();
    assert!(store.current_windows("acme", as_of, &[30], Utc::now()).await.unwrap().is_some());
    assert!(!analytics_shared::jobs::windows::keep_windows(&store, "acme", Utc::now(), &cfg.retention).await.unwrap());

    // A late event in a past day: its hour is dirty, so no window is read
    // until the roll-up has rebuilt the day, and the answer counts it at once.
    let late = report("late-1", "late-user", today - Duration::days(3) + Duration::hours(5), 1.0);
    assert_eq!(store_events(&client, &cfg, "acme", &[late]).await, 1);
    assert!(store.current_windows("acme", as_of, &[7], Utc::now()).await.unwrap().is_none(), "a dirty hour: no window");
    let with_late = answers(&app, "acme").await;
    assert_eq!(activities(&with_late, 0), activities(&daily, 0) + 1, "the late event counts before any job ran");
    run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap();
    let rebuilt = store.windows().built("acme").await.unwrap().unwrap();
    assert!(rebuilt.epoch > epoch, "rebuilding the past day bumped the epoch: {} -> {}", epoch, rebuilt.epoch);
    assert!(store.current_windows("acme", as_of, &[7], Utc::now()).await.unwrap().is_some());
    let after = answers(&app, "acme").await;
    assert_same(&after, &with_late, "the rebuilt windows against the raw hour");

    // A day rewritten after the windows were built (here: one report more
    // in its part, the epoch bumped as a rebuild does): the windows are
    // stale, so the answer is the rewritten day's, not the windows'.
    let day = analytics_shared::time::day_label(today - Duration::days(2));
    let (whole, mut part) = {
        let w = store.rollups().stored("acme", Resolution::Day, &day, &day, Utc::now(), true).await.unwrap();
        let p = store.rollups().stored("acme", Resolution::DayDashboard, &day, &day, Utc::now(), true).await.unwrap();
        (w[&day].clone(), p[&day].clone())
    };
    part.rollup.reports.generated += 1;
    let mut whole2 = whole.clone();
    whole2.rollup.reports.generated += 1;
    let rev = analytics_shared::store::rollups::new_revision();
    store.rollups().put_revision("acme", Resolution::Day, &day, &whole2, i64::MAX, &rev).await.unwrap();
    store.rollups().put_revision("acme", Resolution::DayDashboard, &day, &part, i64::MAX, &rev).await.unwrap();
    store.windows().bump("acme").await.unwrap();
    assert!(store.current_windows("acme", as_of, &[7], Utc::now()).await.unwrap().is_none(), "a stale epoch: no window");
    let stale = answers(&app, "acme").await;
    let reports = |a: &[(String, Value, u64)]| a[0].1["metrics"]["reports_this_period"].as_u64().unwrap();
    assert_eq!(reports(&stale), reports(&after) + 1, "the rewritten day is read, not the stale window");
    assert!(keep_windows_now(&store, &cfg).await, "the next build sees the epoch moved");
    assert_same(&answers(&app, "acme").await, &stale, "windows built again agree with the rewritten day");
}

async fn keep_windows_now(store: &Table, cfg: &analytics_shared::Config) -> bool {
    analytics_shared::jobs::windows::keep_windows(store, "acme", Utc::now(), &cfg.retention).await.unwrap()
}

/// Rollups kept for less than a window's length: that window is not
/// built (its oldest day expires during the day) and the routes read the
/// days one by one, the same answers.
#[tokio::test]
async fn windows_longer_than_the_rollups_kept_are_neither_built_nor_read() {
    let World { client, cfg, jobs, _bus, app, store } = world(|c| c.retention.rollup_days = 60).await;
    let today = day_start(Utc::now());
    let events: Vec<Value> = [1, 5, 20, 40].iter().map(|d| report(&format!("r-{d}"), "ann", today - Duration::days(*d), 1.0)).collect();
    store_events(&client, &cfg, "acme", &events).await;
    run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap();
    assert_eq!(analytics_shared::query::period::window_days(&cfg.retention), [7, 30], "no 90, 365 or history window");
    let as_of = today - Duration::days(1);
    assert!(store.current_windows("acme", as_of, &[7, 30], Utc::now()).await.unwrap().is_some());
    assert!(store.current_windows("acme", as_of, &[90], Utc::now()).await.unwrap().is_none());
    let first = answers(&app, "acme").await;
    delete_partition(&client, &cfg.store.table, "T#acme#R#window").await;
    assert_same(&first, &answers(&app, "acme").await, "with and without the windows");
    assert_eq!(activities(&first, 3), 4, "/dashboard?period=365d holds every report");
}

/// Two rebuilds of one bucket racing: the one that took the older
/// revision, finishing last, neither wins nor deletes the newer one.
#[tokio::test]
async fn a_rebuild_finishing_last_under_an_older_revision_leaves_the_newer_one() {
    use analytics_shared::store::rollups::{StoredRollup, new_revision};
    let (client, cfg) = fresh_table().await;
    let store = Table::new(client, cfg.store.clone());
    let (older, newer) = (new_revision(), new_revision());
    let doc = |user: &str| {
        let mut d = StoredRollup::default();
        d.rollup.users.insert(user.into(), Default::default());
        d
    };
    store.rollups().put_revision("acme", Resolution::Day, "2026-12-01", &doc("newer"), i64::MAX, &newer).await.unwrap();
    store.rollups().put_revision("acme", Resolution::Day, "2026-12-01", &doc("older"), i64::MAX, &older).await.unwrap();
    let read = store.rollups().read("acme", Resolution::Day, "2026-12-01", "2026-12-01", Utc::now()).await.unwrap();
    assert!(read["2026-12-01"].users.contains_key("newer"), "{read:?}");
    // The next rebuild, newer than both, replaces them.
    store.rollups().put("acme", Resolution::Day, "2026-12-01", &doc("next"), i64::MAX).await.unwrap();
    let read = store.rollups().read("acme", Resolution::Day, "2026-12-01", "2026-12-01", Utc::now()).await.unwrap();
    assert_eq!(read["2026-12-01"].users.keys().collect::<Vec<_>>(), ["next"]);
}

/// A stored window that does not read (written by another version, or
/// damaged) is as good as missing: the routes answer 200 from the days,
/// the same as without it.
#[tokio::test]
async fn a_window_that_does_not_read_is_read_around() {
    use aws_sdk_dynamodb::primitives::Blob;
    use aws_sdk_dynamodb::types::AttributeValue as A;
    let World { client, cfg, jobs, _bus, app, store } = world(|_| {}).await;
    let today = day_start(Utc::now());
    let events: Vec<Value> = [1, 3, 8].iter().map(|d| report(&format!("r-{d}"), "ann", today - Duration::days(*d), 1.0)).collect();
    store_events(&client, &cfg, "acme", &events).await;
    run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap();
    let as_of = today - Duration::days(1);
    assert!(store.current_windows("acme", as_of, &[7], Utc::now()).await.unwrap().is_some());
    let before = answers(&app, "acme").await;
    // The newest revision of the 7-day window, holding what no version reads.
    let label = analytics_shared::store::keys::window_label(&analytics_shared::time::day_label(as_of), 7);
    let rev = format!("{}f", "9".repeat(20));
    client
        .put_item()
        .table_name(&cfg.store.table)
        .item("pk", A::S("T#acme#R#window".into()))
        .item("sk", A::S(format!("{label}#{rev}#0")))
        .item("data", A::B(Blob::new(b"{\"epoch\": \"not a number\"".to_vec())))
        .item("parts", A::N("1".into()))
        .item("rev", A::S(rev))
        .item("expires_at", A::N(i64::MAX.to_string()))
        .send()
        .await
        .unwrap();
    assert!(store.current_windows("acme", as_of, &[7], Utc::now()).await.unwrap().is_none(), "an unreadable window is not current");
    assert_same(&answers(&app, "acme").await, &before, "read around, the same answers");
}
