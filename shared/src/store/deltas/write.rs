//! The write side of hour deltas: a request's pending deltas, their
//! confirmation, and a bulk load's done deltas.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::store::events::{ItemKey, WRITER};
use crate::store::table::TTL_ATTRIBUTE;
use crate::store::{Item, StoreError, n, s};

impl HourDeltas<'_> {
    /// Before a request's items: its pending delta in each live hour, with
    /// the keys it is about to write there.
    pub async fn begin(
        self,
        tenant: &str,
        writer: &str,
        received: DateTime<Utc>,
        hours: &BTreeMap<String, Vec<ItemKey>>,
    ) -> Result<(), StoreError> {
        if hours.is_empty() {
            return Ok(());
        }
        // Once per process: from now on this code keeps deltas.
        if self.since().await?.is_none() {
            self.record_since((received + Duration::hours(25)).timestamp_millis()).await?;
        }
        let puts = hours.iter().map(|(hour, keys)| async move {
            let item = pending_item(tenant, hour, writer, received, keys)?;
            let request =
                self.t.client().put_item().table_name(self.table()).set_item(Some(item)).condition_expression("attribute_not_exists(pk)");
            match crate::store::put_once(request, WRITER).await? {
                crate::store::Put::Written => Ok(()),
                crate::store::Put::Exists(_) => Err(StoreError::corrupt("a delta of this writer exists already")),
                crate::store::Put::Refused(why) => Err(StoreError::corrupt(why)),
            }
        });
        futures::future::try_join_all(puts).await.map(drop)
    }

    /// After a request's items: each of its pending deltas confirmed with
    /// what it stored in that hour (`stored`: hour label to the keys and
    /// events stored; every begun hour is named, an empty one too).
    pub async fn confirm(
        self,
        tenant: &str,
        writer: &str,
        received: DateTime<Utc>,
        stored: &BTreeMap<String, Vec<(ItemKey, Event)>>,
    ) -> Result<(), StoreError> {
        let at = received.timestamp_millis();
        let updates = stored.iter().map(|(hour, events)| async move {
            let body = Body::of(at, events.iter().map(|(k, e)| (k, e)));
            self.settle(tenant, hour, writer, &body).await.map(drop)
        });
        futures::future::try_join_all(updates).await?;
        for hour in stored.keys().filter(|_| fastrand::u32(..COMPACT_ODDS) == 0) {
            self.compact_quietly(tenant, hour).await;
        }
        Ok(())
    }

    /// A bulk load's done deltas, for the items it wrote at once without
    /// the conditional puts of a request (`stored`: hour label to the keys
    /// and events written; live hours only are kept): the same deltas a
    /// request storing them would have confirmed.
    pub async fn record(
        self,
        tenant: &str,
        writer: &str,
        received: DateTime<Utc>,
        stored: &BTreeMap<String, Vec<(ItemKey, Event)>>,
    ) -> Result<(), StoreError> {
        let live = stored.iter().filter(|(h, _)| crate::time::parse_hour(h).is_some_and(|h| is_live(h, received)));
        let puts = live.map(|(hour, events)| async move {
            let item = done_item(tenant, hour, writer, received, events)?;
            self.t.put(item).await
        });
        futures::future::try_join_all(puts).await.map(drop)
    }

    /// Sets a pending delta done with its body; false when it was done
    /// already (by its writer or by a reader that resolved it).
    pub(super) async fn settle(self, tenant: &str, hour: &str, writer: &str, body: &Body) -> Result<bool, StoreError> {
        let (values, raw) = settled_values(body)?;
        let mut set = vec!["#st = :d".to_owned(), "#x = :x".to_owned()];
        let mut update = self
            .t
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(delta_key(tenant, hour, writer)))
            .condition_expression("#st = :p")
            .expression_attribute_values(":x", AttributeValue::Bool(raw))
            .expression_attribute_values(":d", s(DONE))
            .expression_attribute_values(":p", s(PENDING))
            .expression_attribute_names("#st", STATE)
            .expression_attribute_names("#x", RAW)
            .expression_attribute_names("#k", KEYS);
        // Whatever the body sets (its fives are left out when too large).
        for (i, (name, value)) in values.into_iter().enumerate() {
            set.push(format!("#b{i} = :b{i}"));
            update = update.expression_attribute_names(format!("#b{i}"), name).expression_attribute_values(format!(":b{i}"), value);
        }
        let res = update.update_expression(format!("SET {} REMOVE #k", set.join(", "))).send().await;
        crate::store::table::condition_held(res)
    }
}

/// What confirming a delta with `body` sets, and whether it is raw. A body
/// too large for an item first drops its fives (the hour's alert window is
/// then read raw); one whose rollup alone outgrows an item (thousands of
/// distinct endpoints or users in one batch) leaves its hour to be read
/// raw.
pub(super) fn settled_values(body: &Body) -> Result<(Item, bool), StoreError> {
    let mut values = Item::new();
    body.attributes(&mut values)?;
    if crate::store::events::item_size(&values) <= MAX_BODY_BYTES {
        return Ok((values, false));
    }
    values.remove(RECENT);
    values.remove(RECENT_FROM);
    if crate::store::events::item_size(&values) <= MAX_BODY_BYTES {
        return Ok((values, false));
    }
    let mut values = Item::new();
    Body::default().attributes(&mut values)?;
    Ok((values, true))
}

/// A request's pending delta in one hour.
fn pending_item(tenant: &str, hour: &str, writer: &str, received: DateTime<Utc>, keys: &[ItemKey]) -> Result<Item, StoreError> {
    // By partition: a batch's keys share a few partition keys (its shards
    // and activity partitions), written once each.
    let mut by_pk: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for k in keys {
        by_pk.entry(k.pk.as_str()).or_default().push(k.sk.as_str());
    }
    let keys = by_pk;
    let mut item = delta_key(tenant, hour, writer);
    item.insert(STATE.into(), s(PENDING));
    item.insert(AT.into(), n(received.timestamp_millis()));
    item.insert(WRITER.into(), s(writer));
    item.insert(KEYS.into(), AttributeValue::B(Blob::new(serde_json::to_vec(&keys).map_err(StoreError::corrupt)?)));
    item.insert(TTL_ATTRIBUTE.into(), n(expiry(hour)));
    Ok(item)
}

/// A done delta: what a request stored in one hour.
fn done_item(tenant: &str, hour: &str, writer: &str, received: DateTime<Utc>, events: &[(ItemKey, Event)]) -> Result<Item, StoreError> {
    let at = received.timestamp_millis();
    let mut item = delta_key(tenant, hour, writer);
    item.insert(STATE.into(), s(DONE));
    item.insert(AT.into(), n(at));
    item.insert(WRITER.into(), s(writer));
    item.insert(TTL_ATTRIBUTE.into(), n(expiry(hour)));
    Body::of(at, events.iter().map(|(k, e)| (k, e))).attributes(&mut item)?;
    Ok(item)
}

/// Write units one request's delta in one hour costs, as DynamoDB bills
/// them: its pending put, the update that confirms it (billed at the larger
/// of the two sizes), its delete after the compaction that folds it, and
/// its share of that compaction's partial (`partial_bytes`, folded with
/// `folded` deltas).
pub fn request_write_units(
    events: &[(ItemKey, Event)],
    received: DateTime<Utc>,
    partial_bytes: usize,
    folded: usize,
) -> Result<f64, StoreError> {
    let units = |item: &Item| crate::store::events::item_size(item).div_ceil(1024).max(1);
    let keys: Vec<ItemKey> = events.iter().map(|(k, _)| k.clone()).collect();
    let (hour, writer) = ("2026-01-01T00", "0123456789abcdef");
    let pending = units(&pending_item("tenant", hour, writer, received, &keys)?);
    let done = units(&done_item("tenant", hour, writer, received, events)?);
    let partial = partial_bytes.div_ceil(1024).max(1) as f64 / folded.max(1) as f64;
    Ok((pending + pending.max(done) + done) as f64 + partial)
}
