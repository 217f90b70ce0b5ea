//! Raw events in DynamoDB: item mapping, idempotent writes, reads.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::Deserialize;
use tokio::time::Instant;

use super::item::RECEIVED_AT;
use super::keys;
use super::retry::Backoff;
use super::table::{GSI1, GSI1_PK, GSI2_PK, PK, SK, TTL_ATTRIBUTE};
use super::{Item, StoreError, n, put_once, s};
use crate::config::{Retention, StoreConfig};
use crate::model::{Event, EventBody};
use crate::validate::retention_days;

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

/// An event ready to be written: the item (keys included) and the time it
/// is placed at, whose hour the rollup must recompute.
#[derive(Debug, Clone)]
pub struct EventWrite {
    pub placed_at: DateTime<Utc>,
    pub item: Item,
}

impl EventWrite {
    fn key_part(&self, name: &str) -> &str {
        self.item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).expect("event items always carry their keys")
    }
    pub fn pk(&self) -> &str {
        self.key_part(PK)
    }
    /// Unique within a tenant: it holds the time and the event id, which
    /// also determine the partition.
    pub fn sk(&self) -> &str {
        self.key_part(SK)
    }
    pub fn key(&self) -> ItemKey {
        ItemKey { pk: self.pk().to_owned(), sk: self.sk().to_owned() }
    }
}

/// Maps an event to its item. The key is derived only from the tenant, the
/// sender's `occurred_at` and the `event_id`, so a resent event lands on the
/// same item.
pub fn event_write(tenant: &str, event: Event, shards: u16, retention: &Retention) -> EventWrite {
    let at = event.placement_time();
    let mut item = Item::with_capacity(24);
    item.insert(PK.into(), s(keys::event_pk(tenant, &keys::hour_label(at), keys::shard_of(&event.event_id, shards))));
    item.insert(SK.into(), s(keys::event_sk(at, &event.event_id)));
    // Only activity is read per user (the feeds); other kinds are read
    // through rollups, so their user index entry would be a wasted write.
    if let (Some(u), EventBody::Activity(_)) = (&event.user_id, &event.body) {
        item.insert(GSI1_PK.into(), s(keys::user_pk(tenant, u)));
    }
    if let Some(n) = event.body.index_name() {
        item.insert(GSI2_PK.into(), s(keys::name_pk(tenant, event.kind().as_str(), n, at)));
    }
    item.insert(TTL_ATTRIBUTE.into(), n(expires_at(&event, retention)));
    super::item::put_event(&mut item, event);
    EventWrite { placed_at: at, item }
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
    /// Items returned by queries so far: what a request cost to read, for
    /// the logs and the benchmarks.
    items_read: Arc<AtomicU64>,
}

impl EventStore {
    pub fn new(client: Client, cfg: StoreConfig) -> Self {
        Self { client, cfg, items_read: Arc::default() }
    }

    /// Items returned by the queries of this store (and its clones) so far.
    pub fn items_read(&self) -> u64 {
        self.items_read.load(Ordering::Relaxed)
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// Writes each event unless its item exists (`attribute_not_exists(pk)`):
    /// the first write wins and a resend is reported as a duplicate. Writes
    /// run in parallel up to the configured concurrency; throttling and
    /// transient errors are retried by the client; the whole call is bounded
    /// by the deadline. Any write still failing fails the call, and nothing
    /// is reported stored.
    ///
    /// A retried attempt that finds the item its own earlier attempt wrote
    /// knows it by the request's `received_at` ([`super::put_once`]): stored,
    /// not a duplicate. A resend is a later request, received later.
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
        let request =
            self.client.put_item().table_name(&self.cfg.table).set_item(Some(item)).condition_expression("attribute_not_exists(pk)");
        Ok(if put_once(request, RECEIVED_AT).await? { PutOutcome::Stored } else { PutOutcome::Duplicate })
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
                .map_err(StoreError::corrupt)?;
            let mut backoff = Backoff::new(self.cfg.max_attempts, deadline);
            loop {
                let out = self.client.batch_get_item().request_items(&self.cfg.table, request).send().await.map_err(StoreError::sdk)?;
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
            .map_err(StoreError::sdk)?;
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
        self.query_all(Some((GSI1, GSI1_PK)), keys::user_pk(tenant, user_id), false, now).await
    }

    /// Every unexpired event of one hour (`yyyy-mm-ddThh`), all shards read
    /// in parallel, oldest first.
    pub async fn hour_events(&self, tenant: &str, hour: &str, now: DateTime<Utc>) -> Result<Vec<StoredEvent>, StoreError> {
        let shards = (0..self.cfg.shards).map(|shard| self.query_all(None, keys::event_pk(tenant, hour, shard), true, now));
        let mut all: Vec<StoredEvent> = futures::future::try_join_all(shards).await?.into_iter().flatten().collect();
        all.sort_by(|a, b| a.sk.cmp(&b.sk));
        Ok(all)
    }

    /// Every page of one partition of the table or of an index (`(index,
    /// partition attribute)`), skipping items whose TTL has passed: DynamoDB
    /// deletes expired items lazily, days late.
    async fn query_all(
        &self,
        index: Option<(&str, &str)>,
        partition: String,
        oldest_first: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (index_name, key_attr) = match index {
            Some((name, attr)) => (Some(name.to_owned()), attr),
            None => (None, PK),
        };
        let query = self
            .query()
            .set_index_name(index_name)
            .key_condition_expression("#k = :p")
            .filter_expression("#ttl > :now")
            .expression_attribute_names("#k", key_attr)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":p", s(&partition))
            .expression_attribute_values(":now", n(now.timestamp()))
            .scan_index_forward(oldest_first);
        let mut out = Vec::new();
        self.for_each_page(query, |items| {
            for item in items {
                out.push(serde_dynamo::from_item(item)?);
            }
            Ok(true)
        })
        .await?;
        Ok(out)
    }

    /// A query of this store's table, to be completed by the caller.
    pub(crate) fn query(&self) -> QueryFluentBuilder {
        self.client.query().table_name(&self.cfg.table)
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Runs a query page after page, handing each page's items to `f` until
    /// it returns `false` or the pages run out.
    /// One item by key, strongly consistent (expired or not: callers that
    /// answer reads check `expires_at`).
    pub(crate) async fn get_item(&self, pk: impl Into<String>, sk: impl Into<String>) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.cfg.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(out.item)
    }

    pub(crate) async fn for_each_page(
        &self,
        query: QueryFluentBuilder,
        mut f: impl FnMut(Vec<Item>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut start = None;
        loop {
            let page = query.clone().set_exclusive_start_key(start).send().await.map_err(StoreError::sdk)?;
            let items = page.items.unwrap_or_default();
            self.items_read.fetch_add(items.len() as u64, Ordering::Relaxed);
            if !f(items)? {
                return Ok(());
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(());
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
        let w = event_write("tenant-1", e, 8, &Retention::default());
        assert!(item_size(&w.item) < 1024, "{} bytes", item_size(&w.item));
        assert_eq!(write_units(&w.item), 3);
    }

    #[test]
    fn api_request_logs_skip_the_name_index_and_cost_one_unit() {
        let e = event(serde_json::json!({"kind": "api_request", "endpoint": "/api/clients/{id}", "method": "GET", "status_code": 200,
            "response_time_ms": 12.5, "query_params": {"page": "2"}, "ip_address": "203.0.113.7"}));
        let w = event_write("tenant-1", e, 8, &Retention::default());
        assert!(!w.item.contains_key("gsi1pk") && !w.item.contains_key("gsi2pk"));
        assert_eq!(write_units(&w.item), 1);
    }

    /// Every kind with every optional field: what `item::put_event` writes
    /// is what serde_dynamo reads back as the same event.
    #[test]
    fn items_round_trip_through_serde_dynamo() {
        let now = crate::validate::parse_timestamp("2026-11-21T10:00:00Z").unwrap();
        let skewed = Context { received_at: now, sent_at: parse_timestamp("2026-11-21T10:02:00.5Z"), retention: Retention::default() };
        let envelope = serde_json::json!({"occurred_at": "2026-11-21T10:01:59.250Z", "user_id": "u-1", "ip_address": "::1",
            "user_agent": "u".repeat(600), "metadata": {"n": 1, "neg": -3, "f": 1.5, "list": ["a", 2, true], "none": null, "deep": {"x": {"y": "z"}}}});
        let kinds = [
            serde_json::json!({"kind": "activity", "action": "generate_report", "description": "d", "client_id": "c", "report_id": "r",
                "report": {"status": "failed", "processing_time_ms": 7, "categories": {"cost": 1, "security": 0},
                           "impact": {"high": 1, "medium": 2, "low": 3}, "estimated_monthly_savings": 0.1}}),
            serde_json::json!({"kind": "activity", "action": "my_custom_thing"}),
            serde_json::json!({"kind": "api_request", "endpoint": "/a", "method": "delete", "status_code": 503, "response_time_ms": 0.25,
                "request_size": 1, "response_size": 2, "query_params": {"q": "v", "token": "t"}, "error_message": "boom", "sample_rate": 0.1}),
            serde_json::json!({"kind": "auth", "event_type": "reset_password", "success": false, "error_message": "nope"}),
            serde_json::json!({"kind": "external_call", "service": "gemini", "endpoint": "/v1", "method": "POST", "status_code": 429,
                "response_time_ms": 900, "cost_estimate": 0.0125, "request_size": 10, "response_size": 20, "error_message": "slow down"}),
        ];
        for body in kinds {
            let mut v = envelope.clone();
            v.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
            let e = validate_event(&v.to_string(), &skewed).unwrap();
            assert!(e.client_occurred_at.is_some() && e.user_agent_truncated);
            let w = event_write("t", e.clone(), 8, &Retention::default());
            let back: StoredEvent = serde_dynamo::from_item(w.item.clone()).unwrap();
            assert_eq!(back.event, e, "{}", e.kind().as_str());
            assert_eq!((back.pk.as_str(), back.sk.as_str()), (w.pk(), w.sk()));
            assert_eq!(back.expires_at, expires_at(&e, &Retention::default()));
        }
        let e = event(serde_json::json!({"kind": "external_call", "service": "gemini", "endpoint": "/v1", "response_time_ms": 1}));
        let back: StoredEvent = serde_dynamo::from_item(event_write("t", e.clone(), 8, &Retention::default()).item).unwrap();
        assert_eq!(back.event, e, "the minimal form too");
        assert_eq!(back.gsi2pk.as_deref(), Some("T#t#A#external_call:gemini#2026-11"));
    }

    mod retries {
        use super::super::*;
        use crate::store::client_config;
        use aws_sdk_dynamodb::config::{Credentials, Region, SharedCredentialsProvider};
        use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
        use aws_smithy_types::body::SdkBody;

        const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#;
        const EXISTS: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"exists"}"#;

        /// A store whose HTTP client answers with the given (status, body) in order.
        fn store(answers: &[(u16, &str)]) -> (EventStore, StaticReplayClient) {
            let events = answers
                .iter()
                .map(|(status, body)| {
                    ReplayEvent::new(
                        http::Request::builder().uri("http://localhost:8000/").body(SdkBody::empty()).unwrap(),
                        http::Response::builder()
                            .status(*status)
                            .header("content-type", "application/x-amz-json-1.0")
                            .body(SdkBody::from(*body))
                            .unwrap(),
                    )
                })
                .collect();
            let http = StaticReplayClient::new(events);
            let shared = aws_config::SdkConfig::builder()
                .behavior_version(crate::store::behavior_version())
                .region(Region::new("us-east-1"))
                .credentials_provider(SharedCredentialsProvider::new(Credentials::new("a", "b", None, None, "test")))
                .endpoint_url("http://localhost:8000")
                .http_client(http.clone())
                .sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep().unwrap())
                .build();
            let cfg = StoreConfig { max_attempts: 4, ..StoreConfig::default() };
            (EventStore::new(Client::from_conf(client_config(&shared, &cfg)), cfg), http)
        }

        fn item() -> Item {
            [("pk".to_string(), s("p")), ("sk".to_string(), s("s"))].into()
        }

        #[tokio::test]
        async fn throttled_writes_are_retried_then_stored() {
            let (store, http) = store(&[(400, THROTTLED), (400, THROTTLED), (200, "{}")]);
            assert_eq!(store.put_new(vec![item()]).await.unwrap(), vec![PutOutcome::Stored]);
            assert_eq!(http.actual_requests().count(), 3);
        }

        #[tokio::test]
        async fn throttling_that_never_ends_is_bounded_and_reported() {
            let (store, http) = store(&[(400, THROTTLED); 6]);
            let e = store.put_new(vec![item()]).await.unwrap_err();
            assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
            assert!(e.to_string().contains("ThrottlingException"), "the log names the cause: {e}");
            assert_eq!(http.actual_requests().count(), 4, "max_attempts bounds the retries");
        }

        #[tokio::test]
        async fn an_existing_item_is_a_duplicate_and_not_retried() {
            let (store, http) = store(&[(400, EXISTS), (200, "{}")]);
            assert_eq!(store.put_new(vec![item()]).await.unwrap(), vec![PutOutcome::Duplicate]);
            assert_eq!(http.actual_requests().count(), 1);
        }

        /// A condition failure carrying the item that exists (ALL_OLD).
        fn exists_from(received_at: &str) -> String {
            format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"exists","Item":{{"pk":{{"S":"p"}},"sk":{{"S":"s"}},"received_at":{{"S":"{received_at}"}}}}}}"#
            )
        }

        fn item_received(at: &str) -> Item {
            let mut it = item();
            it.insert(RECEIVED_AT.into(), s(at));
            it
        }

        #[tokio::test]
        async fn a_retry_that_finds_its_own_write_reports_it_stored() {
            // The first attempt's write landed but its answer did not.
            let own = exists_from("2026-11-30T10:00:00.123Z");
            let (store, http) = store(&[(500, r#"{"__type":"InternalServerError"}"#), (400, &own)]);
            assert_eq!(store.put_new(vec![item_received("2026-11-30T10:00:00.123Z")]).await.unwrap(), vec![PutOutcome::Stored]);
            assert_eq!(http.actual_requests().count(), 2);
            let sent = http.actual_requests().next().unwrap().body().bytes().map(|b| String::from_utf8_lossy(b).into_owned());
            assert!(sent.unwrap().contains(r#""ReturnValuesOnConditionCheckFailure":"ALL_OLD""#));
        }

        #[tokio::test]
        async fn an_item_received_earlier_is_a_duplicate() {
            let earlier = exists_from("2026-11-30T09:59:59.999Z");
            let (store, _) = store(&[(400, &earlier)]);
            assert_eq!(store.put_new(vec![item_received("2026-11-30T10:00:00.123Z")]).await.unwrap(), vec![PutOutcome::Duplicate]);
        }

        #[tokio::test]
        async fn server_errors_are_retried_too() {
            let (store, http) = store(&[(500, r#"{"__type":"InternalServerError"}"#), (200, "{}")]);
            assert_eq!(store.put_new(vec![item()]).await.unwrap(), vec![PutOutcome::Stored]);
            assert_eq!(http.actual_requests().count(), 2);
        }
    }
}
