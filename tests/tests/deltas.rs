//! Hour deltas against DynamoDB Local (`store::deltas`): a live hour made
//! from them answers exactly what its raw events say, through repeats,
//! events placed ahead of their receipt, writers that died mid-request,
//! compactions racing writes and reads; and what a read costs stops
//! growing with the hour's events.

use std::collections::BTreeMap;

use analytics_shared::ingest::{ingest, prepare};
use analytics_shared::rollup::Rollup;
use analytics_shared::store::Table;
use analytics_shared::store::events::ItemKey;
use analytics_shared::store::hours::HourAsk;
use analytics_shared::time::{hour_label, hour_start};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use integration_tests::*;
use serde_json::{Value, json};

const TENANT: &str = "acme";

/// The hour's figures over `[hour, to)` as a raw read at `now` makes them.
async fn raw(store: &Table, hour: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>, cfg: &analytics_shared::Config) -> Rollup {
    let ask = HourAsk { hour, from: hour, to, stored: None };
    store.rollups().hours_figures(TENANT, &[ask], now, &cfg.retention, true).await.unwrap().pop().unwrap().0.rollup
}

async fn from_deltas(
    store: &Table,
    hour: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Rollup, analytics_shared::store::deltas::DeltaRead) {
    store.deltas().figures(TENANT, hour, to, now).await.unwrap().expect("the deltas answer a live hour")
}

/// `[the hour's five minutes `five`, to)` from the deltas' fives, and as a
/// raw read makes it.
async fn recent_and_raw(
    store: &Table,
    hour: DateTime<Utc>,
    five: u8,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    cfg: &analytics_shared::Config,
) -> (Option<Rollup>, Rollup) {
    let made = store.deltas().recent_figures(TENANT, hour, five, to, now).await.unwrap().map(|(r, _)| r.health_part());
    let ask = HourAsk { hour, from: hour + Duration::minutes(5 * i64::from(five)), to, stored: None };
    let raw = store.rollups().hours_figures(TENANT, &[ask], now, &cfg.retention, true).await.unwrap().pop().unwrap().0.rollup;
    (made, raw.health_part())
}

/// Equal rollups, or the fields that differ.
#[track_caller]
fn same(made: &Rollup, truth: &Rollup, what: &str) {
    // Sums of money and milliseconds, added in another order, may differ in
    // their last bit: compared to nine significant digits.
    let (a, b) = (rounded(serde_json::to_value(made).unwrap()), rounded(serde_json::to_value(truth).unwrap()));
    if a != b {
        let diff: Vec<String> = a
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, v)| b.get(k.as_str()) != Some(v))
            .map(|(k, v)| format!("{k}: deltas {} / raw {}", clip(v), clip(&b[k.as_str()])))
            .collect();
        panic!("{what}: {}", diff.join("\n"));
    }
}

fn rounded(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => json!(format!("{:.9e}", n.as_f64().unwrap()).parse::<f64>().unwrap()),
        Value::Array(a) => Value::Array(a.into_iter().map(rounded).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, rounded(v))).collect()),
        v => v,
    }
}

fn clip(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 600 { format!("{}...", &s[..600]) } else { s }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A random event of the world: mostly in `hour` (anywhere in it, so
/// often ahead of its receipt), some in the hour before, a few older
/// (never live: no delta), a few sent with a skewed clock.
fn event(i: u64, rng: &mut Rng, hour: DateTime<Utc>) -> Value {
    let start = match rng.below(10) {
        0..=1 => hour - Duration::hours(1),
        2 => hour - Duration::hours(3),
        _ => hour,
    };
    bench_event(i, rng, start, 3600)
}

async fn post(store: &Table, cfg: &analytics_shared::Config, events: &[Value], received: DateTime<Utc>) {
    let body = json!({ "events": events }).to_string();
    let out = ingest(store, TENANT, body.as_bytes(), false, received, &cfg.retention).await.unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
}

/// A request that wrote its pending delta and some of its items, then died.
async fn die_midway(
    store: &Table,
    client: &aws_sdk_dynamodb::Client,
    cfg: &analytics_shared::Config,
    events: &[Value],
    received: DateTime<Utc>,
) {
    let body = json!({ "events": events }).to_string();
    let p = prepare(body.as_bytes(), TENANT, received, &cfg.retention, cfg.store.shards).unwrap();
    let writer = "dead0000dead0000";
    let mut by_hour: BTreeMap<String, Vec<ItemKey>> = BTreeMap::new();
    for (_, w) in &p.writes {
        if analytics_shared::store::deltas::is_live(hour_start(w.placed_at), received) {
            by_hour.entry(hour_label(w.placed_at)).or_default().push(w.key());
        }
    }
    store.deltas().begin(TENANT, writer, received, &by_hour).await.unwrap();
    let hours = p.writes.iter().map(|(_, w)| hour_label(w.placed_at)).collect();
    store.markers().mark(TENANT, &hours).await.unwrap();
    for (_, w) in p.writes.into_iter().step_by(2) {
        let mut item = w.item.into_item();
        item.insert("w".into(), AttributeValue::S(writer.into()));
        // Conditionally, as a request writes: an event stored already keeps its writer.
        let _ = client
            .put_item()
            .table_name(&cfg.store.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
    }
}

#[tokio::test]
async fn a_live_hour_from_its_deltas_answers_as_its_raw_events() {
    for seed in 1..=3u64 {
        let (client, cfg) = fresh_table().await;
        let store = Table::new(client.clone(), cfg.store.clone());
        let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ seed);
        let hour = hour_start(Utc::now());
        let mut sent: Vec<Value> = Vec::new();
        let mut next = 0;
        for r in 0..24 {
            let received = hour + Duration::minutes(1) + Duration::seconds(30 * r);
            let n = 1 + rng.below(40);
            let mut batch: Vec<Value> = (0..n)
                .map(|_| {
                    next += 1;
                    event(next, &mut rng, hour)
                })
                .collect();
            // Resends of earlier events, some with their sender's clock.
            for _ in 0..rng.below(6) {
                if !sent.is_empty() {
                    batch.push(sent[rng.below(sent.len() as u64) as usize].clone());
                }
            }
            if r == 7 {
                die_midway(&store, &client, &cfg, &batch, received).await;
            } else if rng.below(5) == 0 {
                let body = json!({ "sent_at": ts(received + Duration::seconds(90)), "events": batch }).to_string();
                ingest(&store, TENANT, body.as_bytes(), false, received, &cfg.retention).await.unwrap();
            } else {
                post(&store, &cfg, &batch, received).await;
            }
            sent.extend(batch);
            if rng.below(4) == 0 {
                store.deltas().compact(TENANT, &hour_label(hour)).await.unwrap();
            }
        }
        // A read ending now, while the dead writer's delta is pending and
        // some events sit ahead of the read's end.
        let now = hour + Duration::minutes(20);
        let (made, read) = from_deltas(&store, hour, now, now).await;
        same(&made, &raw(&store, hour, now, now, &cfg).await, &format!("seed {seed}: the current hour up to now"));
        assert!(made.activities() + made.counters().api_requests as u64 > 0, "seed {seed}: the world is not empty");
        assert!(read.resolved >= 1, "seed {seed}: the dead writer's delta was read back");
        // The alert window's part of the hour, from any five minutes on.
        for five in [1, 2, 3] {
            let (made, truth) = recent_and_raw(&store, hour, five, now, now, &cfg).await;
            same(&made.expect("the fives answer"), &truth, &format!("seed {seed}: from five {five} up to now"));
        }
        // To five minutes before now: every delta counts, received before
        // or after the read's end, as the raw read at now counts it.
        for (five, to) in [(0, 10), (1, 10), (2, 15)] {
            let (made, truth) = recent_and_raw(&store, hour, five, hour + Duration::minutes(to), now, &cfg).await;
            same(&made.expect("the fives answer"), &truth, &format!("seed {seed}: fives {five} to minute {to}"));
        }
        let before = hour - Duration::hours(1);
        assert_eq!(
            from_deltas(&store, before, hour, now).await.0,
            raw(&store, before, hour, now, &cfg).await,
            "seed {seed}: the hour before"
        );
        // Once the dead writer's delta is stale a reader confirms it, and
        // the answer stays the same.
        let later = hour + Duration::minutes(50);
        let first = from_deltas(&store, hour, later, later).await;
        same(&first.0, &raw(&store, hour, later, later, &cfg).await, &format!("seed {seed}: after the stale delta is settled"));
        assert!(first.1.resolved >= 1);
        let second = from_deltas(&store, hour, later, later).await;
        assert_eq!((second.0, second.1.resolved), (first.0, 0), "seed {seed}: settled once, read as done");
        store.deltas().compact(TENANT, &hour_label(hour)).await.unwrap();
        // A partial without fives (dropped past 96 KB, or written before
        // them) cannot say; the next compaction starts them again from the
        // first five after its cut (a request received 14 minutes in).
        let end = hour + Duration::hours(1);
        let after = hour + Duration::minutes(70);
        client
            .update_item()
            .table_name(&cfg.store.table)
            .key("pk", AttributeValue::S(analytics_shared::store::keys::deltas_pk(TENANT, &hour_label(hour))))
            .key("sk", AttributeValue::S("#P".into()))
            .update_expression("REMOVE r5, rf")
            .send()
            .await
            .unwrap();
        assert!(recent_and_raw(&store, hour, 3, end, after, &cfg).await.0.is_none(), "seed {seed}: a partial without fives");
        let more: Vec<Value> = (0..8).map(|i| event(200_000 + i, &mut rng, hour)).collect();
        post(&store, &cfg, &more, hour + Duration::minutes(14)).await;
        store.deltas().compact(TENANT, &hour_label(hour)).await.unwrap();
        assert!(recent_and_raw(&store, hour, 2, end, after, &cfg).await.0.is_none(), "seed {seed}: the five of the cut cannot say");
        // The whole hour, after it ended.
        same(
            &from_deltas(&store, hour, end, after).await.0,
            &raw(&store, hour, end, after, &cfg).await,
            &format!("seed {seed}: the whole hour"),
        );
        let (made, truth) = recent_and_raw(&store, hour, 3, end, after, &cfg).await;
        same(&made.expect("the fives answer again"), &truth, &format!("seed {seed}: from five 3 to the end, started again"));
        // A compaction after a request received 95 minutes in (the hour
        // before its receipt's) drops the fives no health read can ask for
        // any more (those ending 75 minutes before it, minute 20): a read of
        // them is left to the raw read.
        let late: Vec<Value> = (0..5).map(|i| event(100_000 + i, &mut rng, hour)).collect();
        post(&store, &cfg, &late, hour + Duration::minutes(95)).await;
        store.deltas().compact(TENANT, &hour_label(hour)).await.unwrap();
        let after = hour + Duration::minutes(100);
        let (gone, _) = recent_and_raw(&store, hour, 3, end, after, &cfg).await;
        assert!(gone.is_none(), "seed {seed}: the fives of minutes 15 to 20 were dropped");
        let (made, truth) = recent_and_raw(&store, hour, 4, end, after, &cfg).await;
        same(&made.expect("the fives answer"), &truth, &format!("seed {seed}: from five 4, after the drop"));
    }
}

#[tokio::test]
async fn compactions_racing_writes_and_reads_lose_and_double_nothing() {
    race(6, 12, false).await;
}

/// The same race where the partial outgrows an item: compactions write
/// their parts, lose, and replace the parts readers are reading.
#[tokio::test]
async fn compactions_racing_over_a_partial_in_parts_lose_and_double_nothing() {
    let parts = race(6, 30, true).await;
    assert!(parts >= 2, "the partial is in parts: {parts}");
}

/// Requests of `writers` concurrent writers, `requests` each, racing three
/// compactors that read as they go; the parts of the partial at the end.
async fn race(n_writers: u64, requests: u64, wide: bool) -> usize {
    let (client, cfg) = fresh_table().await;
    let store = Table::new(client.clone(), cfg.store.clone());
    let hour = hour_start(Utc::now());
    let label = hour_label(hour);
    let writers: Vec<_> = (0..n_writers)
        .map(|s| {
            let (store, cfg) = (store.clone(), cfg.clone());
            tokio::spawn(async move {
                let mut rng = Rng(0x9e37_79b9 ^ (s + 1));
                for r in 0..requests {
                    let batch: Vec<Value> = (0..20)
                        .map(|i| {
                            let i = s * 10_000 + r * 100 + i;
                            if wide { wide_event(i, hour + Duration::minutes(2)) } else { bench_event(i, &mut rng, hour, 600) }
                        })
                        .collect();
                    post(&store, &cfg, &batch, hour + Duration::minutes(11) + Duration::seconds((s * requests + r) as i64)).await;
                }
            })
        })
        .collect();
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let compactors: Vec<_> = (0..3)
        .map(|_| {
            let (store, label, writing) = (store.clone(), label.clone(), writing.clone());
            tokio::spawn(async move {
                let (mut folded, mut seen) = (0, Vec::new());
                // As long as the requests write, however slow the machine.
                while writing.load(std::sync::atomic::Ordering::Relaxed) {
                    folded += usize::from(store.deltas().compact(TENANT, &label).await.unwrap());
                    // Read while the requests write (their clocks say
                    // 11 to 12 minutes past): pendings in flight are read back.
                    let now = hour + Duration::minutes(13);
                    if let Some((r, _)) = store.deltas().figures(TENANT, hour, now, now).await.unwrap() {
                        seen.push(total(&r));
                    }
                }
                (folded, seen)
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    let (mut folded, mut seen) = (0, Vec::new());
    for c in compactors {
        let (f, s) = c.await.unwrap();
        folded += f;
        seen.extend(s);
    }
    assert!(folded > 0, "compactions ran while requests wrote");
    let now = hour + Duration::minutes(30);
    let (made, _) = from_deltas(&store, hour, now, now).await;
    let truth = raw(&store, hour, now, now, &cfg).await;
    same(&made, &truth, "after the race");
    let sent = n_writers * requests * 20;
    assert_eq!(total(&made), sent);
    // No read taken during the race counted an event twice.
    assert!(!seen.is_empty() && seen.iter().all(|n| *n <= sent), "{seen:?}");
    partition(&client, &cfg, hour).await.1.len()
}

/// An API request of its own endpoint and user: an hour of them has as
/// many keys as events.
fn wide_event(i: u64, at: DateTime<Utc>) -> Value {
    json!({"event_id": format!("w-{i}"), "kind": "api_request", "occurred_at": ts(at), "user_id": format!("wide-user-{i}"),
        "endpoint": format!("/wide/{i}/{}", "y".repeat(120)), "method": "GET", "status_code": 200, "response_time_ms": 5 + i % 400})
}

/// The hour's delta partition: its partial (if any), its parts' sort
/// keys, its deltas' sort keys.
async fn partition(
    client: &aws_sdk_dynamodb::Client,
    cfg: &analytics_shared::Config,
    hour: DateTime<Utc>,
) -> (Option<BTreeMap<String, AttributeValue>>, Vec<String>, Vec<String>) {
    let pk = analytics_shared::store::keys::deltas_pk(TENANT, &hour_label(hour));
    let mut out = (None, Vec::new(), Vec::new());
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(&cfg.store.table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", AttributeValue::S(pk.clone()))
            .projection_expression("pk, sk, np, pp, v")
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        for item in page.items.unwrap_or_default() {
            let sk = item["sk"].as_s().unwrap().clone();
            if sk == "#P" {
                out.0 = Some(item.into_iter().collect());
            } else if sk.starts_with("#P#") {
                out.1.push(sk);
            } else {
                out.2.push(sk);
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return out;
        }
    }
}

/// An hour with as many distinct endpoints and users as events: its
/// partial outgrows an item and is kept in parts, read back whole, each
/// compaction's parts replacing the last's; a read still costs a bounded
/// number of items, and parts left by a compaction that died are swept
/// without ever being counted.
#[tokio::test]
async fn a_partial_too_large_for_one_item_is_kept_in_parts() {
    let (client, cfg) = fresh_table().await;
    let store = Table::new(client.clone(), cfg.store.clone());
    let hour = hour_start(Utc::now());
    let label = hour_label(hour);
    let now = hour + Duration::minutes(40);
    let mut costs = Vec::new();
    let mut last_parts: Vec<String> = Vec::new();
    let mut replaced = 0;
    for round in 0..3u64 {
        for r in 0..100u64 {
            let batch: Vec<Value> = (0..24).map(|i| wide_event(round * 100_000 + r * 100 + i, hour + Duration::minutes(3))).collect();
            post(&store, &cfg, &batch, hour + Duration::minutes(5) + Duration::seconds((round * 100 + r) as i64)).await;
        }
        // Declined when ingest's own compactions left too few deltas to
        // share the rewrite of a partial of several parts.
        store.deltas().compact(TENANT, &label).await.unwrap();
        let (head, parts, _) = partition(&client, &cfg, hour).await;
        let head = head.expect("a partial");
        let np: usize = head.get("np").map_or(0, |n| n.as_n().unwrap().parse().unwrap());
        assert_eq!(parts.len(), np, "round {round}: only the partial's own parts are left");
        if parts != last_parts {
            assert!(parts.iter().all(|p| !last_parts.contains(p)), "round {round}: a compaction writes parts of its own");
            replaced += usize::from(!last_parts.is_empty());
        }
        last_parts = parts;
        let before = store.items_read();
        let (made, _) = from_deltas(&store, hour, now, now).await;
        costs.push(store.items_read() - before);
        let truth = raw(&store, hour, now, now, &cfg).await;
        assert_eq!(truth.counters().api_requests as u64, (round + 1) * 2400);
        same(&made, &truth, &format!("round {round}"));
    }
    // Each round's 2,400 endpoints and users weigh about 300 KB.
    assert!(last_parts.len() >= 2, "{} parts for 7,200 events", last_parts.len());
    assert!(replaced >= 1, "a compaction replaced the parts of the last");
    // The partial's parts and head, the deltas a compaction declined to fold
    // yet, and the version read again: not the 7,200 items the raw read takes.
    assert!(costs.iter().all(|c| *c < 120), "items read per read: {costs:?}");

    // A compaction that died after writing its parts (of the version the
    // partial has now: it lost), and one still writing (the next version).
    let (head, parts, _) = partition(&client, &cfg, hour).await;
    let version: i64 = head.unwrap()["v"].as_n().unwrap().parse().unwrap();
    let pk = analytics_shared::store::keys::deltas_pk(TENANT, &hour_label(hour));
    let part = |v: i64| {
        let sk = format!("#P#{v:012}#deadbeef#000");
        let item: std::collections::HashMap<String, AttributeValue> = [
            ("pk".to_owned(), AttributeValue::S(pk.clone())),
            ("sk".to_owned(), AttributeValue::S(sk.clone())),
            ("data".to_owned(), AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(b"{\"users\":{}}".to_vec()))),
        ]
        .into();
        (sk, item)
    };
    let (dead, dead_item) = part(version);
    let (writing, writing_item) = part(version + 1);
    for item in [dead_item, writing_item] {
        client.put_item().table_name(&cfg.store.table).set_item(Some(item)).send().await.unwrap();
    }
    same(&from_deltas(&store, hour, now, now).await.0, &raw(&store, hour, now, now, &cfg).await, "beside parts of no partial");
    // Requests until a compaction folds them (one can take its turn).
    let mut compacted = false;
    for r in 0..200u64 {
        let batch: Vec<Value> = (0..24).map(|i| wide_event(900_000 + r * 100 + i, hour + Duration::minutes(3))).collect();
        post(&store, &cfg, &batch, hour + Duration::minutes(9) + Duration::seconds(r as i64)).await;
        // One of ingest's (one request in 64 compacts), or else ours: not
        // both, as one after ingest's, even with nothing to fold, would
        // sweep the part of ingest's version it does not name.
        let moved = partition(&client, &cfg, hour).await.0.is_some_and(|h| h["v"].as_n().unwrap().parse::<i64>().unwrap() > version);
        let ours = !moved && r % 10 == 9 && store.deltas().compact(TENANT, &label).await.unwrap();
        if ours || moved {
            compacted = true;
            break;
        }
    }
    assert!(compacted, "a compaction ran");
    let (head, after, _) = partition(&client, &cfg, hour).await;
    assert!(!after.contains(&dead), "the dead compaction's part is swept");
    assert!(!parts.iter().any(|p| after.contains(p)), "the replaced parts are gone");
    // Left alone by the compaction that wrote its version (it might have
    // been still writing), swept by any after.
    let now_at: i64 = head.unwrap()["v"].as_n().unwrap().parse().unwrap();
    assert_eq!(after.contains(&writing), now_at == version + 1, "a later version's part, at version {now_at}");
    same(&from_deltas(&store, hour, now, now).await.0, &raw(&store, hour, now, now, &cfg).await, "after the sweep");
}

/// Every event a rollup counts, whatever its kind.
fn total(r: &Rollup) -> u64 {
    r.counters().api_requests as u64 + r.activities() + r.failed_logins() + r.external.values().map(|e| e.calls).sum::<u64>()
}

#[tokio::test]
async fn what_a_read_of_the_current_hour_costs_stops_growing_with_its_events() {
    let (client, cfg) = fresh_table().await;
    let store = Table::new(client.clone(), cfg.store.clone());
    let hour = hour_start(Utc::now());
    let mut rng = Rng(7);
    let mut costs = Vec::new();
    for round in 0..4u64 {
        for r in 0..40u64 {
            let batch: Vec<Value> = (0..50).map(|i| bench_event(round * 100_000 + r * 100 + i, &mut rng, hour, 600)).collect();
            post(&store, &cfg, &batch, hour + Duration::minutes(11) + Duration::seconds((round * 40 + r) as i64)).await;
        }
        let now = hour + Duration::minutes(30);
        // The read that meets many deltas compacts them; the next one pays.
        from_deltas(&store, hour, now, now).await;
        let before = store.items_read();
        let (made, read) = from_deltas(&store, hour, now, now).await;
        costs.push(store.items_read() - before);
        assert!(read.deltas <= analytics_shared::store::deltas::COMPACT_AFTER + 1, "deltas left: {}", read.deltas);
        same(&made, &raw(&store, hour, now, now, &cfg).await, "a bounded read");
    }
    // 2,000 to 8,000 events in the hour, every read under 40 items.
    assert!(costs.iter().all(|c| *c < 40), "items read per read: {costs:?}");
}

#[tokio::test]
async fn an_hour_written_before_deltas_were_kept_is_read_raw() {
    let (client, cfg) = fresh_table().await;
    // A table ingest wrote before it kept deltas: no `since` recorded.
    client
        .delete_item()
        .table_name(&cfg.store.table)
        .key("pk", AttributeValue::S("DELTAS".into()))
        .key("sk", AttributeValue::S("since".into()))
        .send()
        .await
        .unwrap();
    let store = Table::new(client.clone(), cfg.store.clone());
    let hour = hour_start(Utc::now());
    let mut rng = Rng(3);
    let batch: Vec<Value> = (0..30).map(|i| bench_event(i, &mut rng, hour, 600)).collect();
    let received = hour + Duration::minutes(11);
    post(&store, &cfg, &batch, received).await;
    // From now on deltas are kept, trusted for hours from a day and an hour on.
    let since = store.deltas().since().await.unwrap().expect("recorded by the first request keeping deltas");
    assert_eq!(since, (received + Duration::hours(25)).timestamp_millis());
    let now = hour + Duration::minutes(20);
    assert!(store.deltas().figures(TENANT, hour, now, now).await.unwrap().is_none(), "not trusted: read raw");
    let env = QueryEnv::with(client, cfg);
    let a = env.get("/dashboard", &token("admin-1", Some(TENANT), &["admin"], &[]), &[("period", "7d")]).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: integration_tests::props::cases(24), ..Default::default() })]

    /// Any bodies at all (the project's hostile inputs: extreme numbers and
    /// times, odd strings and keys, repeats, any JSON), posted one after
    /// another: the live hours made from their deltas answer as their raw
    /// events do.
    #[test]
    fn any_bodies_leave_deltas_that_answer_as_the_raw_events(bodies in proptest::collection::vec(integration_tests::props::body(), 1..5)) {
        static TABLE: std::sync::OnceLock<(aws_sdk_dynamodb::Client, analytics_shared::Config)> = std::sync::OnceLock::new();
        let (client, cfg) = TABLE.get_or_init(|| runtime().block_on(fresh_table()));
        let store = Table::new(client.clone(), cfg.store.clone());
        let tenant = format!("p{}", uuid::Uuid::now_v7().simple());
        runtime().block_on(async {
            for body in &bodies {
                let received = analytics_shared::time::receive_time();
                // Refused bodies (400) store nothing; anything else is a bug.
                if let Err(e) = ingest(&store, &tenant, body.as_bytes(), false, received, &cfg.retention).await {
                    assert!(e.status().as_u16() < 500, "{body}: {e:?}");
                }
            }
            let now = analytics_shared::time::receive_time() + Duration::milliseconds(1);
            let hour = hour_start(now);
            for (h, to) in [(hour, now), (hour - Duration::hours(1), hour)] {
                let ask = HourAsk { hour: h, from: h, to, stored: None };
                let truth = store.rollups().hours_figures(&tenant, &[ask], now, &cfg.retention, true).await.unwrap().pop().unwrap().0.rollup;
                if let Some((made, _)) = store.deltas().figures(&tenant, h, to, now).await.unwrap() {
                    same(&made, &truth, &format!("{} to {}", hour_label(h), ts(to)));
                } else {
                    // The hour before is trusted until a minute before it stops being live.
                    assert!(now - hour > Duration::minutes(58), "the deltas of a live hour of a table created with them answer");
                }
            }
        });
    }
}

#[tokio::test]
async fn deltas_a_compaction_failed_to_delete_count_once_and_go_with_the_next() {
    let (client, cfg) = fresh_table().await;
    let store = Table::new(client.clone(), cfg.store.clone());
    let hour = hour_start(Utc::now());
    let pk = analytics_shared::store::keys::deltas_pk(TENANT, &hour_label(hour));
    let mut rng = Rng(11);
    // Loaded as a request stores them, without ingest's own random
    // compactions: three done deltas a round.
    let mut post_some = async |round: u64| {
        for r in 0..3u64 {
            let batch: Vec<Value> = (0..10).map(|i| bench_event(round * 1000 + r * 100 + i, &mut rng, hour, 600)).collect();
            let received = hour + Duration::minutes(11) + Duration::seconds((round * 3 + r) as i64);
            let body = json!({ "events": batch }).to_string();
            let p = prepare(body.as_bytes(), TENANT, received, &cfg.retention, cfg.store.shards).unwrap();
            let mut stored: BTreeMap<String, Vec<_>> = BTreeMap::new();
            for (_, w) in p.writes {
                let e = analytics_shared::store::read_event(w.item.to_item()).unwrap();
                stored.entry(hour_label(w.placed_at)).or_default().push((w.key(), e));
                client.put_item().table_name(&cfg.store.table).set_item(Some(w.item.into_item())).send().await.unwrap();
            }
            store.deltas().record(TENANT, &format!("w{round}{r}"), received, &stored).await.unwrap();
        }
    };
    post_some(0).await;
    // The deltas as they are before the compaction deletes them.
    let items = client
        .query()
        .table_name(&cfg.store.table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", AttributeValue::S(pk.clone()))
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    let deltas: Vec<_> = items.into_iter().filter(|i| i["sk"].as_s().unwrap().starts_with("D#")).collect();
    assert_eq!(deltas.len(), 3);
    assert!(store.deltas().compact(TENANT, &hour_label(hour)).await.unwrap());
    // As if the compaction had stopped before its deletes.
    for d in &deltas {
        client.put_item().table_name(&cfg.store.table).set_item(Some(d.clone())).send().await.unwrap();
    }
    let now = hour + Duration::minutes(20);
    let (made, read) = from_deltas(&store, hour, now, now).await;
    same(&made, &raw(&store, hour, now, now, &cfg).await, "the partial's deltas left behind");
    assert_eq!(read.deltas, 0, "the deltas the partial names are skipped");
    post_some(1).await;
    assert!(store.deltas().compact(TENANT, &hour_label(hour)).await.unwrap());
    for d in &deltas {
        let key = [("pk".to_owned(), d["pk"].clone()), ("sk".to_owned(), d["sk"].clone())].into();
        let got = client.get_item().table_name(&cfg.store.table).set_key(Some(key)).consistent_read(true).send().await.unwrap();
        assert!(got.item.is_none(), "the next compaction deleted what the last one left");
    }
    same(&from_deltas(&store, hour, now, now).await.0, &raw(&store, hour, now, now, &cfg).await, "after the next compaction");
}

/// More distinct users in the hour than the rollups keep: the deltas
/// bound them as the raw read does (the least active merged into one).
#[tokio::test]
async fn more_keys_than_the_rollups_keep_answer_as_raw() {
    let (client, mut cfg) = fresh_table().await;
    cfg.store.rollup_max_keys = 5;
    let store = Table::new(client.clone(), cfg.store.clone());
    let hour = hour_start(Utc::now());
    let events: Vec<Value> = (0..20)
        .map(|i| {
            json!({"event_id": format!("e-{i}"), "kind": "activity", "occurred_at": ts(hour + Duration::minutes(1)),
            "user_id": format!("user-{i}"), "action": "view_dashboard"})
        })
        .collect();
    post(&store, &cfg, &events, hour + Duration::minutes(2)).await;
    let now = hour + Duration::minutes(5);
    let (made, _) = from_deltas(&store, hour, now, now).await;
    let truth = raw(&store, hour, now, now, &cfg).await;
    assert!(truth.users.len() <= 6, "{}", truth.users.len());
    same(&made, &truth, "capped");
}

/// A request whose own rollup outgrows an item (300 endpoints of 1.5 KB):
/// stored and acknowledged as before the deltas, its hour read raw.
#[tokio::test]
async fn a_request_whose_rollup_outgrows_an_item_leaves_its_hour_to_raw_reads() {
    let (client, cfg) = fresh_table().await;
    let store = Table::new(client.clone(), cfg.store.clone());
    let hour = hour_start(Utc::now());
    let events: Vec<Value> = (0..300)
        .map(|i| {
            json!({"event_id": format!("e-{i}"), "kind": "api_request", "occurred_at": ts(hour + Duration::minutes(1)),
            "endpoint": format!("/files/{i}/{}", "x".repeat(1500)), "method": "GET", "status_code": 200, "response_time_ms": 12})
        })
        .collect();
    post(&store, &cfg, &events, hour + Duration::minutes(2)).await;
    for later in [5, 30] {
        let now = hour + Duration::minutes(later);
        assert!(store.deltas().figures(TENANT, hour, now, now).await.unwrap().is_none(), "+{later} min: read raw");
        // The planner's read answers all the same, from the raw events.
        let pieces = analytics_shared::query::planner::read_pieces(
            &store,
            TENANT,
            analytics_shared::query::period::DateRange { from: hour, to: now },
            &[],
            now,
            &cfg.retention,
        )
        .await
        .unwrap();
        let total = analytics_shared::query::period::total(&pieces);
        assert_eq!(total.counters().api_requests as u64, 300, "+{later} min");
    }
}
