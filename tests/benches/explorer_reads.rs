//! What a page of `GET /events` reads from storage, as events grow: the
//! tenant's newest page, one user's events across kinds, 5xx API requests
//! over 30 days, and the failed logins of one IP, over a tenant with
//! 10,000 and 1,000,000 events spread over 90 days (DynamoDB Local,
//! in-memory); and what each index that could serve a filter would cost in
//! write units per event, against the items it would save.
//!
//! cargo bench -p integration-tests --bench explorer_reads [-- --events 10000,1000000]
//!
//! Without `--bench` it does one small round as a smoke test.

use analytics_shared::store::explorer::PAGE_BUDGET;
use chrono::{Duration, DurationRound, Utc};
use integration_tests::{Answer, ApiEvent, Rng, bench_event, fresh_table, seed_world, token};

/// Pages of one query until `want` events matched or `max_pages` pages:
/// (items matched, pages, most items one page read, items read in all).
async fn walk(app: &query::App, tok: &str, query: &[(&str, String)], want: usize, max_pages: usize) -> (usize, usize, u64, u64) {
    let (mut matched, mut pages, mut most, mut total, mut cursor) = (0, 0, 0, 0, None::<String>);
    while matched < want && pages < max_pages {
        let mut ev = ApiEvent::get("/api/v1/analytics/events").bearer(tok);
        for (k, v) in query {
            ev = ev.query(k, v);
        }
        if let Some(c) = &cursor {
            ev = ev.query("cursor", c);
        }
        let before = app.store.items_read();
        let a = Answer::from(app.handle(ev.into_request()).await);
        assert_eq!(a.status, 200, "{query:?}: {}", a.body);
        let read = app.store.items_read() - before;
        // The hour index (one small item per hour of the range) comes on top of the page's budget.
        assert!(read <= PAGE_BUDGET.items as u64 + 24 * 91, "a page read {read} items");
        (most, total, pages) = (most.max(read), total + read, pages + 1);
        matched += a.body["items"].as_array().unwrap().len();
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    (matched, pages, most, total)
}

/// Write units per event of the realistic mix today, and what an index
/// would add: every kind in the by-user index, a sparse index of 5xx API
/// requests, an index of auth events by IP.
fn index_costs() {
    let now = Utc::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let events: Vec<_> = (0..10_000).map(|i| bench_event(i, &mut rng, now - Duration::days(1), 80_000)).collect();
    let (mut wu, mut by_kind) = (0usize, std::collections::BTreeMap::<String, (usize, usize)>::new());
    let (mut user_non_activity, mut api_5xx, mut auth_ip) = (0usize, 0usize, 0usize);
    let retention = analytics_shared::config::Retention::default();
    for chunk in events.chunks(500) {
        let body = serde_json::json!({ "events": chunk }).to_string();
        let p = analytics_shared::ingest::prepare(body.as_bytes(), "bench", now, &retention, 8).unwrap();
        for (i, w) in &p.writes {
            let e = &chunk[*i];
            let kind = e["kind"].as_str().unwrap().to_owned();
            let units = w.write_units();
            wu += units;
            let k = by_kind.entry(kind.clone()).or_default();
            (k.0, k.1) = (k.0 + 1, k.1 + units);
            if kind != "activity" && e["user_id"].is_string() {
                user_non_activity += 1;
            }
            if kind == "api_request" && e["status_code"].as_u64().is_some_and(|c| c >= 500) {
                api_5xx += 1;
            }
            if kind == "auth" && e["ip_address"].is_string() {
                auth_ip += 1;
            }
        }
    }
    let n = events.len() as f64;
    let per_kind: Vec<String> = by_kind.iter().map(|(k, (c, u))| format!("{k} {:.2}", *u as f64 / *c as f64)).collect();
    println!("write units per event, realistic mix: {:.3} ({})", wu as f64 / n, per_kind.join(", "));
    println!(
        "an index would add per event of the mix: every kind by user +{:.3} (api_request 2 -> 3: over the contract's 2), \
         5xx api requests +{:.3} (those 3), auth by IP +{:.3}",
        user_non_activity as f64 / n,
        api_5xx as f64 / n,
        auth_ip as f64 / n
    );
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<u64> = match std::env::args().skip_while(|a| a != "--events").nth(1) {
        Some(list) => list.split(',').map(|n| n.parse().expect("--events takes numbers")).collect(),
        None if bench => vec![10_000, 1_000_000],
        None => vec![2_000],
    };
    index_costs();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        for n in sizes {
            let (client, cfg) = fresh_table().await;
            let now = Utc::now();
            let start = now.duration_trunc(Duration::days(1)).unwrap() - Duration::days(if bench { 89 } else { 6 });
            let span = (now - start).num_seconds() as u64;
            seed_world(&client, &cfg, "bench", n, start, span).await;
            let app = query::App::new(cfg.clone(), client.clone()).unwrap();
            let admin = token("boss", Some("bench"), &["admin"], &[]);
            let month_ago = (now - Duration::days(30)).to_rfc3339();
            // Before the roll-up every hour is dirty, as if the index did not exist.
            for stage in ["every hour walked (not rolled up)", "rolled up (hour index)"] {
                if stage.starts_with("rolled") {
                    let store = analytics_shared::store::Table::new(client.clone(), cfg.store.clone());
                    analytics_shared::jobs::rollup::roll_up_tenant(&store, "bench", Utc::now(), &cfg.retention, usize::MAX).await.unwrap();
                }
            let scenarios: [(&str, Vec<(&str, String)>); 4] = [
                ("the tenant's newest page", vec![("limit", "50".into())]),
                ("one user's events across kinds", vec![("user_id", "u-7".into()), ("limit", "50".into())]),
                (
                    "5xx api requests over 30 days",
                    vec![("kind", "api_request".into()), ("status_class", "5xx".into()), ("date_from", month_ago.clone()), ("limit", "50".into())],
                ),
                (
                    "failed logins of one IP",
                    vec![
                        ("kind", "auth".into()),
                        ("success", "false".into()),
                        ("ip_address", "198.51.100.7".into()),
                        ("limit", "50".into()),
                    ],
                ),
            ];
            for (name, q) in scenarios {
                let (matched, pages, most, total) = walk(&app, &admin, &q, 50, 400).await;
                println!(
                    "{n} events, {stage}: {name}: first 50 matches (or all: {matched}) in {pages} pages, {:.0} items read per page, at most {most}",
                    total as f64 / pages as f64
                );
            }
            }
            client.delete_table().table_name(&cfg.store.table).send().await.unwrap();
        }
    });
}
