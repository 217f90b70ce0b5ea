//! Health snapshots: one item each, under the tenant's day, kept for the
//! metrics retention.

use crate::time;
use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::events::EventStore;
use super::keys;
use super::table::{PK, SK, TTL_ATTRIBUTE};
use super::{StoreError, n, s};
use crate::model::HealthSnapshot;

impl EventStore {
    /// Stores a snapshot; it expires `retention_days` after its capture.
    pub async fn put_snapshot(&self, tenant: &str, snap: &HealthSnapshot, retention_days: u32) -> Result<(), StoreError> {
        let mut item: super::Item = serde_dynamo::to_item(snap)?;
        item.insert(PK.into(), s(keys::health_pk(tenant, &time::day_label(snap.captured_at))));
        item.insert(SK.into(), s(snap.captured_at.to_rfc3339_opts(SecondsFormat::Millis, true)));
        item.insert(TTL_ATTRIBUTE.into(), n((snap.captured_at + Duration::days(i64::from(retention_days))).timestamp()));
        self.client().put_item().table_name(&self.config().table).set_item(Some(item)).send().await.map_err(StoreError::sdk)?;
        Ok(())
    }

    /// The latest unexpired snapshot of today or yesterday (UTC).
    pub async fn latest_snapshot(&self, tenant: &str, now: DateTime<Utc>) -> Result<Option<HealthSnapshot>, StoreError> {
        for day in [now, now - Duration::days(1)] {
            let out = self
                .query()
                .key_condition_expression("pk = :p")
                .filter_expression("#ttl > :now")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":p", s(keys::health_pk(tenant, &time::day_label(day))))
                .expression_attribute_values(":now", n(now.timestamp()))
                .scan_index_forward(false)
                .limit(5)
                .send()
                .await
                .map_err(StoreError::sdk)?;
            if let Some(item) = out.items.unwrap_or_default().into_iter().next() {
                return Ok(Some(serde_dynamo::from_item(item)?));
            }
        }
        Ok(None)
    }
}
