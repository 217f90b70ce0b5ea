//! Cached query results, one item each under the tenant's cache partition,
//! expiring by TTL (and skipped once past it, like every read).

use crate::store::ItemExt;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use super::events::EventStore;
use super::keys;
use super::table::{PK, SK, TTL_ATTRIBUTE};
use super::{Item, StoreError, n, s};

impl EventStore {
    /// A cached body, unless absent or expired.
    pub async fn cached(&self, tenant: &str, key: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(&self.config().table)
            .key(PK, s(keys::cache_pk(tenant)))
            .key(SK, s(key))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let Some(item) = out.item else { return Ok(None) };
        let fresh = item.unexpired(now);
        Ok(if fresh { item.str("body").map(str::to_owned) } else { None })
    }

    /// Caches a body for `ttl_seconds`.
    pub async fn put_cached(&self, tenant: &str, key: &str, body: &str, ttl_seconds: u32, now: DateTime<Utc>) -> Result<(), StoreError> {
        let item: Item = [
            (PK.to_owned(), s(keys::cache_pk(tenant))),
            (SK.to_owned(), s(key)),
            ("body".to_owned(), s(body)),
            (TTL_ATTRIBUTE.to_owned(), n(now.timestamp() + i64::from(ttl_seconds))),
        ]
        .into();
        self.client().put_item().table_name(&self.config().table).set_item(Some(item)).send().await.map_err(StoreError::sdk)?;
        Ok(())
    }

    /// Drops every cached result of the tenant; returns how many.
    pub async fn invalidate_cache(&self, tenant: &str) -> Result<usize, StoreError> {
        let pk = keys::cache_pk(tenant);
        let query = self.query().key_condition_expression("pk = :p").expression_attribute_values(":p", s(&pk)).projection_expression("sk");
        let mut sks = Vec::new();
        self.for_each_page(query, |items| {
            sks.extend(items.into_iter().filter_map(|i| i.str(SK).map(str::to_owned)));
            Ok(true)
        })
        .await?;
        let count = sks.len();
        futures::stream::iter(
            sks.into_iter().map(|sk| self.client().delete_item().table_name(&self.config().table).key(PK, s(&pk)).key(SK, s(sk)).send()),
        )
        .buffer_unordered(self.config().write_concurrency)
        .map_err(StoreError::sdk)
        .try_collect::<Vec<_>>()
        .await?;
        Ok(count)
    }
}
