//! The dirty-hour markers: which hours ingest wrote to since their last
//! roll-up (see `store::rollups` for the protocol).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use super::keys;
use super::table::{GSI1, GSI1_PK, PK, SK, Table, condition_held};
use super::{ItemExt, StoreError, n, s};

/// The dirty-hour markers of every tenant.
#[derive(Clone, Copy)]
pub struct Markers<'t> {
    pub(super) t: &'t Table,
}

impl Markers<'_> {
    /// Marks hours dirty: one update per hour, in parallel. Ingest calls it
    /// before writing (so an acknowledged event's hour is always marked) and
    /// after (so a roll-up that read the hour mid-write does not clear it).
    pub async fn mark(self, tenant: &str, hours: &BTreeSet<String>) -> Result<(), StoreError> {
        let pk = keys::dirty_pk(tenant);
        let updates: Vec<_> = hours
            .iter()
            .map(|hour| {
                self.t
                    .client()
                    .update_item()
                    .table_name(&self.t.config().table)
                    .key(PK, s(&pk))
                    .key(SK, s(hour))
                    .update_expression("ADD v :one SET #g = :g")
                    .expression_attribute_names("#g", GSI1_PK)
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":g", s(keys::DIRTY_INDEX_PK))
                    .send()
            })
            .collect();
        futures::stream::iter(updates)
            .buffer_unordered(self.t.config().write_concurrency)
            .map_err(StoreError::sdk)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    /// The tenant's dirty hours and their marker versions (strongly consistent).
    pub async fn dirty_hours(self, tenant: &str) -> Result<BTreeMap<String, u64>, StoreError> {
        self.dirty_hours_between(tenant, None).await
    }

    /// The start of the oldest hour still waiting for the roll-up (one
    /// item read).
    pub async fn oldest_dirty_hour(self, tenant: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let out = self
            .t
            .query()
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s(keys::dirty_pk(tenant)))
            .limit(1)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        self.t.count_read(out.items.as_ref().map_or(0, Vec::len));
        Ok(out.items.unwrap_or_default().first().and_then(|i| i.str(SK)).and_then(crate::time::parse_hour))
    }

    /// The dirty hours whose labels lie within `first..=last` (all of them
    /// with `None`): a period read looks only at its own hours' markers.
    pub async fn dirty_hours_between(self, tenant: &str, labels: Option<(&str, &str)>) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut query = self.t.query().expression_attribute_values(":p", s(keys::dirty_pk(tenant))).consistent_read(true);
        query = match labels {
            Some((a, b)) => query
                .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
                .expression_attribute_values(":a", s(a))
                .expression_attribute_values(":b", s(b)),
            None => query.key_condition_expression("pk = :p"),
        };
        let mut out = BTreeMap::new();
        self.t
            .for_each_page(query, |items| {
                for item in items {
                    if let (Some(AttributeValue::S(hour)), Some(AttributeValue::N(v))) = (item.get(SK), item.get("v")) {
                        out.insert(hour.clone(), v.parse().unwrap_or(0));
                    }
                }
                Ok(true)
            })
            .await?;
        Ok(out)
    }

    /// Deletes an hour's marker unless it was marked again since `version`
    /// was read; `false` when it was (the hour stays dirty).
    pub async fn clear(self, tenant: &str, hour: &str, version: u64) -> Result<bool, StoreError> {
        let res = self
            .t
            .client()
            .delete_item()
            .table_name(&self.t.config().table)
            .key(PK, s(keys::dirty_pk(tenant)))
            .key(SK, s(hour))
            .condition_expression("v = :v")
            .expression_attribute_values(":v", n(version))
            .send()
            .await;
        condition_held(res)
    }

    /// Tenants with dirty hours, found through the markers' index entries
    /// (eventually consistent: a tenant marked a moment ago may wait a run).
    pub async fn dirty_tenants(self) -> Result<BTreeSet<String>, StoreError> {
        let query = self
            .t
            .query()
            .index_name(GSI1)
            .key_condition_expression("#g = :g")
            .expression_attribute_names("#g", GSI1_PK)
            .expression_attribute_values(":g", s(keys::DIRTY_INDEX_PK))
            .projection_expression("pk");
        let mut out = BTreeSet::new();
        self.t
            .for_each_page(query, |items| {
                for item in items {
                    if let Some(t) = item.str(PK).and_then(|pk| keys::tenant_of_dirty_pk(pk)) {
                        out.insert(t.to_owned());
                    }
                }
                Ok(true)
            })
            .await?;
        Ok(out)
    }
}
