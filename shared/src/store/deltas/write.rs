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
            let keys: Vec<(&str, &str)> = keys.iter().map(|k| (k.pk.as_str(), k.sk.as_str())).collect();
            let mut item = self.delta_key(tenant, hour, writer);
            item.insert(STATE.into(), s(PENDING));
            item.insert(AT.into(), n(received.timestamp_millis()));
            item.insert(WRITER.into(), s(writer));
            item.insert(KEYS.into(), AttributeValue::B(Blob::new(serde_json::to_vec(&keys).map_err(StoreError::corrupt)?)));
            item.insert(TTL_ATTRIBUTE.into(), n(expiry(hour)));
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
        for hour in stored.keys() {
            if fastrand::u32(..COMPACT_ODDS) == 0
                && let Err(e) = self.compact(tenant, hour).await
            {
                tracing::warn!(hour = %hour, error = %e, "hour deltas not compacted");
            }
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
        let at = received.timestamp_millis();
        let live = stored.iter().filter(|(h, _)| crate::time::parse_hour(h).is_some_and(|h| is_live(h, received)));
        let puts = live.map(|(hour, events)| async move {
            let mut item = self.delta_key(tenant, hour, writer);
            item.insert(STATE.into(), s(DONE));
            item.insert(AT.into(), n(at));
            item.insert(WRITER.into(), s(writer));
            item.insert(TTL_ATTRIBUTE.into(), n(expiry(hour)));
            Body::of(at, events.iter().map(|(k, e)| (k, e))).attributes(&mut item)?;
            self.t.put(item).await
        });
        futures::future::try_join_all(puts).await.map(drop)
    }

    /// Sets a pending delta done with its body; false when it was done
    /// already (by its writer or by a reader that resolved it).
    pub(super) async fn settle(self, tenant: &str, hour: &str, writer: &str, body: &Body) -> Result<bool, StoreError> {
        let mut values = Item::new();
        body.attributes(&mut values)?;
        let res = self
            .t
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(self.delta_key(tenant, hour, writer)))
            .update_expression("SET #st = :d, #r = :r, #a = :a REMOVE #k")
            .condition_expression("#st = :p")
            .expression_attribute_names("#st", STATE)
            .expression_attribute_names("#r", ROLLUP)
            .expression_attribute_names("#a", AHEAD)
            .expression_attribute_names("#k", KEYS)
            .expression_attribute_values(":d", s(DONE))
            .expression_attribute_values(":p", s(PENDING))
            .expression_attribute_values(":r", values.remove(ROLLUP).expect("set above"))
            .expression_attribute_values(":a", values.remove(AHEAD).expect("set above"))
            .send()
            .await;
        crate::store::table::condition_held(res)
    }
}
