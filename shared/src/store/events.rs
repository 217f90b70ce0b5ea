//! Raw events in DynamoDB: item mapping, idempotent writes, reads.

use std::collections::{BTreeSet, HashSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::keys::{self, SINGLE_SK};
use super::retry::Backoff;
use super::table::{GSI1, PK, SK, TTL_ATTRIBUTE};
use super::{Item, StoreError, s};
use crate::config::{Retention, StoreConfig};
use crate::model::Event;
use crate::validate::retention_days;

/// An event as an item: its keys, its expiry and the event itself.
#[derive(Serialize)]
struct EventItemRef<'a> {
    pk: String,
    sk: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<String>,
    expires_at: i64,
    #[serde(flatten)]
    event: &'a Event,
}

/// An event read back, with its storage attributes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StoredEvent {
    pub pk: String,
    pub sk: String,
    #[serde(default)]
    pub gsi1pk: Option<String>,
    #[serde(default)]
    pub gsi2pk: Option<String>,
    pub expires_at: i64,
    #[serde(flatten)]
    pub event: Event,
}

/// The primary key of an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemKey {
    pub pk: String,
    pub sk: String,
}

impl ItemKey {
    fn to_item(&self) -> Item {
        [(PK.to_string(), s(&self.pk)), (SK.to_string(), s(&self.sk))].into()
    }
}

/// The epoch second after which an event is gone: its corrected time plus
/// the retention of its kind.
pub fn expires_at(event: &Event, retention: &Retention) -> i64 {
    (event.occurred_at + Duration::days(i64::from(retention_days(event.kind(), retention)))).timestamp()
}

/// An event ready to be written: its key, the hour it marks dirty, the item.
#[derive(Debug, Clone)]
pub struct EventWrite {
    pub key: ItemKey,
    pub hour: String,
    pub item: Item,
}

/// Maps an event to its item. The key is derived only from the tenant, the
/// sender's `occurred_at` and the `event_id`, so a resent event lands on the
/// same item.
pub fn event_write(tenant: &str, event: &Event, shards: u16, retention: &Retention) -> Result<EventWrite, StoreError> {
    let at = event.placement_time();
    let hour = keys::hour_label(at);
    let key =
        ItemKey { pk: keys::event_pk(tenant, &hour, keys::shard_of(&event.event_id, shards)), sk: keys::event_sk(at, &event.event_id) };
    let row = EventItemRef {
        pk: key.pk.clone(),
        sk: key.sk.clone(),
        gsi1pk: event.user_id.as_deref().map(|u| keys::user_pk(tenant, u)),
        gsi2pk: event.body.index_name().map(|n| keys::name_pk(tenant, event.kind().as_str(), n, at)),
        expires_at: expires_at(event, retention),
        event,
    };
    let item: Item = serde_dynamo::to_item(&row)?;
    Ok(EventWrite { key, hour, item })
}

/// Size of an item as DynamoDB bills it (names plus values, approximately
/// for numbers): each started KB is a write unit, per index written.
pub fn item_size(item: &Item) -> usize {
    fn value_size(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + value_size(v) + 1).sum::<usize>(),
            AttributeValue::L(l) => 3 + l.iter().map(|v| value_size(v) + 1).sum::<usize>(),
            AttributeValue::Ss(ss) => ss.iter().map(String::len).sum(),
            _ => 8,
        }
    }
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// Write units one event costs: one per started KB on the table and on
/// each index the item appears in.
pub fn write_units(item: &Item) -> usize {
    let per_copy = item_size(item).div_ceil(1024).max(1);
    let copies = 1 + usize::from(item.contains_key("gsi1pk")) + usize::from(item.contains_key("gsi2pk"));
    per_copy * copies
}

/// What happened to one event write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Stored,
    /// An item with this key already existed: a resend.
    Duplicate,
}

/// Events in the table.
#[derive(Debug, Clone)]
pub struct EventStore {
    client: Client,
    cfg: StoreConfig,
}

impl EventStore {
    pub fn new(client: Client, cfg: StoreConfig) -> Self {
        Self { client, cfg }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Adds hours to the tenant's dirty set, one update for a whole batch.
    /// Done before the events are written, so an acknowledged event's hour
    /// is always known to the rollup.
    pub async fn mark_dirty(&self, tenant: &str, hours: &BTreeSet<String>) -> Result<(), StoreError> {
        if hours.is_empty() {
            return Ok(());
        }
        self.client
            .update_item()
            .table_name(&self.cfg.table)
            .key(PK, s(keys::dirty_pk(tenant)))
            .key(SK, s(SINGLE_SK))
            .update_expression("ADD hours :h")
            .expression_attribute_values(":h", AttributeValue::Ss(hours.iter().cloned().collect()))
            .send()
            .await
            .map_err(|e| StoreError::unavailable(aws_sdk_dynamodb::Error::from(e)))?;
        Ok(())
    }

    /// The tenant's dirty hours.
    pub async fn dirty_hours(&self, tenant: &str) -> Result<BTreeSet<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.cfg.table)
            .key(PK, s(keys::dirty_pk(tenant)))
            .key(SK, s(SINGLE_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::unavailable(aws_sdk_dynamodb::Error::from(e)))?;
        Ok(out
            .item
            .and_then(|mut i| i.remove("hours"))
            .and_then(|h| h.as_ss().ok().cloned())
            .map(|v| v.into_iter().collect())
            .unwrap_or_default())
    }

    /// Writes each event unless its item exists (`attribute_not_exists(pk)`):
    /// the first write wins and a resend is reported as a duplicate. Writes
    /// run in parallel up to the configured concurrency; throttling and
    /// transient errors are retried by the client; the whole call is bounded
    /// by the deadline. Any write still failing fails the call, and nothing
    /// is reported stored.
    pub async fn put_new(&self, writes: Vec<Item>) -> Result<Vec<PutOutcome>, StoreError> {
        let deadline = Instant::now() + self.cfg.deadline;
        let all = futures::stream::iter(writes.into_iter().map(|item| self.put_one(item)))
            .buffered(self.cfg.write_concurrency)
            .collect::<Vec<_>>();
        match tokio::time::timeout_at(deadline, all).await {
            Ok(results) => results.into_iter().collect(),
            Err(_) => Err(StoreError::unavailable("the write deadline passed")),
        }
    }

    async fn put_one(&self, item: Item) -> Result<PutOutcome, StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.cfg.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(PutOutcome::Stored),
            Err(SdkError::ServiceError(e)) if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) => {
                Ok(PutOutcome::Duplicate)
            }
            Err(e) => Err(StoreError::unavailable(aws_sdk_dynamodb::Error::from(e))),
        }
    }

    /// Which of the keys exist already (keys only, strongly consistent):
    /// lets a dry run report duplicates exactly as a real write would.
    pub async fn existing(&self, keys: &[ItemKey]) -> Result<HashSet<ItemKey>, StoreError> {
        let deadline = Instant::now() + self.cfg.deadline;
        let mut found = HashSet::new();
        for chunk in keys.chunks(100) {
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(ItemKey::to_item).collect()))
                .projection_expression("pk, sk")
                .consistent_read(true)
                .build()
                .map_err(StoreError::unavailable)?;
            let mut backoff = Backoff::new(self.cfg.max_attempts, deadline);
            loop {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.cfg.table, request)
                    .send()
                    .await
                    .map_err(|e| StoreError::unavailable(aws_sdk_dynamodb::Error::from(e)))?;
                for item in out.responses.and_then(|mut r| r.remove(&self.cfg.table)).unwrap_or_default() {
                    if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) = (item.get(PK), item.get(SK)) {
                        found.insert(ItemKey { pk: pk.clone(), sk: sk.clone() });
                    }
                }
                match out.unprocessed_keys.and_then(|mut u| u.remove(&self.cfg.table)) {
                    Some(left) if !left.keys.is_empty() => {
                        request = left;
                        if !backoff.wait().await {
                            return Err(StoreError::unavailable("keys still unprocessed after retries"));
                        }
                    }
                    _ => break,
                }
            }
        }
        Ok(found)
    }

    /// One event by key, unless it has expired.
    pub async fn get(&self, key: &ItemKey, now: DateTime<Utc>) -> Result<Option<StoredEvent>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.cfg.table)
            .set_key(Some(key.to_item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::unavailable(aws_sdk_dynamodb::Error::from(e)))?;
        match out.item {
            Some(item) => {
                let stored: StoredEvent = serde_dynamo::from_item(item)?;
                Ok((stored.expires_at > now.timestamp()).then_some(stored))
            }
            None => Ok(None),
        }
    }

    /// A user's events, newest first, unexpired (gsi1).
    pub async fn user_events(&self, tenant: &str, user_id: &str, now: DateTime<Utc>) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.cfg.table)
                .index_name(GSI1)
                .key_condition_expression("gsi1pk = :p")
                .filter_expression("#ttl > :now")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":p", s(keys::user_pk(tenant, user_id)))
                .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
                .scan_index_forward(false)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::unavailable(aws_sdk_dynamodb::Error::from(e)))?;
            for item in page.items.unwrap_or_default() {
                out.push(serde_dynamo::from_item(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Every unexpired event of one hour, all shards read in parallel.
    pub async fn hour_events(&self, tenant: &str, hour: &str, now: DateTime<Utc>) -> Result<Vec<StoredEvent>, StoreError> {
        let shards =
            futures::future::try_join_all((0..self.cfg.shards).map(|shard| self.partition(keys::event_pk(tenant, hour, shard), now)))
                .await?;
        let mut all: Vec<StoredEvent> = shards.into_iter().flatten().collect();
        all.sort_by(|a, b| a.sk.cmp(&b.sk));
        Ok(all)
    }

    async fn partition(&self, pk: String, now: DateTime<Utc>) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.cfg.table)
                .key_condition_expression("pk = :p")
                .filter_expression("#ttl > :now")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":p", s(&pk))
                .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::unavailable(aws_sdk_dynamodb::Error::from(e)))?;
            for item in page.items.unwrap_or_default() {
                out.push(serde_dynamo::from_item(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{Context, parse_timestamp, validate_event};

    fn event(v: serde_json::Value) -> Event {
        let now = parse_timestamp("2026-11-21T10:00:00Z").unwrap();
        validate_event(&v.to_string(), &Context { received_at: now, sent_at: None, retention: Retention::default() }).unwrap()
    }

    /// The contract's example event: a report outcome, metadata, an IP and a
    /// user agent. It must stay under 1 KB so that it costs one write unit on
    /// the table and one on each index: 3 in all.
    #[test]
    fn a_typical_report_event_costs_at_most_three_write_units() {
        let e = event(serde_json::json!({
            "event_id": "01JDAZ3K7Q9V2M4N6P8R0S2T4V", "kind": "activity", "occurred_at": "2026-11-21T09:59:58Z",
            "user_id": "u-42", "action": "generate_report", "client_id": "c-7", "report_id": "r-9",
            "description": "Generated cost report", "ip_address": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
            "metadata": {"source": "web"},
            "report": {"status": "completed", "processing_time_ms": 8421,
                       "categories": {"cost": 12, "security": 3, "reliability": 1, "operational_excellence": 0, "performance": 4},
                       "impact": {"high": 2, "medium": 9, "low": 9}, "estimated_monthly_savings": 1830.5}
        }));
        let w = event_write("tenant-1", &e, 8, &Retention::default()).unwrap();
        assert!(item_size(&w.item) < 1024, "{} bytes", item_size(&w.item));
        assert_eq!(write_units(&w.item), 3);
    }

    #[test]
    fn api_request_logs_skip_the_name_index_and_cost_one_unit() {
        let e = event(serde_json::json!({"kind": "api_request", "endpoint": "/api/clients/{id}", "method": "GET", "status_code": 200,
            "response_time_ms": 12.5, "query_params": {"page": "2"}, "ip_address": "203.0.113.7"}));
        let w = event_write("tenant-1", &e, 8, &Retention::default()).unwrap();
        assert!(!w.item.contains_key("gsi1pk") && !w.item.contains_key("gsi2pk"));
        assert_eq!(write_units(&w.item), 1);
    }

    #[test]
    fn items_round_trip_through_serde_dynamo() {
        let e = event(serde_json::json!({"kind": "external_call", "service": "gemini", "endpoint": "/v1", "response_time_ms": 900,
            "cost_estimate": 0.0125, "user_id": "u-1", "metadata": {"n": 1, "f": 1.5, "list": ["a", 2], "none": null}}));
        let w = event_write("t", &e, 8, &Retention::default()).unwrap();
        let back: StoredEvent = serde_dynamo::from_item(w.item).unwrap();
        assert_eq!(back.event, e);
        assert_eq!(back.expires_at, (e.occurred_at + Duration::days(90)).timestamp());
        assert_eq!(back.gsi2pk.as_deref(), Some("T#t#A#external_call:gemini#2026-11"));
    }
}
