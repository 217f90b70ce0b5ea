//! Ingest's write (a conditional `PutItem` of the event's identity, then
//! one of its item at the corrected time) against `BatchWriteItem` of the
//! items alone (25 a call, no condition), on DynamoDB Local: the price of
//! telling a resend apart whatever its sender's clock.
//!
//! cargo bench -p integration-tests --bench write_strategies

use std::time::Instant;

use analytics_shared::config::Retention;
use analytics_shared::store::Table;
use analytics_shared::store::batch::batch_put;
use analytics_shared::store::events::{EventWrite, event_write, writer_id};
use analytics_shared::time::receive_time;
use analytics_shared::validate::{Context, validate_event};
use integration_tests::fresh_table;
use serde_json::json;

fn writes(prefix: &str, n: usize) -> Vec<EventWrite> {
    let now = receive_time();
    let ctx = Context { received_at: now, sent_at: None, retention: Retention::default() };
    (0..n)
        .map(|i| {
            let raw = json!({"event_id": format!("{prefix}-{i}"), "kind": "activity", "user_id": format!("u-{}", i % 40), "action": "view_dashboard",
                             "occurred_at": (now - chrono::Duration::seconds(i as i64)).to_rfc3339()});
            event_write("bench", validate_event(&raw.to_string(), &ctx).unwrap(), 8, &Retention::default())
        })
        .collect()
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = if quick { 100 } else { 2000 };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, cfg) = fresh_table().await;
        let store = Table::new(client.clone(), cfg.store.clone());
        for round in 0..if quick { 1 } else { 3 } {
            let batch = writes(&format!("c{round}"), n);
            let t = Instant::now();
            for chunk in batch.chunks(500) {
                let hours = chunk.iter().map(|w| analytics_shared::time::hour_label(w.placed_at)).collect();
                let out = store.events().put("bench", chunk.to_vec(), &writer_id(), &hours, Some(chrono::Utc::now())).await.unwrap();
                assert_eq!(out.len(), chunk.len());
            }
            let conditional = t.elapsed();
            let batch: Vec<_> = writes(&format!("b{round}"), n).into_iter().map(|w| w.item.into_item()).collect();
            let t = Instant::now();
            for chunk in batch.chunks(500) {
                let deadline = tokio::time::Instant::now() + cfg.store.deadline;
                batch_put(&client, &cfg.store.table, chunk.to_vec(), 8, cfg.store.max_attempts, deadline).await.unwrap();
            }
            let batched = t.elapsed();
            println!(
                "{n} events: identity + item, conditional PutItems x{} in flight: {:>7.0} events/s | BatchWriteItem of the items, 25 x 8 in flight: {:>7.0} events/s",
                cfg.store.write_concurrency,
                n as f64 / conditional.as_secs_f64(),
                n as f64 / batched.as_secs_f64()
            );
        }
    });
}
