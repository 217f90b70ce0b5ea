//! Raw events in DynamoDB: item mapping, idempotent writes, reads.

use crate::store::ItemExt;
use crate::time;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::keys;
use super::table::{GSI1, GSI1_PK, PK, SK, TTL_ATTRIBUTE, Table};
use super::{Attrs, Item, StoreError, n, s};
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
            _ => keys::event_pk_at(tenant, at, keys::shard_of(&event.event_id, shards)),
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
    expiry(event.occurred_at, retention_days(event.kind(), retention))
}

/// The epoch second `days` days after `t`, in seconds: what chrono's
/// `(t + days).timestamp()` reads (a day is 86,400 of them), without its
/// calendar arithmetic or its overflow panic.
fn expiry(t: DateTime<Utc>, days: u32) -> i64 {
    t.timestamp() + i64::from(days) * 86_400
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
    pub identity: Attrs,
    pub item: Attrs,
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
    /// The event's id, as written.
    pub fn event_id(&self) -> Option<&str> {
        self.item.str("event_id")
    }
    pub fn key(&self) -> ItemKey {
        ItemKey { pk: self.pk().to_owned(), sk: self.sk().to_owned() }
    }
    /// The identity's key, borrowed: two writes with the same one are the
    /// same event.
    pub fn identity_parts(&self) -> (&str, &str) {
        (self.identity.str(PK).unwrap_or_default(), self.identity.str(SK).unwrap_or_default())
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
        self.item.insert(PK, s(&key.pk));
        self.item.insert(SK, s(&key.sk));
        self.item.insert("occurred_at", super::item::time(at));
        if at == self.sent_time {
            self.item.remove("client_occurred_at");
        } else {
            self.item.insert("client_occurred_at", super::item::time(self.sent_time));
        }
        self.item.insert(TTL_ATTRIBUTE, n((at + Duration::days(i64::from(self.keep_days))).timestamp()));
    }

    /// The journal's copy: the same attributes under the hour's journal,
    /// kept as long as the rollups.
    fn journal_copy(&self, tenant: &str) -> Attrs {
        let mut copy = self.item.clone();
        copy.remove(GSI1_PK);
        copy.insert(PK, s(keys::journal_pk(tenant, &time::hour_label(self.placed_at))));
        copy.insert(TTL_ATTRIBUTE, n((self.placed_at + Duration::days(i64::from(self.rollup_days))).timestamp()));
        copy
    }
}

/// Maps an event to its items: the event at its corrected time
/// ([`ItemKey::of_event`]) and its identity at the sender's time
/// ([`ItemKey::identity_of`]), so a resend finds the identity whatever
/// its own corrected time.
pub fn event_write(tenant: &str, event: Event, shards: u16, retention: &Retention) -> EventWrite {
    event_write_received(tenant, event, shards, retention, None)
}

/// A batch's events share one receive time: [`event_write`] given it
/// written once for the batch ([`Received`]).
pub fn event_write_received(tenant: &str, event: Event, shards: u16, retention: &Retention, received: Option<&Received>) -> EventWrite {
    let key = ItemKey::of_event(tenant, &event, shards);
    let identity_key = ItemKey::identity_of(tenant, &event, shards);
    let keep_days = retention_days(event.kind(), retention);
    let ttl = expires_at(&event, retention);
    let late = event.received_at - event.occurred_at;
    let journal = late > Duration::seconds(i64::from(keep_days) * 86_400 / 4);
    let placed_at = event.occurred_at;
    let sent_time = event.identity_time();
    let mut item = Attrs::with_capacity(26);
    // Only activity is read per user (the feeds); other kinds are read
    // through rollups, so their user index entry would be a wasted write.
    if let (Some(u), EventBody::Activity(_)) = (&event.user_id, &event.body) {
        item.push(GSI1_PK, s(keys::user_pk(tenant, u)));
    }
    item.push(TTL_ATTRIBUTE, n(ttl));
    super::item::put_event(&mut item, event, received);
    let mut identity = Attrs::with_capacity(7);
    identity.push(EVENT_PK, s(&key.pk));
    identity.push(EVENT_SK, s(&key.sk));
    identity.push(PK, s(identity_key.pk));
    identity.push(SK, s(identity_key.sk));
    identity.push(TTL_ATTRIBUTE, n(ttl));
    if journal {
        identity.push(JOURNALED, AttributeValue::Bool(true));
    }
    item.push(PK, s(key.pk));
    item.push(SK, s(key.sk));
    EventWrite { placed_at, identity, item, sent_time, keep_days, rollup_days: retention.rollup_days, journal }
}

/// A receive time and its attribute as the event items hold it, written
/// once for a batch ([`event_write_received`]); an event received at
/// another instant has its own written instead, so the two never differ.
pub struct Received {
    at: DateTime<Utc>,
    text: AttributeValue,
}

impl Received {
    pub fn new(at: DateTime<Utc>) -> Received {
        Received { at, text: super::item::time(at) }
    }

    /// The attribute of `at`: this one's when it is the same instant.
    pub(super) fn attribute(received: Option<&Received>, at: DateTime<Utc>) -> AttributeValue {
        match received {
            Some(r) if r.at == at => r.text.clone(),
            _ => super::item::time(at),
        }
    }
}

/// Size of an item as DynamoDB bills it (names plus values, approximately
/// for numbers): each started KB is a write unit, per index written.
pub fn item_size<'a, K: AsRef<str>>(item: impl IntoIterator<Item = (K, &'a AttributeValue)>) -> usize {
    fn value_size(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + value_size(v) + 1).sum::<usize>(),
            AttributeValue::L(l) => 3 + l.iter().map(|v| value_size(v) + 1).sum::<usize>(),
            AttributeValue::Ss(ss) => ss.iter().map(String::len).sum(),
            AttributeValue::B(b) => b.as_ref().len(),
            _ => 8,
        }
    }
    item.into_iter().map(|(k, v)| k.as_ref().len() + value_size(v)).sum()
}

/// Write units one item costs: one per started KB on the table and on
/// each index the item appears in.
pub fn write_units(item: &Attrs) -> usize {
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

mod put;

impl Events<'_> {
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
            self.t.collect_items::<StoredEvent>(query)
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
        self.t.collect_items(query).await
    }
}

#[cfg(test)]
mod tests;
