//! What a million events of the realistic mix cost in AWS, by batch size:
//! the figures measured here (write units per event from the items ingest
//! builds, the handler's CPU time per batch, body bytes per request) put
//! into the published prices. BENCHMARKS.md "Cost per million events" has
//! the formula and the prices' date.
//!
//! cargo bench -p integration-tests --bench ingest_cost      # needs the local stack

use std::time::Instant;

use analytics_shared::config::Retention;
use std::collections::BTreeMap;

use analytics_shared::ingest::prepare;
use analytics_shared::store::deltas::request_write_units;
use analytics_shared::store::events::ItemKey;
use integration_tests::{Answer, ApiEvent, fresh_table, ingest_token, process_cpu_ns};
use serde_json::json;

#[path = "../../shared/benches/support/mixed_batch.rs"]
mod mixed_batch;

/// The allocator the function binaries use, so the CPU time is theirs.
#[global_allocator]
static GLOBAL: analytics_shared::alloc::Allocator = analytics_shared::alloc::Allocator;

/// List prices, us-east-1 (the first tier of each), as of 2026-12-03.
const HTTP_API_PER_MILLION: f64 = 1.00; // per million requests, each metered in 512 KB steps
const HTTP_API_METERED_BYTES: usize = 512 * 1024;
const LAMBDA_PER_MILLION: f64 = 0.20; // per million invocations
const LAMBDA_ARM_PER_GB_S: f64 = 0.000_013_333_4; // arm64, the template's default architecture
const DYNAMODB_PER_MILLION_WRU: f64 = 0.625; // on-demand write request units
/// The ingest function's memory in infra/template.yaml, and the vCPU share
/// Lambda gives it (one vCPU at 1,769 MB, in proportion below).
const MEMORY_MB: f64 = 256.0;
const VCPU_AT_MB: f64 = 1769.0;
/// Deltas a compaction folds on average (ingest compacts once in 64
/// requests, `store::deltas`).
const COMPACTION_FOLDS: usize = 64;
/// A conditional PutItem's round trip inside a region: DynamoDB's
/// single-digit milliseconds, taken at 5 (an assumption, not measured here).
const PUT_RTT_MS: f64 = 5.0;

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    // `cargo test --all-targets` runs this once, small, as a smoke test.
    let events_per_size: usize = if measuring { 5_000 } else { 20 };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, cfg) = fresh_table().await;
        let concurrency = cfg.store.write_concurrency as f64;
        let app = ingest::App::new(cfg, client);
        let token = ingest_token("cost");
        let at = chrono::Utc::now() - chrono::Duration::minutes(2);
        let body = |prefix: &str, range: std::ops::Range<usize>| json!({"events": mixed_batch::events(at, prefix, range)}).to_string();
        let warm = Answer::from(app.handle(ApiEvent::post("/api/v1/analytics/events", body("warm", 0..100)).bearer(&token).into_request()).await);
        assert_eq!(warm.status, 202, "{}", warm.body);
        println!("| batch | body bytes | API requests per 1M events | WRU per event (of which hour deltas) | handler CPU per batch (local, one core) | wall per batch (local) | Lambda ms per batch at {MEMORY_MB} MB (estimated) | API Gateway | Lambda | DynamoDB | total per 1M events |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for size in [1usize, 10, 100, 500] {
            let batches = events_per_size.div_ceil(size);
            let bodies: Vec<String> = (0..batches).map(|b| body(&format!("cost-{size}"), b * size..(b + 1) * size)).collect();
            let bytes = bodies[0].len();
            let (mut wru, mut events) = (0usize, 0usize);
            // Each request's hour deltas (store::deltas): what it stored
            // per live hour, and the hour's partial they are folded into.
            let now = chrono::Utc::now();
            let mut per_request: Vec<Vec<Vec<(ItemKey, analytics_shared::model::Event)>>> = Vec::new();
            let mut hour_rollup = analytics_shared::rollup::Rollup::default();
            for b in &bodies {
                let p = prepare(b.as_bytes(), "cost", now, &Retention::default(), 8).unwrap();
                wru += p.writes.iter().map(|(_, w)| w.write_units()).sum::<usize>();
                events += p.writes.len();
                let mut hours: BTreeMap<String, Vec<_>> = BTreeMap::new();
                for (_, w) in &p.writes {
                    let e = analytics_shared::store::read_event(w.item.to_item()).unwrap();
                    hour_rollup.add(&e);
                    hours.entry(analytics_shared::time::hour_label(w.placed_at)).or_default().push((w.key(), e));
                }
                per_request.push(hours.into_values().collect());
            }
            let partial_bytes = serde_json::to_vec(&hour_rollup).unwrap().len();
            let delta_wru: f64 = per_request
                .iter()
                .flatten()
                .map(|stored| request_write_units(stored, now, partial_bytes, COMPACTION_FOLDS).unwrap())
                .sum::<f64>();
            let (cpu0, wall0) = (process_cpu_ns(), Instant::now());
            for b in bodies {
                let a = Answer::from(app.handle(ApiEvent::post("/api/v1/analytics/events", b).bearer(&token).into_request()).await);
                assert_eq!(a.status, 202, "{}", a.body);
                assert_eq!(a.body["accepted"], size);
            }
            let cpu_ms = (process_cpu_ns() - cpu0) as f64 / 1e6 / batches as f64;
            let wall_ms = wall0.elapsed().as_secs_f64() * 1e3 / batches as f64;
            // The CPU work stretched to the function's vCPU share, plus the
            // two rounds of conditional writes (identities, then items), each
            // `ceil(size / concurrency)` round trips long, and the hour
            // delta's two (pending, confirmed); billed by the ms.
            let lambda_ms = (cpu_ms * VCPU_AT_MB / MEMORY_MB + (2.0 * (size as f64 / concurrency).ceil() + 2.0) * PUT_RTT_MS).ceil();
            let wru_per_event = (wru as f64 + delta_wru) / events as f64;
            let delta_per_event = delta_wru / events as f64;
            let invocations = 1e6 / size as f64;
            let api_requests = invocations * bytes.div_ceil(HTTP_API_METERED_BYTES) as f64;
            let api = api_requests / 1e6 * HTTP_API_PER_MILLION;
            let lambda = invocations / 1e6 * LAMBDA_PER_MILLION + invocations * lambda_ms / 1e3 * MEMORY_MB / 1024.0 * LAMBDA_ARM_PER_GB_S;
            let dynamodb = wru_per_event * DYNAMODB_PER_MILLION_WRU;
            println!(
                "| {size} | {bytes} | {api_requests:.0} | {wru_per_event:.2} ({delta_per_event:.2}) | {cpu_ms:.2} ms | {wall_ms:.1} ms | {lambda_ms:.0} | ${api:.3} | ${lambda:.3} | ${dynamodb:.3} | **${:.2}** |",
                api + lambda + dynamodb
            );
        }
    });
}
