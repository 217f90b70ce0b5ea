//! Raw events in DynamoDB: item mapping, idempotent writes, reads.

use crate::store::ItemExt;
use crate::time;
use std::collections::{BTreeSet, HashSet};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::Deserialize;
use tokio::time::Instant;

use super::keys;
use super::table::{GSI1, GSI1_PK, PK, SK, TTL_ATTRIBUTE, Table, condition_held};
use super::{Item, Put, StoreError, n, put_once, s};
use crate::backoff::Backoff;
use crate::config::Retention;
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

/// The raw events of the table: their writes (identity, item, journal
/// copy) and the reads of single events, a user's and an hour's.
#[derive(Clone, Copy)]
pub struct Events<'t> {
    pub(super) t: &'t Table,
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

impl Events<'_> {
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
    pub async fn put(
        self,
        tenant: &str,
        mut writes: Vec<EventWrite>,
        writer: &str,
        marked: &BTreeSet<String>,
    ) -> Result<Vec<PutOutcome>, StoreError> {
        let deadline = Instant::now() + self.t.config().deadline;
        for w in &mut writes {
            w.identity.insert(WRITER.into(), s(writer));
            w.item.insert(WRITER.into(), s(writer));
        }
        // The futures are collected first: a lazy `map` over borrowed writes
        // makes a future the compiler cannot prove `Send` for every lifetime.
        let identities: Vec<_> = writes.iter().map(|w| self.put_identity(w.identity.clone())).collect();
        let placed =
            within(deadline, futures::stream::iter(identities).buffered(self.t.config().write_concurrency).collect::<Vec<_>>()).await?;
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
            within(deadline, self.t.markers().mark(tenant, &extra)).await??;
        }
        let items: Vec<_> = writes.iter().zip(plan).map(|(w, p)| self.place(tenant, w, p)).collect();
        let outcomes: Result<Vec<PutOutcome>, StoreError> =
            within(deadline, futures::stream::iter(items).buffered(self.t.config().write_concurrency).collect::<Vec<_>>())
                .await?
                .into_iter()
                .collect();
        if !extra.is_empty() {
            // And after, as for the caller's own hours (store::rollups).
            within(deadline, self.t.markers().mark(tenant, &extra)).await??;
        }
        outcomes
    }

    /// The identity write: `Write { owned: true }` when this request wrote
    /// it; else the place the earlier request recorded, and whether it
    /// journaled the event.
    async fn put_identity(self, identity: Item) -> Result<(Placed, Option<(ItemKey, bool)>), StoreError> {
        let request = self
            .t
            .client()
            .put_item()
            .table_name(&self.t.config().table)
            .set_item(Some(identity))
            .condition_expression("attribute_not_exists(pk)");
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

    async fn place(self, tenant: &str, w: &EventWrite, p: Placed) -> Result<PutOutcome, StoreError> {
        match p {
            Placed::Refused(why) => Ok(PutOutcome::Unstorable(why)),
            Placed::Write { owned } => self.put_item_of(tenant, w, owned).await,
        }
    }

    /// The item write, after its journal copy for an event journaled by its
    /// first request. The copy is written once (conditionally): a resend
    /// finds it when the first request wrote it, and that request wrote it
    /// before the item, so the item is never there without it.
    async fn put_item_of(self, tenant: &str, w: &EventWrite, owned_identity: bool) -> Result<PutOutcome, StoreError> {
        if w.journal {
            let copy = w.journal_copy(tenant);
            let request = self
                .t
                .client()
                .put_item()
                .table_name(&self.t.config().table)
                .set_item(Some(copy))
                .condition_expression("attribute_not_exists(pk)");
            match put_once(request, WRITER).await? {
                Put::Written | Put::Exists(_) => {}
                Put::Refused(why) => return self.refuse(w, owned_identity, why).await,
            }
        }
        let request = self
            .t
            .client()
            .put_item()
            .table_name(&self.t.config().table)
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
    async fn refuse(self, w: &EventWrite, owned_identity: bool, why: String) -> Result<PutOutcome, StoreError> {
        if owned_identity {
            let key = w.identity_key();
            let res = self
                .t
                .client()
                .delete_item()
                .table_name(&self.t.config().table)
                .set_key(Some(key.to_item()))
                .condition_expression("#w = :w")
                .expression_attribute_names("#w", WRITER)
                .expression_attribute_values(":w", w.identity.get(WRITER).cloned().unwrap_or(AttributeValue::Null(true)))
                .send()
                .await;
            condition_held(res)?;
        }
        Ok(PutOutcome::Unstorable(why))
    }

    /// Which of the events were stored already, as a write would find
    /// them: their identity exists and so does the item it points to.
    /// Keys only, strongly consistent: a dry run reports duplicates
    /// exactly as a real write would.
    pub async fn existing(self, writes: &[EventWrite]) -> Result<HashSet<ItemKey>, StoreError> {
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
    async fn batch_get(self, keys: &[ItemKey], projection: &str) -> Result<Vec<Item>, StoreError> {
        let deadline = Instant::now() + self.t.config().deadline;
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
            let mut backoff = Backoff::new(self.t.config().max_attempts, deadline);
            loop {
                let out = self
                    .t
                    .client()
                    .batch_get_item()
                    .request_items(&self.t.config().table, request)
                    .send()
                    .await
                    .map_err(StoreError::sdk)?;
                found.extend(out.responses.and_then(|mut r| r.remove(&self.t.config().table)).unwrap_or_default());
                match out.unprocessed_keys.and_then(|mut u| u.remove(&self.t.config().table)) {
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
    pub async fn get(self, key: &ItemKey, now: DateTime<Utc>) -> Result<Option<StoredEvent>, StoreError> {
        let out = self
            .t
            .client()
            .get_item()
            .table_name(&self.t.config().table)
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
    pub async fn user_events(self, tenant: &str, user_id: &str, now: DateTime<Utc>) -> Result<Vec<StoredEvent>, StoreError> {
        self.query_all(Some((GSI1, GSI1_PK)), keys::user_pk(tenant, user_id), false, now).await
    }

    /// Every unexpired event of one hour (`yyyy-mm-ddThh`), every raw
    /// partition of it read in parallel, oldest first.
    pub async fn hour_events(self, tenant: &str, hour: &str, now: DateTime<Utc>) -> Result<Vec<StoredEvent>, StoreError> {
        let Some(start) = crate::time::parse_hour(hour) else { return Ok(Vec::new()) };
        let (low, high) = (keys::sk_from(start), keys::sk_before(start + Duration::hours(1)));
        let parts = keys::raw_partitions(tenant, start, self.t.config().shards);
        let reads = parts.into_iter().map(|pk| {
            let query = self
                .t
                .query_unexpired(now)
                .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
                .expression_attribute_values(":p", s(pk))
                .expression_attribute_values(":a", s(&low))
                .expression_attribute_values(":b", s(&high));
            async move {
                let mut out: Vec<StoredEvent> = Vec::new();
                self.t
                    .for_each_page(query, |items| {
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
        self,
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
            .t
            .query_unexpired(now)
            .set_index_name(index_name)
            .key_condition_expression("#k = :p")
            .expression_attribute_names("#k", key_attr)
            .expression_attribute_values(":p", s(&partition))
            .scan_index_forward(oldest_first);
        let mut out = Vec::new();
        self.t
            .for_each_page(query, |items| {
                for item in items {
                    out.push(serde_dynamo::from_item(item)?);
                }
                Ok(true)
            })
            .await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
