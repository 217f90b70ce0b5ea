//! Events per second through validation, sanitizing and item building: the
//! CPU work ingest does for every event before any network call.
//!
//! cargo bench -p analytics-shared --bench ingest_pipeline

use analytics_shared::config::Retention;
use analytics_shared::ingest::prepare;
use analytics_shared::store::events::{PutOutcome, event_write};
use analytics_shared::time::parse_timestamp;
use analytics_shared::validate::{Context, validate_event};
use chrono::{DateTime, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use serde_json::{Value, json};

/// The allocator the function binaries use, so the figures are theirs.
#[global_allocator]
static GLOBAL: analytics_shared::alloc::Allocator = analytics_shared::alloc::Allocator;

#[path = "support/mixed_batch.rs"]
mod mixed_batch;

/// The realistic mixed batch of 500, three minutes before `now`.
fn batch(now: &str) -> Value {
    let at = parse_timestamp(now).unwrap() - chrono::Duration::minutes(3);
    json!({"sent_at": now, "events": mixed_batch::events(at, "01JD", 0..500)})
}

#[derive(serde::Deserialize)]
struct SplitOnly<'a> {
    #[serde(borrow)]
    events: Vec<&'a serde_json::value::RawValue>,
}

fn pipeline(c: &mut Criterion) {
    let now_s = NOW;
    let now = parse_timestamp(now_s).unwrap();
    let body = serde_json::to_vec(&batch(now_s)).unwrap();
    let retention = Retention::default();
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(500));
    g.bench_function("prepare_500_mixed (parse+validate+sanitize+item)", |b| {
        // The items are dropped after their network write in the handler, so
        // their deallocation is kept out of the measurement.
        b.iter_with_large_drop(|| {
            let p = prepare(std::hint::black_box(&body), "tenant-1", now, &retention, 8).unwrap();
            assert_eq!(p.writes.len(), 500);
            p
        })
    });
    g.bench_function("split_only_500 (batch envelope, events left raw)", |b| {
        b.iter(|| serde_json::from_slice::<SplitOnly>(std::hint::black_box(&body)).unwrap().events.len())
    });
    let raws: Vec<String> = batch(now_s)["events"].as_array().unwrap().iter().map(Value::to_string).collect();
    let ctx = Context { received_at: now, sent_at: None, retention };
    g.bench_function("validate_only_500", |b| b.iter(|| raws.iter().map(|r| validate_event(r, &ctx).unwrap()).collect::<Vec<_>>()));
    let events: Vec<_> = raws.iter().map(|r| validate_event(r, &ctx).unwrap()).collect();
    g.bench_function("item_build_only_500", |b| {
        b.iter_batched(
            || events.clone(),
            |evs| evs.into_iter().map(|e| event_write("tenant-1", e, 8, &retention)).collect::<Vec<_>>(),
            BatchSize::LargeInput,
        )
    });
    // What a raw read pays per item once the SDK has parsed it: the
    // roll-up, the explorer and the feeds read events back this way.
    let items: Vec<_> =
        prepare(&body, "tenant-1", now, &retention, 8).unwrap().writes.into_iter().map(|(_, w)| w.item.into_item()).collect();
    g.bench_function("read_back_500 (serde_dynamo item -> Event)", |b| {
        b.iter_batched(
            || items.clone(),
            |items| items.into_iter().map(|i| serde_dynamo::from_item::<_, analytics_shared::model::Event>(i).unwrap()).collect::<Vec<_>>(),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("read_back_500 (store::read_event, by hand)", |b| {
        b.iter_batched(
            || items.clone(),
            |items| items.into_iter().map(|i| analytics_shared::store::read_event(i).unwrap()).collect::<Vec<_>>(),
            BatchSize::LargeInput,
        )
    });
    // As the roll-up reads them: without the free text it never asks for.
    let projected: Vec<_> = items
        .iter()
        .map(|i| {
            let mut i = i.clone();
            for a in ["metadata", "user_agent", "query_params", "description", "request_size", "response_size", "report_id"] {
                i.remove(a);
            }
            i
        })
        .collect();
    for (name, serde) in [("read_back_500_projected (serde_dynamo)", true), ("read_back_500_projected (by hand)", false)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || projected.clone(),
                |items| {
                    items
                        .into_iter()
                        .map(|i| {
                            if serde {
                                serde_dynamo::from_item::<_, analytics_shared::model::Event>(i).unwrap()
                            } else {
                                analytics_shared::store::read_event(i).unwrap()
                            }
                        })
                        .collect::<Vec<_>>()
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(5));
    targets = pipeline
}
/// Write units of the mixed batch, per kind and on average: what DynamoDB
/// bills for storing it (identity, item, index copies).
fn write_units() {
    let now_s = NOW;
    let body = serde_json::to_vec(&batch(now_s)).unwrap();
    let p = prepare(&body, "tenant-1", parse_timestamp(now_s).unwrap(), &Retention::default(), 8).unwrap();
    let mut per_kind: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for (_, w) in &p.writes {
        let kind = w.item["kind"].as_s().unwrap().clone();
        let e = per_kind.entry(kind).or_default();
        e.0 += 1;
        e.1 += w.write_units();
    }
    let total: usize = per_kind.values().map(|(_, u)| u).sum();
    for (kind, (n, units)) in &per_kind {
        println!("write units: {kind}: {:.2} per event ({n} events)", *units as f64 / *n as f64);
    }
    println!("write units: the mixed batch: {:.2} per event", total as f64 / p.writes.len() as f64);
}

/// `INGEST_PIPELINE_BATCHES=N` runs `prepare` on N batches and exits, for an
/// instruction count that a shared machine cannot disturb:
/// `INGEST_PIPELINE_BATCHES=20 valgrind --tool=callgrind <bench binary>`.
/// With `INGEST_PIPELINE_MALFORMED=1` the batch's last event is refused, so
/// the one-pass read gives up at the end and the batch is read the usual way.
fn main() {
    if let Some(n) = std::env::var("INGEST_PIPELINE_WRITES").ok().and_then(|v| v.parse::<usize>().ok()) {
        return write_path(n);
    }
    if let Some(n) = std::env::var("INGEST_PIPELINE_BATCHES").ok().and_then(|v| v.parse::<usize>().ok()) {
        let now_s = NOW;
        let mut batch = batch(now_s);
        if std::env::var_os("INGEST_PIPELINE_MALFORMED").is_some() {
            batch["events"][499]["status_code"] = json!("200");
        }
        let body = serde_json::to_vec(&batch).unwrap();
        let (now, retention) = (parse_timestamp(now_s).unwrap(), Retention::default());
        let events: usize =
            (0..n).map(|_| prepare(std::hint::black_box(&body), "tenant-1", now, &retention, 8).unwrap().writes.len()).sum();
        println!("prepared {events} events");
        return;
    }
    write_units();
    benches();
    write_benches();
    Criterion::default().configure_from_args().final_summary();
}

/// A store whose HTTP client answers every call `200 {}` at once: what the
/// SDK does for a write (building, serializing, signing the request and
/// reading its answer) without a network.
fn answering_table() -> analytics_shared::store::Table {
    use analytics_shared::config::StoreConfig;
    use analytics_shared::store::{Table, behavior_version, client_config};
    use aws_sdk_dynamodb::config::{Credentials, Region, SharedCredentialsProvider};
    let http = aws_smithy_http_client::test_util::infallible_client_fn(|_req| {
        http::Response::builder().status(200).header("content-type", "application/x-amz-json-1.0").body("{}").unwrap()
    });
    let shared = aws_config::SdkConfig::builder()
        .behavior_version(behavior_version())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new("a", "b", None, None, "bench")))
        .endpoint_url("http://localhost:8000")
        .http_client(http)
        .sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep().unwrap())
        .build();
    let cfg = StoreConfig { table: "analytics".into(), ..StoreConfig::default() };
    Table::new(aws_sdk_dynamodb::Client::from_conf(client_config(&shared, &cfg)), cfg)
}

/// The batch's `sent_at` and the time it is received, in every measurement.
const NOW: &str = "2026-11-21T10:00:00Z";

/// `prepare` and then the store's writes of one batch, as the handler runs
/// them after marking the hours: events stored, every one of them, or the
/// figures would time another path (a refusal, a duplicate).
fn prepare_and_write(table: &analytics_shared::store::Table, rt: &tokio::runtime::Runtime, body: &[u8], now: DateTime<Utc>) -> usize {
    let p = prepare(std::hint::black_box(body), "tenant-1", now, &Retention::default(), 8).unwrap();
    let writes: Vec<_> = p.writes.into_iter().map(|(_, w)| w).collect();
    let n = writes.len();
    let outcomes = rt.block_on(table.events().put("tenant-1", writes, "0123456789abcdef", &Default::default(), None)).unwrap();
    assert!(outcomes.len() == n && outcomes.iter().all(|o| *o == PutOutcome::Stored), "every event of the batch is stored");
    n
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The whole CPU path of an accepted event up to the socket, timed: the
/// SDK's share is what `prepare` alone does not show.
fn write_path_bench(c: &mut Criterion) {
    let body = serde_json::to_vec(&batch(NOW)).unwrap();
    let (table, rt, now) = (answering_table(), runtime(), parse_timestamp(NOW).unwrap());
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(500));
    g.bench_function("prepare_and_write_500 (SDK requests answered at once)", |b| b.iter(|| prepare_and_write(&table, &rt, &body, now)));
    g.finish();
}

criterion_group! {
    name = write_benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(10));
    targets = write_path_bench
}

/// `INGEST_PIPELINE_WRITES=N` runs [`prepare_and_write`] on N batches, for
/// callgrind (whose CPU model has no SHA extensions: the signing's SHA-256
/// is counted in software there).
fn write_path(n: usize) {
    let body = serde_json::to_vec(&batch(NOW)).unwrap();
    let (table, rt, now) = (answering_table(), runtime(), parse_timestamp(NOW).unwrap());
    let stored: usize = (0..n).map(|_| prepare_and_write(&table, &rt, &body, now)).sum();
    println!("wrote {stored} events");
}
