//! The health snapshot's last 24 hours against DynamoDB Local: the hour
//! they start in is read from its stored five-minute figures, so what a
//! snapshot costs does not grow with that hour's events, and it answers
//! exactly what reading that hour's raw events answers: when the window
//! starts at five minutes (the health job's), at any second (the route's),
//! once the hour is dirty again, and for a stored hour without fives.

use analytics_shared::model::HealthSnapshot;
use analytics_shared::query::period::{self, DateRange};
use analytics_shared::store::Table;
use analytics_shared::time::hour_label;
use chrono::{DateTime, Duration, DurationRound, SecondsFormat, Utc};
use integration_tests::*;
use serde_json::{Value, json};

const TENANT: &str = "acme";

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An hour of mixed events, one every `step` seconds from `start`: API
/// requests of every status class and of many latencies, failed logins,
/// activities.
fn hour_of_events(tag: &str, start: DateTime<Utc>, step: i64) -> Vec<Value> {
    (0..3600 / step)
        .map(|i| {
            let at = start + Duration::seconds(i * step);
            let id = format!("{tag}-{i}");
            let status = [200, 201, 404, 500, 503][(i % 5) as usize];
            match i % 7 {
                0 => json!({"event_id": id, "kind": "auth", "occurred_at": ts(at), "user_id": format!("u-{}", i % 13),
                    "event_type": "login_failed", "success": false, "ip_address": format!("192.0.2.{}", i % 17)}),
                1 => json!({"event_id": id, "kind": "activity", "occurred_at": ts(at), "user_id": format!("u-{}", i % 11),
                    "action": "generate_report", "client_id": "c-1"}),
                _ => json!({"event_id": id, "kind": "api_request", "occurred_at": ts(at), "endpoint": format!("/e/{}", i % 5),
                    "method": "GET", "status_code": status, "response_time_ms": 3 + (i * 37) % 2500}),
            }
        })
        .collect()
}

/// The snapshot as reading the hour the window starts in raw makes it
/// (the planner reads a partial hour from its events).
async fn raw_snapshot(store: &Table, at: DateTime<Utc>, now: DateTime<Utc>, cfg: &analytics_shared::Config) -> HealthSnapshot {
    let midnight = analytics_shared::time::day_start(at);
    let range = DateRange { from: at - Duration::hours(24), to: at };
    let pieces = analytics_shared::query::planner::read_pieces(store, TENANT, range, &[midnight], now, &cfg.retention).await.unwrap();
    let today: Vec<_> = pieces.iter().filter(|p| p.start >= midnight).cloned().collect();
    let totals = period::total(&pieces).health_totals();
    analytics_shared::query::answers::app_health(&totals, &period::total(&today), at)
}

/// The snapshot at `at` and the items its read took.
async fn snapshot(store: &Table, at: DateTime<Utc>, now: DateTime<Utc>, cfg: &analytics_shared::Config) -> (HealthSnapshot, u64) {
    let before = store.items_read();
    let snap = period::app_health_at(store, TENANT, at, now, &cfg.retention).await.unwrap();
    (snap, store.items_read() - before)
}

#[tokio::test]
async fn the_hour_the_last_24_hours_start_in_is_read_from_its_five_minute_figures() {
    let (client, mut cfg) = fresh_table().await;
    cfg.store.shards = 1;
    let store = Table::new(client.clone(), cfg.store.clone());
    let now = Utc::now();
    // A snapshot time of the health job: at five minutes, 25 minutes into
    // its hour, so the window starts 25 minutes into the hour a day ago.
    let at = now.duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(1) + Duration::minutes(25);
    let edge = (at - Duration::hours(24)).duration_trunc(Duration::hours(1)).unwrap();
    // 1,800 events in the edge hour, some in the hours after it.
    let mut events = hour_of_events("edge", edge, 2);
    events.extend(hour_of_events("next", edge + Duration::hours(1), 60));
    events.extend(hour_of_events("today", at - Duration::hours(2), 120));
    let in_edge = events.iter().filter(|e| e["event_id"].as_str().unwrap().starts_with("edge")).count();
    assert!(in_edge >= 1_800, "{in_edge}");
    store_events(&client, &cfg, TENANT, &events).await;
    analytics_shared::jobs::rollup::roll_up_tenant(&store, TENANT, now, &cfg.retention, 100_000).await.unwrap();

    // The health job's window: equal to the raw read, at a fraction of it.
    let truth = raw_snapshot(&store, at, now, &cfg).await;
    let before = store.items_read();
    let again = raw_snapshot(&store, at, now, &cfg).await;
    let raw_cost = store.items_read() - before;
    assert_eq!(truth, again);
    assert!(truth.requests_24h > 500.0 && truth.failed_logins_24h > 100, "{truth:?}");
    let (snap, cost) = snapshot(&store, at, now, &cfg).await;
    assert_eq!(snap, truth, "the job's window from the fives");
    assert!(raw_cost > 1_000, "the raw read takes the edge hour's events: {raw_cost}");
    eprintln!("items read: {cost} from the fives, {raw_cost} raw");
    assert!(cost < 60, "items read from the fives: {cost} (raw: {raw_cost})");

    // The route's window starts at any second: at most five minutes of
    // the hour are read raw.
    for offset in [1, 150, 299] {
        let at = at + Duration::seconds(offset);
        let (snap, cost) = snapshot(&store, at, now, &cfg).await;
        assert_eq!(snap, raw_snapshot(&store, at, now, &cfg).await, "{offset} s past five minutes");
        assert!(cost < 60 + 300, "items read at {offset} s: {cost}");
    }

    // Made dirty by a late event, the hour is read raw until it is rolled
    // up again, and answers with the late event.
    let late = json!({"event_id": "late-1", "kind": "api_request", "occurred_at": ts(edge + Duration::minutes(50)),
        "endpoint": "/late", "method": "POST", "status_code": 500, "response_time_ms": 9000});
    store_events(&client, &cfg, TENANT, &[late]).await;
    let dirty = store.markers().dirty_hours(TENANT).await.unwrap();
    assert!(dirty.contains_key(&hour_label(edge)), "{dirty:?}");
    let (snap, _) = snapshot(&store, at, now, &cfg).await;
    assert_eq!(snap.requests_24h, truth.requests_24h + 1.0, "the late request counts");
    assert_eq!(snap, raw_snapshot(&store, at, now, &cfg).await, "a dirty hour read raw");
    analytics_shared::jobs::rollup::roll_up_tenant(&store, TENANT, now, &cfg.retention, 100_000).await.unwrap();
    let (rolled, cost) = snapshot(&store, at, now, &cfg).await;
    assert_eq!(rolled, snap, "rolled up again, from the fives");
    assert!(cost < 60, "{cost}");
}

#[tokio::test]
async fn a_stored_hour_without_fives_is_read_raw() {
    let (client, mut cfg) = fresh_table().await;
    cfg.store.shards = 1;
    let store = Table::new(client.clone(), cfg.store.clone());
    let now = Utc::now();
    // 50 minutes of the edge hour in the window: 300 events.
    let at = now.duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(1) + Duration::minutes(10);
    let edge = (at - Duration::hours(24)).duration_trunc(Duration::hours(1)).unwrap();
    store_events(&client, &cfg, TENANT, &hour_of_events("edge", edge, 10)).await;
    analytics_shared::jobs::rollup::roll_up_tenant(&store, TENANT, now, &cfg.retention, 100_000).await.unwrap();
    let truth = raw_snapshot(&store, at, now, &cfg).await;
    // The hour as stored before rollups kept fives.
    let label = hour_label(edge);
    let stored =
        store.rollups().stored(TENANT, analytics_shared::store::rollups::Resolution::Hour, &label, &label, now, true).await.unwrap();
    let mut doc = stored.get(&label).expect("the hour is stored").clone();
    assert!(!doc.rollup.fives.is_empty(), "rolled up with fives");
    doc.rollup.fives.clear();
    store
        .rollups()
        .put(TENANT, analytics_shared::store::rollups::Resolution::Hour, &label, &doc, (now + Duration::days(30)).timestamp())
        .await
        .unwrap();
    let (snap, cost) = snapshot(&store, at, now, &cfg).await;
    assert_eq!(snap, truth, "read raw, the same answer");
    assert!(cost > 250, "the hour's events were read: {cost}");
}

/// The health job's 15-minute alert window starts inside a live hour: it
/// is read from the deltas' five-minute figures, exact as the raw events
/// say (every request of the window counts, received before the run or
/// after the window's end), at a cost that does not grow with them.
#[tokio::test]
async fn the_alert_window_is_read_from_the_deltas_fives() {
    let (client, mut cfg) = fresh_table().await;
    cfg.store.shards = 1;
    let now = Utc::now();
    // 3,000 requests over the 14 minutes before now, every other one a 500.
    let events: Vec<Value> = (0..3000i64)
        .map(|i| {
            let at = now - Duration::minutes(14) + Duration::milliseconds(i * 280);
            json!({"event_id": format!("w-{i}"), "kind": "api_request", "occurred_at": ts(at), "endpoint": format!("/e/{}", i % 4),
                "method": "GET", "status_code": if i % 2 == 0 { 500 } else { 200 }, "response_time_ms": 10 + i % 300})
        })
        .collect();
    let end = now.duration_trunc(Duration::minutes(5)).unwrap();
    let start = end - Duration::minutes(15);
    let in_window = |e: &&Value| {
        let at = analytics_shared::time::parse_timestamp(e["occurred_at"].as_str().unwrap()).unwrap();
        at >= start && at < end
    };
    let expected = events.iter().filter(in_window).count();
    assert!(expected > 1_000, "{expected}");
    store_events(&client, &cfg, TENANT, &events).await;
    // Compactions after the window's end (ingest's own, once in 64
    // requests) fold requests received after it: the snapshot's and the
    // silence's live hour is still read from its fives, not raw.
    let store = Table::new(client.clone(), cfg.store.clone());
    for hour in [end - Duration::hours(1), end] {
        store.deltas().compact(TENANT, &hour_label(hour.duration_trunc(Duration::hours(1)).unwrap())).await.unwrap();
    }
    let (jobs, bus) = jobs_env(cfg.clone(), &client).await;
    let before = jobs.store.items_read();
    let out = run_job(&jobs, json!({"job": "health-snapshot", "scheduled_time": ts(now)})).await.unwrap();
    let cost = jobs.store.items_read() - before;
    assert_eq!(out["snapshots"], 1, "{out}");
    let alerts = bus.received().await;
    let rate =
        alerts.iter().find(|a| a["detail"]["condition"] == "error_rate").unwrap_or_else(|| panic!("an error-rate alert: {alerts:?}"));
    assert_eq!(rate["detail"]["requests"].as_f64(), Some(expected as f64), "every request of the window: {rate}");
    // The snapshot, its live hour from the fives, as the raw events say.
    let stored = store.documents().latest_snapshot(TENANT, Utc::now()).await.unwrap().expect("a snapshot");
    let mut truth = raw_snapshot(&store, end, Utc::now(), &cfg).await;
    truth.cpu_percent = stored.cpu_percent;
    truth.memory_percent = stored.memory_percent;
    truth.memory_used_mb = stored.memory_used_mb;
    truth.process_memory_mb = stored.process_memory_mb;
    assert_eq!(stored, truth, "the snapshot");
    let before_end =
        events.iter().filter(|e| analytics_shared::time::parse_timestamp(e["occurred_at"].as_str().unwrap()).unwrap() < end).count();
    assert_eq!(stored.requests_24h, before_end as f64, "every request before the snapshot's time");
    eprintln!("the health run read {cost} items for {expected} requests in its alert window");
    assert!(cost < 150, "items read by the run: {cost}");
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

/// One table with an hour of events up to now, shared by the cases.
fn seeded() -> &'static (aws_sdk_dynamodb::Client, analytics_shared::Config) {
    static WORLD: std::sync::OnceLock<(aws_sdk_dynamodb::Client, analytics_shared::Config)> = std::sync::OnceLock::new();
    WORLD.get_or_init(|| {
        runtime().block_on(async {
            let (client, cfg) = fresh_table().await;
            let start = Utc::now() - Duration::minutes(50);
            store_events(&client, &cfg, TENANT, &hour_of_events("p", start, 20)[..150]).await;
            (client, cfg)
        })
    })
}

/// A scheduled time: any instant RFC 3339 can write (years 1 to 9999, to
/// the nanosecond, any offset), or what no schedule sends.
fn scheduled_time() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let instant = (-62_135_596_800i64..253_402_300_799, 0u32..1_000_000_000, -86_399i32..86_399).prop_map(|(s, ns, off)| {
        let t = DateTime::from_timestamp(s, ns).unwrap();
        match chrono::FixedOffset::east_opt(off) {
            Some(o) => json!(t.with_timezone(&o).to_rfc3339_opts(SecondsFormat::AutoSi, false)),
            None => json!(ts(t)),
        }
    });
    let near =
        (-7_200i64..7_200).prop_map(|s| json!(ts((Utc::now() + Duration::seconds(s)).duration_trunc(Duration::minutes(5)).unwrap())));
    let odd = prop::sample::select(vec![
        json!(""),
        json!("2026-13-40T25:61:61Z"),
        json!("9999-12-31T23:59:59.999999999Z"),
        json!("0001-01-01T00:00:00Z"),
        json!(i64::MAX),
        json!(-1.0e308),
        json!(null),
        json!([]),
        json!({"at": "now"}),
        json!(true),
    ]);
    prop_oneof![instant, near, odd]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: integration_tests::props::cases(24), ..Default::default() })]

    /// A health run at any scheduled time, for the tenant or all of them,
    /// answers or refuses the payload with a message: it never panics and
    /// never fails on storage.
    #[test]
    fn a_health_run_at_any_scheduled_time_answers_or_refuses(
        at in scheduled_time(),
        tenant in proptest::option::of(proptest::sample::select(vec!["acme", "", "☃", "a#b", "T#acme#H"])),
    ) {
        let (client, cfg) = seeded();
        let out = runtime().block_on(async {
            let (jobs, _bus) = jobs_env(cfg.clone(), client).await;
            let mut payload = json!({"job": "health-snapshot", "scheduled_time": at});
            if let Some(t) = tenant {
                payload["tenant"] = json!(t);
            }
            run_job(&jobs, payload).await
        });
        match out {
            Ok(summary) => proptest::prop_assert!(summary.get("snapshots").is_some(), "{summary}"),
            Err(analytics_shared::jobs::JobError::BadRequest(why)) => proptest::prop_assert!(!why.is_empty()),
            Err(e) => proptest::prop_assert!(false, "{at} {tenant:?}: {e}"),
        }
    }
}
