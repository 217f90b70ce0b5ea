//! What a period query reads, and how long it takes, as the number of events
//! grows: `/dashboard?period=90d` and a `/user-activity` page over a tenant
//! with 10,000 and with 1,000,000 events spread over 90 days, on DynamoDB
//! Local (in-memory), after the roll-up has run.
//!
//! cargo bench -p integration-tests --bench period_reads [-- --events 10000,1000000] [--current-hour-events 1000000] [--health-hour-events 100000] [--alert-window-events 100000]
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it does one small
//! round as a smoke test.

use std::time::{Duration, Instant};

use analytics_shared::store::Table;
use chrono::{DurationRound, Utc};
use integration_tests::{Answer, ApiEvent, delete_partition, fresh_table, seed_world, token};

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

/// The health snapshot at `at` as the job and the route read it, and its
/// 24 hours as the planner alone reads them, five times each: the times and
/// items read of each (the same requests either way, asserted).
async fn snapshot_both(
    store: &Table,
    tenant: &str,
    at: chrono::DateTime<Utc>,
    now: chrono::DateTime<Utc>,
    cfg: &analytics_shared::Config,
) -> (Vec<Duration>, u64, Vec<Duration>, u64) {
    let range = analytics_shared::query::period::DateRange { from: at - chrono::Duration::hours(24), to: at };
    let midnight = analytics_shared::time::day_start(at);
    let (mut fives, mut raw) = (vec![], vec![]);
    let (mut fives_items, mut raw_items) = (0, 0);
    for _ in 0..5 {
        let before = store.items_read();
        let t = Instant::now();
        let snap = analytics_shared::query::period::app_health_at(store, tenant, at, now, &cfg.retention).await.unwrap();
        fives.push(t.elapsed());
        fives_items = store.items_read() - before;
        let before = store.items_read();
        let t = Instant::now();
        let pieces = analytics_shared::query::planner::read_pieces(store, tenant, range, &[midnight], now, &cfg.retention).await.unwrap();
        raw.push(t.elapsed());
        raw_items = store.items_read() - before;
        let totals = analytics_shared::query::period::total(&pieces).health_totals();
        assert_eq!(totals.api_requests.round(), snap.requests_24h.round(), "the same requests either way");
    }
    (fives, fives_items, raw, raw_items)
}

/// One line of a health read's figures: from the fives, and raw.
fn report(what: &str, k: u64, fives: &[Duration], fives_items: u64, raw: &[Duration], raw_items: u64) {
    println!(
        "{k} events in the {what}: from the fives {fives_items} items, {:.1} ms; read raw instead: {raw_items} items, {:.1} ms (medians of 5)",
        median(fives.to_vec()).as_secs_f64() * 1e3,
        median(raw.to_vec()).as_secs_f64() * 1e3
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let (bench, sizes) = integration_tests::bench_sizes();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        for n in sizes {
            let (client, cfg) = fresh_table().await;
            let store = Table::new(client.clone(), cfg.store.clone());
            let now = Utc::now();
            // The smoke test spreads its events over a week, so its roll-up stays quick.
            let start = now.duration_trunc(chrono::Duration::days(1)).unwrap() - chrono::Duration::days(if bench { 89 } else { 6 });
            let span = (now - start).num_seconds() as u64;

            let t = Instant::now();
            seed_world(&client, &cfg, "bench", n, start, span).await;
            // The current hour as full as an average hour: what the dashboard
            // costs in the hour's last minute, whenever this runs.
            let hour = analytics_shared::time::hour_start(now);
            let so_far = (now - hour).num_seconds().max(1) as u64;
            let topping = (n as f64 * (3600 - so_far) as f64 / span as f64) as u64;
            if bench && topping > 0 {
                seed_world(&client, &cfg, "bench", topping, hour, so_far).await;
            }
            let seeded = t.elapsed();
            let t = Instant::now();
            let summary =
                analytics_shared::jobs::rollup::roll_up_tenant(&store, "bench", Utc::now(), &cfg.retention, usize::MAX).await.unwrap();
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
                app.store.documents().invalidate_cache("bench").await.unwrap();
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
            // A route that shows only the period reads only the period.
            let (_, read_categories, a) = get("/categories?period=7d", &admin).await;
            assert!(a.body["categories"].is_array());
            let (_, read_metrics, _) = get("/metrics?period=7d", &admin).await;
            println!(
                "{n} events: /categories?period=7d reads {read_categories} items, /metrics?period=7d (with the kept history) {read_metrics}"
            );
            // Where a computed dashboard's time goes: today so far (stored
            // hours and the current hour, made from its deltas), and the
            // current hour alone.
            for (what, from) in [
                ("today", analytics_shared::time::day_start(Utc::now())),
                ("the current hour", analytics_shared::time::hour_start(Utc::now())),
            ] {
                let mut times = vec![];
                let before = app.store.items_read();
                for _ in 0..rounds {
                    let now = Utc::now();
                    let range = analytics_shared::query::period::DateRange { from, to: now };
                    let t = Instant::now();
                    let pieces = analytics_shared::query::planner::read_pieces_of(
                        &app.store,
                        "bench",
                        range,
                        &[],
                        analytics_shared::store::rollups::DayPart::Dashboard,
                        now,
                        &cfg.retention,
                    )
                    .await
                    .unwrap();
                    times.push(t.elapsed());
                    assert!(!pieces.is_empty());
                }
                println!(
                    "{n} events: reading {what}: {} items, {:.1} ms (median of {rounds})",
                    (app.store.items_read() - before) / rounds as u64,
                    median(times).as_secs_f64() * 1e3
                );
            }
            // The current hour read raw instead, as before the hour deltas.
            let now = Utc::now();
            let hour = analytics_shared::time::hour_start(now);
            let ask = analytics_shared::store::hours::HourAsk { hour, from: hour, to: now, stored: None };
            let before = app.store.items_read();
            let t = Instant::now();
            app.store.rollups().hours_figures("bench", &[ask], now, &cfg.retention, false).await.unwrap();
            println!(
                "{n} events: the current hour read raw instead: {} items, {:.1} ms",
                app.store.items_read() - before,
                t.elapsed().as_secs_f64() * 1e3
            );
            // The health snapshot's last 24 hours at the job's five minutes:
            // the hour they start in from its five-minute figures, and read
            // raw instead (as before them).
            let now = Utc::now();
            let at = now.duration_trunc(chrono::Duration::minutes(5)).unwrap();
            let (fives, fives_items, raw, raw_items) = snapshot_both(&app.store, "bench", at, now, &cfg).await;
            report(&format!("world, the health snapshot at {}", at.format("%H:%M")), n, &fives, fives_items, &raw, raw_items);
            // Every period, computed, reading the stored windows; then again
            // with the windows gone, so each day's dashboard part is read;
            // then with the parts gone, so each day is read whole (as before
            // either existed): the same world, one run.
            for how in ["the stored windows", "the days' dashboard parts", "whole days"] {
                let gone = match how {
                    "the days' dashboard parts" => Some(delete_partition(&client, &cfg.store.table, "T#bench#R#window").await),
                    "whole days" => Some(delete_partition(&client, &cfg.store.table, "T#bench#R#day-dashboard").await),
                    _ => None,
                };
                if let Some((items, bytes)) = gone {
                    println!("{n} events: deleted what was read before: {items} items, {:.1} KB", bytes as f64 / 1024.0);
                }
                for path in ["/dashboard?period=7d", "/dashboard?period=30d", "/dashboard?period=90d", "/dashboard?period=365d"] {
                    let (mut times, mut read) = (vec![], 0);
                    for _ in 0..rounds {
                        app.store.documents().invalidate_cache("bench").await.unwrap();
                        let (took, r, a) = get(path, &admin).await;
                        assert_eq!(a.headers["x-cache"], "miss");
                        times.push(took);
                        read = r;
                    }
                    println!(
                        "{n} events: {path} computed from {how}: {read} items, {:.1} ms (median of {rounds})",
                        median(times).as_secs_f64() * 1e3
                    );
                }
            }
            client.delete_table().table_name(&cfg.store.table).send().await.unwrap();
        }
        // `-- --health-hour-events N`: N events in the hour the health
        // snapshot's last 24 hours start in (35 minutes of it in them):
        // what one snapshot reads from its fives, and read raw instead.
        let health: Option<u64> = std::env::args().skip_while(|a| a != "--health-hour-events").nth(1).map(|n| n.parse().expect("a number"));
        if let Some(k) = health {
            let (client, cfg) = fresh_table().await;
            let store = Table::new(client.clone(), cfg.store.clone());
            let now = Utc::now();
            let at = analytics_shared::time::hour_start(now) - chrono::Duration::minutes(35);
            let edge = analytics_shared::time::hour_start(at - chrono::Duration::hours(24));
            seed_world(&client, &cfg, "health", k, edge, 3600).await;
            analytics_shared::jobs::rollup::roll_up_tenant(&store, "health", now, &cfg.retention, usize::MAX).await.unwrap();
            let (fives, fives_items, raw, raw_items) = snapshot_both(&store, "health", at, now, &cfg).await;
            report("hour the last 24 hours start in, the health snapshot", k, &fives, fives_items, &raw, raw_items);
            client.delete_table().table_name(&cfg.store.table).send().await.unwrap();
        }
        // `-- --alert-window-events N`: N events in the health job's
        // 15-minute alert window (ending at the last five minutes before
        // now): what its read costs from the deltas' fives, and read raw.
        let alert: Option<u64> = std::env::args().skip_while(|a| a != "--alert-window-events").nth(1).map(|n| n.parse().expect("a number"));
        if let Some(k) = alert {
            let (client, cfg) = fresh_table().await;
            let store = Table::new(client.clone(), cfg.store.clone());
            let now = Utc::now();
            let end = chrono::DateTime::from_timestamp(now.timestamp() - now.timestamp() % 300, 0).unwrap();
            let start = end - chrono::Duration::minutes(15);
            seed_world(&client, &cfg, "alert", k, start, 900).await;
            let (mut fives, mut raw) = (vec![], vec![]);
            let (mut fives_items, mut raw_items) = (0, 0);
            // Round 0 reads the requests' deltas; then the hours are
            // compacted, as ingest does once in 64 requests, after the
            // window's end.
            for round in 0..10 {
                if round == 5 {
                    report("alert window, deltas", k, &fives, fives_items, &raw, raw_items);
                    (fives, raw) = (vec![], vec![]);
                    let mut hour = analytics_shared::time::hour_start(start);
                    while hour < end {
                        store.deltas().compact("alert", &analytics_shared::time::hour_label(hour)).await.unwrap();
                        hour += chrono::Duration::hours(1);
                    }
                }
                let now = Utc::now();
                let (mut from_fives, mut read_raw) =
                    (analytics_shared::rollup::Rollup::default(), analytics_shared::rollup::Rollup::default());
                let before = store.items_read();
                let t = Instant::now();
                let mut hour = analytics_shared::time::hour_start(start);
                while hour < end {
                    let (a, b) = (start.max(hour), end.min(hour + chrono::Duration::hours(1)));
                    let five = analytics_shared::rollup::five_of(a);
                    match store.deltas().recent_figures("alert", hour, five, b, now).await.unwrap() {
                        Some((made, _)) => from_fives.merge(&made),
                        None => {
                            let range = analytics_shared::query::period::DateRange { from: a, to: b };
                            let pieces = analytics_shared::query::planner::read_pieces(&store, "alert", range, &[], now, &cfg.retention)
                                .await
                                .unwrap();
                            println!("{k} events in the alert window: the fives of {a} to {b} cannot say (read raw)");
                            from_fives.merge(&analytics_shared::query::period::total(&pieces));
                        }
                    }
                    hour += chrono::Duration::hours(1);
                }
                fives.push(t.elapsed());
                fives_items = store.items_read() - before;
                let before = store.items_read();
                let t = Instant::now();
                let range = analytics_shared::query::period::DateRange { from: start, to: end };
                let pieces = analytics_shared::query::planner::read_pieces(&store, "alert", range, &[], now, &cfg.retention).await.unwrap();
                raw.push(t.elapsed());
                raw_items = store.items_read() - before;
                read_raw.merge(&analytics_shared::query::period::total(&pieces));
                let (x, y) = (from_fives.health_totals(), read_raw.health_totals());
                assert_eq!(
                    (x.api_requests.round(), x.errors.round(), x.failed_logins),
                    (y.api_requests.round(), y.errors.round(), y.failed_logins),
                    "the same window either way"
                );
            }
            report("alert window, compacted", k, &fives, fives_items, &raw, raw_items);
            // The health snapshot at the window's end, compacted after it:
            // its live hour from the fives, and read raw.
            let (fives, fives_items, raw, raw_items) = snapshot_both(&store, "alert", end, end, &cfg).await;
            report("health snapshot, compacted", k, &fives, fives_items, &raw, raw_items);
            client.delete_table().table_name(&cfg.store.table).send().await.unwrap();
        }
        // `-- --current-hour-events N`: N events within the current hour,
        // read from its deltas: what one computed dashboard costs then.
        let hot: Option<u64> = std::env::args().skip_while(|a| a != "--current-hour-events").nth(1).map(|n| n.parse().expect("a number"));
        if let Some(k) = hot {
            let (client, cfg) = fresh_table().await;
            let now = Utc::now();
            let hour = analytics_shared::time::hour_start(now);
            let t = Instant::now();
            seed_world(&client, &cfg, "hot", k, hour, (now - hour).num_seconds().max(1) as u64).await;
            println!("{k} events in the current hour: seeded in {:.1} s", t.elapsed().as_secs_f64());
            let app = query::App::new(cfg.clone(), client.clone()).unwrap();
            let admin = token("boss", Some("hot"), &["admin"], &[]);
            // The seed left one delta per 5,000 events: the first reads
            // compact them (99 at a time), then every read costs the same.
            for round in 1..=4 {
                for path in ["/dashboard?period=7d", "/categories?period=7d"] {
                    app.store.documents().invalidate_cache("hot").await.unwrap();
                    let req = ApiEvent::get(&format!("/api/v1/analytics{path}")).bearer(&admin).into_request();
                    let read = app.store.items_read();
                    let t = Instant::now();
                    let a = Answer::from(app.handle(req).await);
                    println!(
                        "{k} events in the current hour, read {round}: {path} computed: status {}, {} items read, {:.0} ms{}",
                        a.status,
                        app.store.items_read() - read,
                        t.elapsed().as_secs_f64() * 1e3,
                        if a.status == 200 { String::new() } else { format!(" ({})", a.body) }
                    );
                }
            }
            // The same hour read raw, as every read did before the deltas.
            let now = Utc::now();
            let ask = analytics_shared::store::hours::HourAsk { hour, from: hour, to: now, stored: None };
            let read = app.store.items_read();
            let t = Instant::now();
            let raw = app.store.rollups().hours_figures("hot", &[ask], now, &cfg.retention, false).await;
            println!(
                "{k} events in the current hour: the hour read raw instead: {} items, {:.0} ms{}",
                app.store.items_read() - read,
                t.elapsed().as_secs_f64() * 1e3,
                raw.err().map(|e| format!(", then failed: {e}")).unwrap_or_default()
            );
            // DynamoDB Local may still be busy with the reads it was asked
            // for: the table goes with the process if not now.
            if let Err(e) = client.delete_table().table_name(&cfg.store.table).send().await {
                println!("the table {} stays: {e}", cfg.store.table);
            }
        }
    });
}
