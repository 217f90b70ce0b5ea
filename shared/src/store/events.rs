//! Raw events in DynamoDB: item mapping, idempotent writes, reads.

use crate::store::ItemExt;
use crate::time;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::Deserialize;
use tokio::time::Instant;

use super::keys;
use super::table::{GSI1, GSI1_PK, PK, SK, TTL_ATTRIBUTE};
use super::{Item, Put, StoreError, n, put_once, s};
use crate::backoff::Backoff;
use crate::config::{Retention, StoreConfig};
use crate::model::{CUSTOM_ACTIONS, Event, EventBody};
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

/// Runs `f` unless the deadline passes first (then storage is unavailable).
async fn within<T>(deadline: Instant, f: impl Future<Output = T>) -> Result<T, StoreError> {
    tokio::time::timeout_at(deadline, f).await.map_err(|_| StoreError::unavailable("the write deadline passed"))
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

    /// Where an event is stored: at its corrected time, activity in its
    /// action's month partition, every other kind in its hour's shard.
    pub fn of_event(tenant: &str, event: &Event, shards: u16) -> ItemKey {
        let at = event.occurred_at;
        let pk = match &event.body {
            EventBody::Activity(_) => keys::activity_pk(tenant, event.body.index_name().unwrap_or(CUSTOM_ACTIONS), at),
            _ => keys::event_pk(tenant, &time::hour_label(at), keys::shard_of(&event.event_id, shards)),
        };
        ItemKey { pk, sk: keys::event_sk(at, &event.event_id) }
    }

    /// The identity item of an event (see [`keys::identity_pk`]).
    pub fn identity_of(tenant: &str, event: &Event, shards: u16) -> ItemKey {
        let sent = event.identity_time();
        ItemKey {
            pk: keys::identity_pk(tenant, sent, keys::shard_of(&event.event_id, shards)),
            sk: keys::identity_sk(sent, &event.event_id),
        }
    }
}

/// The epoch second after which an event is gone: its corrected time plus
/// the retention of its kind.
pub fn expires_at(event: &Event, retention: &Retention) -> i64 {
    (event.occurred_at + Duration::days(i64::from(retention_days(event.kind(), retention)))).timestamp()
}

/// The attribute naming the request that wrote an item (a random id per
/// request): what tells a write's own retried attempt from another
/// request's write of the same key.
pub(crate) const WRITER: &str = "w";
/// The identity item's pointer to its event item.
const EVENT_PK: &str = "ek";
const EVENT_SK: &str = "es";
/// Set on the identity of an event whose first request was late enough to
/// be journaled: a resend journals it (once) if and only if this is set.
const JOURNALED: &str = "j";

/// A fresh writer id for one request.
pub fn writer_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// An event ready to be written: its identity item, its item (keys
/// included), and whether a copy goes to the late-event journal.
#[derive(Debug, Clone)]
pub struct EventWrite {
    /// The corrected time: the item's place, whose hour the roll-up must
    /// recompute.
    pub placed_at: DateTime<Utc>,
    pub identity: Item,
    pub item: Item,
    /// The sender's own time, what the identity is made of.
    sent_time: DateTime<Utc>,
    /// Days the event is kept, and the rollups (for the journal copy).
    keep_days: u32,
    rollup_days: u32,
    /// The event's first request arrived so late (a quarter of its
    /// retention or more) that its hour may be past raw retention when it
    /// is rolled up: a copy is journaled for the roll-up (`store::hours`),
    /// before the item. A resend's own lateness does not count: its event
    /// may be counted already.
    pub journal: bool,
}

impl EventWrite {
    fn key_part(&self, name: &str) -> &str {
        self.item.str(name).expect("event items always carry their keys")
    }
    pub fn pk(&self) -> &str {
        self.key_part(PK)
    }
    /// Unique within a partition: the corrected time and the event id.
    pub fn sk(&self) -> &str {
        self.key_part(SK)
    }
    pub fn key(&self) -> ItemKey {
        ItemKey { pk: self.pk().to_owned(), sk: self.sk().to_owned() }
    }
    /// The identity's key: two writes with the same one are the same event.
    pub fn identity_key(&self) -> ItemKey {
        let get = |k: &str| self.identity.str(k).map(str::to_owned).unwrap_or_default();
        ItemKey { pk: get(PK), sk: get(SK) }
    }

    /// Places the event where an earlier request of it was placed (its
    /// identity item points there): a resend whose first write never
    /// landed is stored at the first request's time, not at its own.
    fn move_to(&mut self, key: &ItemKey) {
        let Some(at) = key.sk.split('#').next().and_then(|ms| ms.parse::<i64>().ok()).and_then(DateTime::from_timestamp_millis) else {
            return;
        };
        self.placed_at = at;
        self.item.insert(PK.into(), s(&key.pk));
        self.item.insert(SK.into(), s(&key.sk));
        self.item.insert("occurred_at".into(), super::item::time(at));
        if at == self.sent_time {
            self.item.remove("client_occurred_at");
        } else {
            self.item.insert("client_occurred_at".into(), super::item::time(self.sent_time));
        }
        self.item.insert(TTL_ATTRIBUTE.into(), n((at + Duration::days(i64::from(self.keep_days))).timestamp()));
    }

    /// The journal's copy: the same attributes under the hour's journal,
    /// kept as long as the rollups.
    fn journal_copy(&self, tenant: &str) -> Item {
        let mut copy = self.item.clone();
        copy.remove(GSI1_PK);
        copy.insert(PK.into(), s(keys::journal_pk(tenant, &time::hour_label(self.placed_at))));
        copy.insert(TTL_ATTRIBUTE.into(), n((self.placed_at + Duration::days(i64::from(self.rollup_days))).timestamp()));
        copy
    }
}

/// Maps an event to its items: the event at its corrected time
/// ([`ItemKey::of_event`]) and its identity at the sender's time
/// ([`ItemKey::identity_of`]), so a resend finds the identity whatever
/// its own corrected time.
pub fn event_write(tenant: &str, event: Event, shards: u16, retention: &Retention) -> EventWrite {
    let key = ItemKey::of_event(tenant, &event, shards);
    let identity_key = ItemKey::identity_of(tenant, &event, shards);
    let keep_days = retention_days(event.kind(), retention);
    let ttl = expires_at(&event, retention);
    let late = event.received_at - event.occurred_at;
    let journal = late > Duration::seconds(i64::from(keep_days) * 86_400 / 4);
    let placed_at = event.occurred_at;
    let sent_time = event.identity_time();
    let mut item = Item::with_capacity(24);
    // Only activity is read per user (the feeds); other kinds are read
    // through rollups, so their user index entry would be a wasted write.
    if let (Some(u), EventBody::Activity(_)) = (&event.user_id, &event.body) {
        item.insert(GSI1_PK.into(), s(keys::user_pk(tenant, u)));
    }
    item.insert(TTL_ATTRIBUTE.into(), n(ttl));
    super::item::put_event(&mut item, event);
    let mut identity: Item = [
        (EVENT_PK.to_owned(), s(&key.pk)),
        (EVENT_SK.to_owned(), s(&key.sk)),
        (PK.to_owned(), s(identity_key.pk)),
        (SK.to_owned(), s(identity_key.sk)),
        (TTL_ATTRIBUTE.to_owned(), n(ttl)),
    ]
    .into();
    if journal {
        identity.insert(JOURNALED.into(), AttributeValue::Bool(true));
    }
    item.insert(PK.into(), s(key.pk));
    item.insert(SK.into(), s(key.sk));
    EventWrite { placed_at, identity, item, sent_time, keep_days, rollup_days: retention.rollup_days, journal }
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

/// Write units one item costs: one per started KB on the table and on
/// each index the item appears in.
pub fn write_units(item: &Item) -> usize {
    let per_copy = item_size(item).div_ceil(1024).max(1);
    let copies = 1 + usize::from(item.contains_key(GSI1_PK)) + usize::from(item.contains_key(super::table::GSI2_PK));
    per_copy * copies
}

impl EventWrite {
    /// Write units of the whole event: its identity and its item with the
    /// index entries (a journal copy, for late events only, adds one more).
    pub fn write_units(&self) -> usize {
        write_units(&self.identity) + write_units(&self.item) + if self.journal { write_units(&self.journal_copy("t")) } else { 0 }
    }
}

/// What happened to one event write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Stored,
    /// Its identity was there, and so was its item: a resend.
    Duplicate,
    /// DynamoDB refused the item for what it holds; the message says why.
    Unstorable(String),
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

/// Where the first phase left an event.
enum Placed {
    /// Its item is to be written (a new event, or a resend whose first
    /// request never wrote the item); `owned` when this request wrote the
    /// identity.
    Write {
        owned: bool,
    },
    Refused(String),
}

impl EventStore {
    pub fn new(client: Client, cfg: StoreConfig) -> Self {
        Self { client, cfg, items_read: Arc::default() }
    }

    /// Items returned by the queries of this store (and its clones) so far.
    pub fn items_read(&self) -> u64 {
        self.items_read.load(Ordering::Relaxed)
    }

    pub(crate) fn count_read(&self, items: usize) {
        self.items_read.fetch_add(items as u64, Ordering::Relaxed);
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// Writes each event once. First its identity, conditionally: the first
    /// request of an event wins, and a resend finds the identity and with
    /// it where the event was placed. Then its item, conditionally too, at
    /// that place: a resend whose first request failed before writing the
    /// item writes it (stored), one that finds the item is a duplicate, and
    /// of two requests racing, one stores and the other counts a duplicate.
    ///
    /// Both writes carry this request's `writer` id, so a retried attempt
    /// that finds its own earlier write knows it ([`super::put_once`]).
    /// An item DynamoDB refuses for its content is that event's
    /// `Unstorable`; a resend moved to an earlier place whose hour is not
    /// in `marked` has that hour marked dirty before its item is written and
    /// again after.
    /// Writes run in parallel up to the configured concurrency, bounded by
    /// the deadline; any failure still left fails the call, and nothing is
    /// reported stored.
    pub async fn put_events(
        &self,
        tenant: &str,
        mut writes: Vec<EventWrite>,
        writer: &str,
        marked: &BTreeSet<String>,
    ) -> Result<Vec<PutOutcome>, StoreError> {
        let deadline = Instant::now() + self.cfg.deadline;
        for w in &mut writes {
            w.identity.insert(WRITER.into(), s(writer));
            w.item.insert(WRITER.into(), s(writer));
        }
        // The futures are collected first: a lazy `map` over borrowed writes
        // makes a future the compiler cannot prove `Send` for every lifetime.
        let identities: Vec<_> = writes.iter().map(|w| self.put_identity(w.identity.clone())).collect();
        let placed = within(deadline, futures::stream::iter(identities).buffered(self.cfg.write_concurrency).collect::<Vec<_>>()).await?;
        let mut extra = BTreeSet::new();
        let mut plan = Vec::with_capacity(writes.len());
        for (w, p) in writes.iter_mut().zip(placed) {
            let p = match p? {
                (Placed::Write { owned: false }, Some((earlier, journaled))) => {
                    w.move_to(&earlier);
                    w.journal = journaled;
                    let hour = time::hour_label(w.placed_at);
                    if !marked.contains(&hour) {
                        extra.insert(hour);
                    }
                    Placed::Write { owned: false }
                }
                (p, _) => p,
            };
            plan.push(p);
        }
        if !extra.is_empty() {
            within(deadline, self.mark_dirty(tenant, &extra)).await??;
        }
        let items: Vec<_> = writes.iter().zip(plan).map(|(w, p)| self.place(tenant, w, p)).collect();
        let outcomes: Result<Vec<PutOutcome>, StoreError> =
            within(deadline, futures::stream::iter(items).buffered(self.cfg.write_concurrency).collect::<Vec<_>>())
                .await?
                .into_iter()
                .collect();
        if !extra.is_empty() {
            // And after, as for the caller's own hours (store::rollups).
            within(deadline, self.mark_dirty(tenant, &extra)).await??;
        }
        outcomes
    }

    /// The identity write: `Write { owned: true }` when this request wrote
    /// it; else the place the earlier request recorded, and whether it
    /// journaled the event.
    async fn put_identity(&self, identity: Item) -> Result<(Placed, Option<(ItemKey, bool)>), StoreError> {
        let request =
            self.client.put_item().table_name(&self.cfg.table).set_item(Some(identity)).condition_expression("attribute_not_exists(pk)");
        Ok(match put_once(request, WRITER).await? {
            Put::Written => (Placed::Write { owned: true }, None),
            Put::Refused(why) => (Placed::Refused(why), None),
            Put::Exists(old) => {
                let get = |k: &str| old.str(k).map(str::to_owned);
                let journaled = old.flag(JOURNALED).unwrap_or(false);
                match (get(EVENT_PK), get(EVENT_SK)) {
                    (Some(pk), Some(sk)) => (Placed::Write { owned: false }, Some((ItemKey { pk, sk }, journaled))),
                    _ => return Err(StoreError::corrupt("an identity item without its event's key")),
                }
            }
        })
    }

    async fn place(&self, tenant: &str, w: &EventWrite, p: Placed) -> Result<PutOutcome, StoreError> {
        match p {
            Placed::Refused(why) => Ok(PutOutcome::Unstorable(why)),
            Placed::Write { owned } => self.put_item_of(tenant, w, owned).await,
        }
    }

    /// The item write, after its journal copy for an event journaled by its
    /// first request. The copy is written once (conditionally): a resend
    /// finds it when the first request wrote it, and that request wrote it
    /// before the item, so the item is never there without it.
    async fn put_item_of(&self, tenant: &str, w: &EventWrite, owned_identity: bool) -> Result<PutOutcome, StoreError> {
        if w.journal {
            let copy = w.journal_copy(tenant);
            let request =
                self.client.put_item().table_name(&self.cfg.table).set_item(Some(copy)).condition_expression("attribute_not_exists(pk)");
            match put_once(request, WRITER).await? {
                Put::Written | Put::Exists(_) => {}
                Put::Refused(why) => return self.refuse(w, owned_identity, why).await,
            }
        }
        let request = self
            .client
            .put_item()
            .table_name(&self.cfg.table)
            .set_item(Some(w.item.clone()))
            .condition_expression("attribute_not_exists(pk)");
        Ok(match put_once(request, WRITER).await? {
            Put::Written => PutOutcome::Stored,
            Put::Exists(_) => PutOutcome::Duplicate,
            Put::Refused(why) => return self.refuse(w, owned_identity, why).await,
        })
    }

    /// An item DynamoDB refused: the identity this request wrote for it is
    /// taken back, so a corrected resend is stored rather than deemed a
    /// duplicate.
    async fn refuse(&self, w: &EventWrite, owned_identity: bool, why: String) -> Result<PutOutcome, StoreError> {
        if owned_identity {
            let key = w.identity_key();
            let res = self
                .client
                .delete_item()
                .table_name(&self.cfg.table)
                .set_key(Some(key.to_item()))
                .condition_expression("#w = :w")
                .expression_attribute_names("#w", WRITER)
                .expression_attribute_values(":w", w.identity.get(WRITER).cloned().unwrap_or(AttributeValue::Null(true)))
                .send()
                .await;
            if let Err(e) = res
                && !e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception())
            {
                return Err(StoreError::sdk(e));
            }
        }
        Ok(PutOutcome::Unstorable(why))
    }

    /// Which of the events were stored already, as a write would find
    /// them: their identity exists and so does the item it points to.
    /// Keys only, strongly consistent: a dry run reports duplicates
    /// exactly as a real write would.
    pub async fn existing(&self, writes: &[EventWrite]) -> Result<HashSet<ItemKey>, StoreError> {
        let identities: Vec<ItemKey> = writes.iter().map(EventWrite::identity_key).collect();
        let found = self.batch_get(&identities, &format!("{PK}, {SK}, {EVENT_PK}, {EVENT_SK}")).await?;
        let mut pointed: Vec<(ItemKey, ItemKey)> = Vec::new();
        for item in found {
            let get = |k: &str| item.str(k).map(str::to_owned).unwrap_or_default();
            pointed.push((ItemKey { pk: get(PK), sk: get(SK) }, ItemKey { pk: get(EVENT_PK), sk: get(EVENT_SK) }));
        }
        let targets: Vec<ItemKey> = pointed.iter().map(|(_, e)| e.clone()).collect();
        let present: HashSet<ItemKey> = self
            .batch_get(&targets, &format!("{PK}, {SK}"))
            .await?
            .into_iter()
            .map(|i| {
                let get = |k: &str| i.str(k).map(str::to_owned).unwrap_or_default();
                ItemKey { pk: get(PK), sk: get(SK) }
            })
            .collect();
        Ok(pointed.into_iter().filter(|(_, e)| present.contains(e)).map(|(id, _)| id).collect())
    }

    /// The items of the keys that exist (projected), strongly consistent,
    /// 100 keys a call, unprocessed keys retried.
    async fn batch_get(&self, keys: &[ItemKey], projection: &str) -> Result<Vec<Item>, StoreError> {
        let deadline = Instant::now() + self.cfg.deadline;
        let mut found = Vec::new();
        let unique: BTreeSet<&ItemKey> = keys.iter().collect();
        let unique: Vec<&ItemKey> = unique.into_iter().collect();
        for chunk in unique.chunks(100) {
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(|k| k.to_item()).collect()))
                .projection_expression(projection)
                .consistent_read(true)
                .build()
                .map_err(StoreError::corrupt)?;
            let mut backoff = Backoff::new(self.cfg.max_attempts, deadline);
            loop {
                let out = self.client.batch_get_item().request_items(&self.cfg.table, request).send().await.map_err(StoreError::sdk)?;
                found.extend(out.responses.and_then(|mut r| r.remove(&self.cfg.table)).unwrap_or_default());
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

    /// Every unexpired event of one hour (`yyyy-mm-ddThh`), every raw
    /// partition of it read in parallel, oldest first.
    pub async fn hour_events(&self, tenant: &str, hour: &str, now: DateTime<Utc>) -> Result<Vec<StoredEvent>, StoreError> {
        let Some(start) = crate::time::parse_hour(hour) else { return Ok(Vec::new()) };
        let (low, high) = (keys::sk_from(start), keys::sk_before(start + Duration::hours(1)));
        let parts = keys::raw_partitions(tenant, start, self.cfg.shards);
        let reads = parts.into_iter().map(|pk| {
            let query = self
                .query()
                .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
                .filter_expression("#ttl > :now")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":p", s(pk))
                .expression_attribute_values(":a", s(&low))
                .expression_attribute_values(":b", s(&high))
                .expression_attribute_values(":now", n(now.timestamp()));
            async move {
                let mut out: Vec<StoredEvent> = Vec::new();
                self.for_each_page(query, |items| {
                    for item in items {
                        out.push(serde_dynamo::from_item(item)?);
                    }
                    Ok(true)
                })
                .await?;
                Ok::<_, StoreError>(out)
            }
        });
        let mut all: Vec<StoredEvent> = futures::future::try_join_all(reads).await?.into_iter().flatten().collect();
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
    use crate::time::parse_timestamp;
    use crate::validate::{Context, validate_event};

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
        let mut w = event_write("tenant-1", e, 8, &Retention::default());
        w.item.insert(WRITER.into(), s(writer_id()));
        w.identity.insert(WRITER.into(), s(writer_id()));
        assert!(item_size(&w.item) < 1024, "{} bytes", item_size(&w.item));
        assert!(w.item.contains_key(GSI1_PK) && !w.item.contains_key("gsi2pk"), "the action partition is the table's own");
        assert_eq!((write_units(&w.identity), write_units(&w.item)), (1, 2));
        assert_eq!(w.write_units(), 3, "identity, item, user index");
        assert!(!w.journal);
    }

    #[test]
    fn api_request_logs_cost_two_units_identity_included() {
        let e = event(serde_json::json!({"kind": "api_request", "endpoint": "/api/clients/{id}", "method": "GET", "status_code": 200,
            "response_time_ms": 12.5, "query_params": {"page": "2"}, "ip_address": "203.0.113.7"}));
        let w = event_write("tenant-1", e, 8, &Retention::default());
        assert!(!w.item.contains_key("gsi1pk") && !w.item.contains_key("gsi2pk"));
        assert_eq!(w.write_units(), 2);
    }

    /// A skewed sender's event is placed at its corrected time; its
    /// identity keeps the sender's own time, which a resend repeats.
    #[test]
    fn items_are_placed_at_the_corrected_time_and_identified_by_the_senders() {
        let now = parse_timestamp("2026-11-21T10:00:00Z").unwrap();
        let ctx = |sent: &str| Context { received_at: now, sent_at: parse_timestamp(sent), retention: Retention::default() };
        let raw = serde_json::json!({"event_id": "e-1", "kind": "auth", "occurred_at": "1970-01-01T00:00:00Z", "event_type": "login", "success": true})
            .to_string();
        let first = event_write("t", validate_event(&raw, &ctx("1970-01-01T00:00:05Z")).unwrap(), 8, &Retention::default());
        assert_eq!(first.placed_at, parse_timestamp("2026-11-21T09:59:55Z").unwrap());
        assert!(first.pk().starts_with("T#t#E#2026-11-21T09#"), "{}", first.pk());
        assert_eq!(first.identity_key().pk, format!("T#t#I#1970-01-01T00#{}", keys::shard_of("e-1", 8)));
        // The resend: another sent_at, another delay; the same identity.
        let resend = event_write("t", validate_event(&raw, &ctx("1970-01-01T00:01:07Z")).unwrap(), 8, &Retention::default());
        assert_ne!(resend.key(), first.key());
        assert_eq!(resend.identity_key(), first.identity_key());
        let mut moved = resend.clone();
        moved.move_to(&first.key());
        assert_eq!((moved.key(), moved.placed_at), (first.key(), first.placed_at));
        let back: StoredEvent = serde_dynamo::from_item(moved.item).unwrap();
        assert_eq!(back.event.occurred_at, first.placed_at);
        assert_eq!(back.event.client_occurred_at, parse_timestamp("1970-01-01T00:00:00Z"));
        assert_eq!(back.expires_at, (first.placed_at + Duration::days(90)).timestamp());
    }

    #[test]
    fn an_event_a_quarter_of_its_retention_late_is_journaled() {
        let ev = |age_days: i64| {
            let at = (parse_timestamp("2026-11-21T10:00:00Z").unwrap() - Duration::days(age_days)).to_rfc3339();
            event(
                serde_json::json!({"kind": "api_request", "occurred_at": at, "endpoint": "/a", "method": "GET", "status_code": 200, "response_time_ms": 1}),
            )
        };
        assert!(!event_write("t", ev(7), 8, &Retention::default()).journal, "7 of 30 days");
        let w = event_write("t", ev(8), 8, &Retention::default());
        assert!(w.journal, "8 of 30 days");
        let copy = w.journal_copy("t");
        assert_eq!(copy[PK].as_s().unwrap(), &keys::journal_pk("t", &time::hour_label(w.placed_at)));
        assert_eq!(copy[SK], w.item[SK]);
        assert_eq!(w.write_units(), 3);
    }

    /// Every kind with every optional field: what `item::put_event` writes
    /// is what serde_dynamo reads back as the same event.
    #[test]
    fn items_round_trip_through_serde_dynamo() {
        let now = crate::time::parse_timestamp("2026-11-21T10:00:00Z").unwrap();
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
        assert_eq!(back.gsi2pk, None);
    }

    mod retries {
        use super::super::*;
        use crate::store::client_config;
        use crate::time::parse_timestamp;
        use crate::validate::{Context, validate_event};
        use aws_sdk_dynamodb::config::{Credentials, Region, SharedCredentialsProvider};
        use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
        use aws_smithy_types::body::SdkBody;

        const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#;
        const REFUSED: &str =
            r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"Item size has exceeded the maximum allowed size"}"#;
        const SERVER: &str = r#"{"__type":"InternalServerError"}"#;
        const WRITER_ID: &str = "0123456789abcdef";

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

        fn write() -> EventWrite {
            let now = parse_timestamp("2026-11-30T10:00:00Z").unwrap();
            let raw =
                r#"{"event_id": "e-1", "kind": "auth", "occurred_at": "2026-11-30T09:59:00Z", "event_type": "login", "success": true}"#;
            let e = validate_event(raw, &Context { received_at: now, sent_at: None, retention: Retention::default() }).unwrap();
            event_write("t", e, 8, &Retention::default())
        }

        async fn put(store: &EventStore) -> Result<Vec<PutOutcome>, StoreError> {
            let marked: BTreeSet<String> = ["2026-11-30T09".to_string()].into();
            store.put_events("t", vec![write()], WRITER_ID, &marked).await
        }

        /// A condition failure carrying the item there (ALL_OLD): written by
        /// `writer`, an identity pointing at the write's own item.
        fn exists(writer: &str) -> String {
            let w = write();
            format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"exists","Item":{{"pk":{{"S":"p"}},"sk":{{"S":"s"}},"w":{{"S":"{writer}"}},"ek":{{"S":"{}"}},"es":{{"S":"{}"}}}}}}"#,
                w.pk(),
                w.sk()
            )
        }

        #[tokio::test]
        async fn throttled_writes_are_retried_then_stored() {
            let (store, http) = store(&[(400, THROTTLED), (400, THROTTLED), (200, "{}"), (200, "{}")]);
            assert_eq!(put(&store).await.unwrap(), vec![PutOutcome::Stored]);
            assert_eq!(http.actual_requests().count(), 4, "the identity three times, then the item");
        }

        #[tokio::test]
        async fn throttling_that_never_ends_is_bounded_and_reported() {
            let (store, http) = store(&[(400, THROTTLED); 6]);
            let e = put(&store).await.unwrap_err();
            assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
            assert!(e.to_string().contains("ThrottlingException"), "the log names the cause: {e}");
            assert_eq!(http.actual_requests().count(), 4, "max_attempts bounds the retries");
        }

        #[tokio::test]
        async fn an_existing_identity_and_item_is_a_duplicate_and_not_retried() {
            let other = exists("another-request");
            let (store, http) = store(&[(400, &other), (400, &other)]);
            assert_eq!(put(&store).await.unwrap(), vec![PutOutcome::Duplicate]);
            assert_eq!(http.actual_requests().count(), 2);
        }

        #[tokio::test]
        async fn a_resend_whose_first_request_never_wrote_the_item_stores_it() {
            let other = exists("another-request");
            let (store, http) = store(&[(400, &other), (200, "{}")]);
            assert_eq!(put(&store).await.unwrap(), vec![PutOutcome::Stored]);
            let sent: Vec<String> =
                http.actual_requests().map(|r| String::from_utf8_lossy(r.body().bytes().unwrap_or_default()).into_owned()).collect();
            assert!(sent[1].contains(&format!(r#""sk":{{"S":"{}"}}"#, write().sk())), "written where the identity points: {}", sent[1]);
        }

        #[tokio::test]
        async fn a_retry_that_finds_its_own_write_reports_it_stored() {
            // The identity's first attempt landed but its answer did not;
            // the item's first attempt too.
            let own = exists(WRITER_ID);
            let (store, http) = store(&[(500, SERVER), (400, &own), (500, SERVER), (400, &own)]);
            assert_eq!(put(&store).await.unwrap(), vec![PutOutcome::Stored]);
            assert_eq!(http.actual_requests().count(), 4);
            let sent = http.actual_requests().next().unwrap().body().bytes().map(|b| String::from_utf8_lossy(b).into_owned());
            assert!(sent.unwrap().contains(r#""ReturnValuesOnConditionCheckFailure":"ALL_OLD""#));
        }

        #[tokio::test]
        async fn an_item_storage_refuses_is_unstorable_and_its_identity_taken_back() {
            let (store, http) = store(&[(200, "{}"), (400, REFUSED), (200, "{}")]);
            let out = put(&store).await.unwrap();
            assert!(matches!(&out[0], PutOutcome::Unstorable(why) if why.contains("maximum allowed size")), "{out:?}");
            assert_eq!(http.actual_requests().count(), 3, "identity, item (refused, not retried), identity deleted");
            let sent = http.actual_requests().nth(2).unwrap().headers().get("x-amz-target").map(str::to_owned);
            assert_eq!(sent.as_deref(), Some("DynamoDB_20120810.DeleteItem"));
        }

        #[tokio::test]
        async fn server_errors_are_retried_too() {
            let (store, http) = store(&[(500, SERVER), (200, "{}"), (200, "{}")]);
            assert_eq!(put(&store).await.unwrap(), vec![PutOutcome::Stored]);
            assert_eq!(http.actual_requests().count(), 3);
        }
    }
}
