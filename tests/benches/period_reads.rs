//! What a period query reads, and how long it takes, as the number of events
//! grows: `/dashboard?period=90d` and a `/user-activity` page over a tenant
//! with 10,000 and with 1,000,000 events spread over 90 days, on DynamoDB
//! Local (in-memory), after the roll-up has run.
//!
//! cargo bench -p integration-tests --bench period_reads [-- --events 10000,1000000]
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it does one small
//! round as a smoke test.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use analytics_shared::ingest::prepare;
use analytics_shared::store::batch::batch_put;
use analytics_shared::store::events::EventStore;
use analytics_shared::store::keys;
use chrono::{DurationRound, Utc};
use integration_tests::{Answer, ApiEvent, fresh_table, token};
use serde_json::json;

/// A deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn event(i: u64, rng: &mut Rng, start: chrono::DateTime<Utc>, span_s: u64) -> serde_json::Value {
    let at = (start + chrono::Duration::seconds(rng.below(span_s) as i64)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let user = format!("u-{}", rng.below(300));
    let id = format!("e-{i}");
    match rng.below(10) {
        0..=1 => json!({"event_id": id, "kind": "activity", "occurred_at": at, "user_id": user, "action": "generate_report",
            "client_id": format!("c-{}", rng.below(100)),
            "report": {"status": if rng.below(10) == 0 { "failed" } else { "completed" }, "processing_time_ms": 1000 + rng.below(9000),
                "categories": {"cost": rng.below(10), "security": rng.below(5)}, "impact": {"high": rng.below(3), "medium": rng.below(5), "low": rng.below(5)},
                "estimated_monthly_savings": rng.below(2000) as f64}}),
        2..=3 => json!({"event_id": id, "kind": "activity", "occurred_at": at, "user_id": user, "action": "view_dashboard",
            "client_id": format!("c-{}", rng.below(100))}),
        4..=7 => json!({"event_id": id, "kind": "api_request", "occurred_at": at, "user_id": user,
            "endpoint": format!("/api/r{}", rng.below(40)), "method": "GET", "status_code": if rng.below(50) == 0 { 500 } else { 200 },
            "response_time_ms": 5 + rng.below(500)}),
        8 => json!({"event_id": id, "kind": "auth", "occurred_at": at, "user_id": user, "event_type": "login_failed", "success": false,
            "ip_address": format!("198.51.100.{}", rng.below(200))}),
        _ => json!({"event_id": id, "kind": "external_call", "occurred_at": at, "service": format!("svc-{}", rng.below(3)),
            "endpoint": "/v1", "response_time_ms": 300, "cost_estimate": 0.01}),
    }
}

/// One request through the function: its time, the items it read, the answer.
async fn timed(app: &query::App, path: &'static str, tok: String) -> (Duration, u64, Answer) {
    let req = ApiEvent::get(&format!("/api/v1/analytics{path}")).bearer(&tok).into_request();
    let read = app.store.items_read();
    let t = Instant::now();
    let a = Answer::from(app.handle(req).await);
    let took = t.elapsed();
    assert_eq!(a.status, 200, "{path}: {}", a.body);
    (took, app.store.items_read() - read, a)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<u64> = match std::env::args().skip_while(|a| a != "--events").nth(1) {
        Some(list) => list.split(',').map(|n| n.parse().expect("--events takes numbers")).collect(),
        None if bench => vec![10_000, 1_000_000],
        None => vec![2_000],
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        for n in sizes {
            let (client, cfg) = fresh_table().await;
            let store = EventStore::new(client.clone(), cfg.store.clone());
            let now = Utc::now();
            // The smoke test spreads its events over a week, so its roll-up stays quick.
            let start = now.duration_trunc(chrono::Duration::days(1)).unwrap() - chrono::Duration::days(if bench { 89 } else { 6 });
            let span = (now - start).num_seconds() as u64;
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

            // Seed: validated items, written 25 a call with 16 calls in flight.
            let t = Instant::now();
            let mut hours = BTreeSet::new();
            let mut i = 0;
            while i < n {
                let batch: Vec<_> = (i..(i + 5000).min(n)).map(|k| event(k, &mut rng, start, span)).collect();
                i += batch.len() as u64;
                let mut items = Vec::new();
                for chunk in batch.chunks(500) {
                    let body = json!({ "events": chunk }).to_string();
                    let p = prepare(body.as_bytes(), "bench", now, &cfg.retention, cfg.store.shards).unwrap();
                    for (_, w) in p.writes {
                        hours.insert(keys::hour_label(w.placed_at));
                        items.push(w.item);
                    }
                }
                let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
                batch_put(&client, &cfg.store.table, items, 16, 10, deadline).await.unwrap();
            }
            store.mark_dirty("bench", &hours).await.unwrap();
            let seeded = t.elapsed();
            let t = Instant::now();
            let summary = store.roll_up_tenant("bench", Utc::now(), &cfg.retention, usize::MAX).await.unwrap();
            let rolled = t.elapsed();
            println!(
                "{n} events: seeded in {:.1} s ({:.0}/s); rolled up {} hours and {} days in {:.1} s ({:.0} events/s)",
                seeded.as_secs_f64(),
                n as f64 / seeded.as_secs_f64(),
                summary.hours,
                summary.days,
                rolled.as_secs_f64(),
                n as f64 / rolled.as_secs_f64()
            );

            let app = query::App::new(cfg.clone(), client.clone()).unwrap();
            let admin = token("boss", Some("bench"), &["admin"], &[]);
            let member = token("u-7", Some("bench"), &[], &[]);
            let get = |path: &'static str, tok: &str| timed(&app, path, tok.to_owned());
            let rounds = if bench { 15 } else { 2 };
            let (mut cold, mut warm, mut page, mut tenant_page) = (vec![], vec![], vec![], vec![]);
            let (mut read_dash, mut read_page) = (0, 0);
            for _ in 0..rounds {
                app.store.invalidate_cache("bench").await.unwrap();
                let (took, read, a) = get("/dashboard?period=90d", &admin).await;
                assert_eq!(a.headers["x-cache"], "miss");
                assert!(a.body["metrics"]["total_activities"].as_u64().unwrap() > 0);
                cold.push(took);
                read_dash = read;
                let (took, _, a) = get("/dashboard?period=90d", &admin).await;
                assert_eq!(a.headers["x-cache"], "hit");
                warm.push(took);
                let (took, read, a) = get("/user-activity?limit=50", &member).await;
                assert!(!a.body["items"].as_array().unwrap().is_empty());
                page.push(took);
                read_page = read;
                let (took, _, _) = get("/user-activity?limit=50", &admin).await;
                tenant_page.push(took);
            }
            println!(
                "{n} events: /dashboard?period=90d reads {read_dash} items: {:.1} ms computed, {:.1} ms cached | \
                 /user-activity page of 50 reads {read_page} items: {:.1} ms (a user), {:.1} ms (whole tenant); medians of {rounds}",
                median(cold).as_secs_f64() * 1e3,
                median(warm).as_secs_f64() * 1e3,
                median(page).as_secs_f64() * 1e3,
                median(tenant_page).as_secs_f64() * 1e3,
            );
            client.delete_table().table_name(&cfg.store.table).send().await.unwrap();
        }
    });
}
