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
use integration_tests::{Rng, bench_event, fresh_table, seed_world};

/// What walking one query cost: events matched, pages, and per page the
/// event items read (the budgeted figure), the queries sent and the
/// hour-index items read to plan it.
struct Walk {
    matched: usize,
    pages: usize,
    items: Vec<usize>,
    queries: Vec<usize>,
    index: Vec<usize>,
}

/// Pages of one `/events` query, as the route builds it, until `want`
/// events matched or `max_pages` pages.
async fn walk(store: &analytics_shared::store::Table, query: &[(&str, String)], want: usize, max_pages: usize) -> Walk {
    let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let params = analytics_shared::query::Params::new(pairs, &analytics_shared::query::explore::EVENT_PARAMS).unwrap();
    let now = Utc::now();
    let f = analytics_shared::query::explore::event_filter(&params, now, &analytics_shared::config::Retention::default()).unwrap();
    let mut w = Walk { matched: 0, pages: 0, items: vec![], queries: vec![], index: vec![] };
    let mut before = None;
    while w.matched < want && w.pages < max_pages {
        let q = analytics_shared::store::explorer::ExploreQuery {
            tenant: "bench",
            kinds: f.kinds,
            user: params.get("user_id"),
            action: f.action.as_deref(),
            conds: f.conds.clone(),
            from: f.range.from,
            to: f.range.to,
            before: before.clone(),
            limit: params.limit(50).unwrap(),
            budget: PAGE_BUDGET,
        };
        let page = store.explorer().page(&q, now).await.unwrap();
        assert!(page.items_read <= PAGE_BUDGET.items && page.queries <= PAGE_BUDGET.queries);
        w.pages += 1;
        w.matched += page.items.len();
        w.items.push(page.items_read);
        w.queries.push(page.queries);
        w.index.push(page.index_read);
        match page.next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    w
}

fn mean(v: &[usize]) -> f64 {
    v.iter().sum::<usize>() as f64 / v.len().max(1) as f64
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
    let (bench, sizes) = integration_tests::bench_sizes();
    index_costs();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        for n in sizes {
            let (client, cfg) = fresh_table().await;
            let now = Utc::now();
            let start = now.duration_trunc(Duration::days(1)).unwrap() - Duration::days(if bench { 89 } else { 6 });
            let span = (now - start).num_seconds() as u64;
            seed_world(&client, &cfg, "bench", n, start, span).await;
            let store = analytics_shared::store::Table::new(client.clone(), cfg.store.clone());
            let month_ago = (now - Duration::days(30)).to_rfc3339();
            // Before the roll-up every hour is dirty, as if the index did not exist.
            for stage in ["every hour walked (not rolled up)", "rolled up (hour index)"] {
                if stage.starts_with("rolled") {
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
                let w = walk(&store, &q, 50, 400).await;
                println!(
                    "{n} events, {stage}: {name}: {} matches in {} pages; per page {:.0} event items read (at most {}), {:.0} queries, {:.0} index items",
                    w.matched,
                    w.pages,
                    mean(&w.items),
                    w.items.iter().max().unwrap_or(&0),
                    mean(&w.queries),
                    mean(&w.index)
                );
            }
            }
            // Frees DynamoDB Local's memory; a failure here says nothing of the figures.
            let _ = client.delete_table().table_name(&cfg.store.table).send().await;
        }
    });
}
