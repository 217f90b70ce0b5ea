//! The dashboard's stored windows, on DynamoDB Local: the dashboard routes
//! read one or two window documents and today instead of a document per
//! day, answer exactly what the day-by-day read answers, and never answer
//! from a window that a late event or a rebuilt day made stale.

use analytics_shared::query::planner::RollupSource;
use analytics_shared::store::Table;
use analytics_shared::time::day_start;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use integration_tests::{Answer, ApiEvent, fresh_table, jobs_env, run_job, seed_world, store_events, token};
use serde_json::{Value, json};

const BASE: &str = "/api/v1/analytics";
const ROUTES: [&str; 5] = ["/dashboard", "/metrics", "/categories", "/client-performance", "/business-impact"];
const PERIODS: [&str; 4] = ["7d", "30d", "90d", "365d"];

/// Every dashboard route and period, computed (the cache dropped first),
/// without the parts that move with the clock; and the items read.
async fn answers(app: &query::App, tenant: &str) -> (Vec<(String, Value)>, u64) {
    let tok = token("boss", Some(tenant), &["admin"], &[]);
    let before = app.store.items_read();
    let mut out = Vec::new();
    for path in ROUTES {
        for period in PERIODS {
            app.store.documents().invalidate_cache(tenant).await.unwrap();
            let ev = ApiEvent::get(&format!("{BASE}{path}")).bearer(&tok).query("period", period);
            let mut a = Answer::from(app.handle(ev.into_request()).await);
            assert_eq!(a.status, 200, "{path} {period}: {}", a.body);
            if let Some(o) = a.body.as_object_mut() {
                o.remove("recent_activity");
                o.remove("date_to");
            }
            out.push((format!("{path} {period}"), a.body));
        }
    }
    (out, app.store.items_read() - before)
}

async fn delete_partition(client: &aws_sdk_dynamodb::Client, table: &str, pk: &str) -> usize {
    let page = client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", AttributeValue::S(pk.into()));
    let items = page.send().await.unwrap().items.unwrap_or_default();
    for item in &items {
        let key = item.iter().filter(|(k, _)| *k == "pk" || *k == "sk").map(|(k, v)| (k.clone(), v.clone())).collect();
        client.delete_item().table_name(table).set_key(Some(key)).send().await.unwrap();
    }
    items.len()
}

fn assert_same(a: &[(String, Value)], b: &[(String, Value)], what: &str) {
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(b) {
        assert_eq!(x, y, "{what}: {name}");
    }
}

#[tokio::test]
async fn the_dashboard_answers_from_its_windows_as_it_does_day_by_day_and_never_from_a_stale_one() {
    let (client, cfg) = fresh_table().await;
    let (jobs, _bus) = jobs_env(cfg.clone(), &client).await;
    let app = query::App::new(cfg.clone(), client.clone()).unwrap();
    let store = Table::new(client.clone(), cfg.store.clone());
    let now = Utc::now();
    let today = day_start(now);
    let start = today - Duration::days(12);
    seed_world(&client, &cfg, "acme", 3_000, start, (now - start).num_seconds() as u64).await;
    // A backlog takes as many hourly runs as the per-run bound requires.
    for _ in 0..5 {
        if run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap()["remaining"] == 0 {
            break;
        }
    }

    // The roll-up built the windows as of yesterday, under the current epoch.
    let epoch = store.windows().epoch("acme").await.unwrap();
    let built = store.windows().built("acme").await.unwrap().expect("windows built");
    assert_eq!((built.as_of.as_str(), built.epoch), (analytics_shared::time::day_label(today - Duration::days(1)).as_str(), epoch));
    assert!(epoch > 0, "the rebuilt past days bumped the epoch");
    let found = store.current_windows("acme", today - Duration::days(1), &[7, 90], Utc::now()).await.unwrap().expect("current windows");
    assert_eq!(found[0].days.len(), 6, "a 7-day window holds the 6 completed days before today");
    assert_eq!(found[1].days.len(), 89);
    assert!(found[0].rollup.activities() > 0 && found[0].rollup.activities() < found[1].rollup.activities());

    let (windowed, read_windowed) = answers(&app, "acme").await;
    let removed = delete_partition(&client, &cfg.store.table, "T#acme#R#window").await;
    assert!(removed >= 4, "a window per length: {removed}");
    let (daily, read_daily) = answers(&app, "acme").await;
    assert_same(&windowed, &daily, "windows against day by day");
    assert!(read_windowed < read_daily, "the windows read fewer items: {read_windowed} against {read_daily}");
    let dash = &windowed[0].1;
    assert_eq!(dash["trends"].as_array().unwrap().len(), 7, "{dash}");
    assert!(dash["metrics"]["total_activities"].as_u64().unwrap() > 0);

    // The job builds them again; a second run changes nothing.
    run_job(&jobs, json!({"job": "daily-metrics"})).await.unwrap();
    assert!(store.current_windows("acme", today - Duration::days(1), &[30], Utc::now()).await.unwrap().is_some());
    assert!(!analytics_shared::jobs::windows::keep_windows(&store, "acme", Utc::now(), &cfg.retention).await.unwrap());

    // A late event in a past day: its hour is dirty, so no window is read
    // until the roll-up has rebuilt the day, and the answer counts it at once.
    let late = json!({"event_id": "late-1", "kind": "activity", "action": "generate_report", "user_id": "late-user",
        "occurred_at": (today - Duration::days(3) + Duration::hours(5)).to_rfc3339(), "report": {"status": "completed", "categories": {"finance": 1}}});
    assert_eq!(store_events(&client, &cfg, "acme", &[late]).await, 1);
    assert!(store.current_windows("acme", today - Duration::days(1), &[7], Utc::now()).await.unwrap().is_none(), "a dirty hour: no window");
    let (with_late, _) = answers(&app, "acme").await;
    let total = |a: &[(String, Value)]| a[0].1["metrics"]["total_activities"].as_u64().unwrap();
    assert_eq!(total(&with_late), total(&daily) + 1, "the late event counts before any job ran");
    run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap();
    let rebuilt = store.windows().built("acme").await.unwrap().unwrap();
    assert!(rebuilt.epoch > epoch, "rebuilding the past day bumped the epoch: {} -> {}", epoch, rebuilt.epoch);
    assert!(store.current_windows("acme", today - Duration::days(1), &[7], Utc::now()).await.unwrap().is_some());
    let (after, _) = answers(&app, "acme").await;
    assert_same(&after, &with_late, "the rebuilt windows against the raw hour");

    // A day rewritten after the windows were built (the epoch moved): the
    // windows are stale and the days are read one by one, same answer.
    store.windows().bump("acme", Utc::now(), 30).await.unwrap();
    assert!(
        store.current_windows("acme", today - Duration::days(1), &[7], Utc::now()).await.unwrap().is_none(),
        "a stale epoch: no window"
    );
    let (stale, read_stale) = answers(&app, "acme").await;
    assert_same(&stale, &after, "a stale window is not read");
    assert!(read_stale > read_windowed);
}
