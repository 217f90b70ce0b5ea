//! Rollups in the table, the dirty-hour markers that say which hours must be
//! rolled up again, and the roll-up itself.
//!
//! Ingest marks every hour it writes to, before and after writing: the
//! marker's version (`v`) grows with each mark. The roll-up reads a marker,
//! recomputes its hour from the raw events, rewrites the hour's and the
//! day's rollups, and only then deletes the marker, on condition that its
//! version did not move. A batch that landed meanwhile has bumped the
//! version, so its hour stays dirty for the next run: no event is ever left
//! out of a rollup, and recomputing makes every run idempotent.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::events::EventStore;
use super::keys;
use super::table::{GSI1, GSI1_PK, PK, SK, TTL_ATTRIBUTE};
use super::{Item, StoreError, n, s};
use crate::config::Retention;
use crate::rollup::Rollup;

/// How long a stored rollup covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Hour,
    Day,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Hour => "hour",
            Resolution::Day => "day",
        }
    }
}

/// A rollup is stored as JSON, split over items of at most this size (the
/// item limit is 400 KB), so a tenant with many users or endpoints still fits.
const PART_BYTES: usize = 350 * 1024;

/// Parses `yyyy-mm-ddThh`.
pub fn parse_hour(label: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(&format!("{label}:00"), "%Y-%m-%dT%H:%M").ok().map(|t| t.and_utc())
}

/// Parses `yyyy-mm-dd` as the start of that UTC day.
pub fn parse_day(label: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDate::parse_from_str(label, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

/// The attributes a rollup folds (`Rollup::add`) and an event needs to be
/// read: the bulky free text (metadata, user agent, query parameters,
/// descriptions) and the keys stay in the table, a third of a request log.
const ROLLUP_ATTRIBUTES: [&str; 21] = [
    "event_id",
    "occurred_at",
    "client_occurred_at",
    "received_at",
    "user_id",
    "ip_address",
    "kind",
    "action",
    "custom",
    "client_id",
    "report",
    "endpoint",
    "method",
    "status_code",
    "response_time_ms",
    "sample_rate",
    "event_type",
    "success",
    "service",
    "cost_estimate",
    "error_message",
];

/// What one roll-up run of a tenant did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RollUpSummary {
    /// Hours recomputed from their raw events.
    pub hours: usize,
    /// Days rebuilt from their hours.
    pub days: usize,
    /// Hours written to again during the run: they stay dirty for the next.
    pub still_dirty: usize,
    /// Dirty hours left for the next run by the per-run bound.
    pub remaining: usize,
}

impl EventStore {
    /// Marks hours dirty: one update per hour, in parallel. Ingest calls it
    /// before writing (so an acknowledged event's hour is always marked) and
    /// after (so a roll-up that read the hour mid-write does not clear it).
    pub async fn mark_dirty(&self, tenant: &str, hours: &BTreeSet<String>) -> Result<(), StoreError> {
        let pk = keys::dirty_pk(tenant);
        let updates: Vec<_> = hours
            .iter()
            .map(|hour| {
                self.client()
                    .update_item()
                    .table_name(&self.config().table)
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
            .buffer_unordered(self.config().write_concurrency)
            .map_err(StoreError::sdk)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    /// The tenant's dirty hours and their marker versions (strongly consistent).
    pub async fn dirty_hours(&self, tenant: &str) -> Result<BTreeMap<String, u64>, StoreError> {
        let query = self
            .query()
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s(keys::dirty_pk(tenant)))
            .consistent_read(true);
        let mut out = BTreeMap::new();
        self.for_each_page(query, |items| {
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
    pub async fn clear_dirty(&self, tenant: &str, hour: &str, version: u64) -> Result<bool, StoreError> {
        let res = self
            .client()
            .delete_item()
            .table_name(&self.config().table)
            .key(PK, s(keys::dirty_pk(tenant)))
            .key(SK, s(hour))
            .condition_expression("v = :v")
            .expression_attribute_values(":v", n(version))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if matches!(e.err(), DeleteItemError::ConditionalCheckFailedException(_)) => Ok(false),
            Err(e) => Err(StoreError::sdk(e)),
        }
    }

    /// Tenants with dirty hours, found through the markers' index entries
    /// (eventually consistent: a tenant marked a moment ago may wait a run).
    pub async fn dirty_tenants(&self) -> Result<BTreeSet<String>, StoreError> {
        let query = self
            .query()
            .index_name(GSI1)
            .key_condition_expression("#g = :g")
            .expression_attribute_names("#g", GSI1_PK)
            .expression_attribute_values(":g", s(keys::DIRTY_INDEX_PK))
            .projection_expression("pk");
        let mut out = BTreeSet::new();
        self.for_each_page(query, |items| {
            for item in items {
                if let Some(t) = item.get(PK).and_then(|v| v.as_s().ok()).and_then(|pk| keys::tenant_of_dirty_pk(pk)) {
                    out.insert(t.to_owned());
                }
            }
            Ok(true)
        })
        .await?;
        Ok(out)
    }

    /// The rollup of the raw events placed in `[from, to)`, which lie in the
    /// hour starting at `hour`: every shard is read in parallel and folded
    /// page by page, so memory stays flat however busy the hour. Expired
    /// events are left out.
    pub async fn rollup_from_events(
        &self,
        tenant: &str,
        hour: DateTime<Utc>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Rollup, StoreError> {
        let projection = (0..ROLLUP_ATTRIBUTES.len()).map(|i| format!("#a{i}")).collect::<Vec<_>>().join(", ");
        let projection = &projection;
        let (low, high) = (keys::sk_from(from), keys::sk_before(to));
        let (low, high) = (&low, &high);
        let shards = keys::raw_partitions(tenant, hour, self.config().shards).into_iter().map(|pk| {
            let mut query = self
                .query()
                .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
                .filter_expression("#ttl > :now")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":p", s(pk))
                .expression_attribute_values(":a", s(low))
                .expression_attribute_values(":b", s(high))
                .expression_attribute_values(":now", n(now.timestamp()))
                .projection_expression(projection.as_str())
                .consistent_read(true);
            for (i, name) in ROLLUP_ATTRIBUTES.iter().enumerate() {
                query = query.expression_attribute_names(format!("#a{i}"), *name);
            }
            async move {
                let mut r = Rollup::default();
                self.for_each_page(query, |items| {
                    for item in items {
                        let e: crate::model::Event = serde_dynamo::from_item(item)?;
                        r.add(&e);
                    }
                    Ok(true)
                })
                .await?;
                Ok::<_, StoreError>(r)
            }
        });
        let parts = futures::future::try_join_all(shards).await?;
        let mut all = Rollup::default();
        for p in &parts {
            all.merge(p);
        }
        Ok(all)
    }

    /// Stores a rollup (replacing the bucket's previous one); an empty
    /// rollup removes the bucket instead.
    pub async fn put_rollup(&self, tenant: &str, res: Resolution, label: &str, rollup: &Rollup, expires_at: i64) -> Result<(), StoreError> {
        let pk = keys::rollup_pk(tenant, res.as_str());
        let old_parts = self.rollup_part_keys(&pk, label).await?;
        let data = if rollup.is_empty() { Vec::new() } else { serde_json::to_vec(rollup).map_err(StoreError::corrupt)? };
        let chunks: Vec<&[u8]> = data.chunks(PART_BYTES).collect();
        let rev = uuid::Uuid::now_v7().simple().to_string();
        for (i, chunk) in chunks.iter().enumerate() {
            let item: Item = [
                (PK.to_owned(), s(&pk)),
                (SK.to_owned(), s(format!("{label}#{i}"))),
                ("data".to_owned(), AttributeValue::B(Blob::new(*chunk))),
                ("parts".to_owned(), n(chunks.len())),
                ("rev".to_owned(), s(&rev)),
                (TTL_ATTRIBUTE.to_owned(), n(expires_at)),
            ]
            .into();
            self.client().put_item().table_name(&self.config().table).set_item(Some(item)).send().await.map_err(StoreError::sdk)?;
        }
        for sk in old_parts.into_iter().skip(chunks.len()) {
            self.client()
                .delete_item()
                .table_name(&self.config().table)
                .key(PK, s(&pk))
                .key(SK, s(sk))
                .send()
                .await
                .map_err(StoreError::sdk)?;
        }
        Ok(())
    }

    async fn rollup_part_keys(&self, pk: &str, label: &str) -> Result<Vec<String>, StoreError> {
        let query = self
            .query()
            .key_condition_expression("pk = :p AND begins_with(sk, :l)")
            .expression_attribute_values(":p", s(pk))
            .expression_attribute_values(":l", s(format!("{label}#")))
            .projection_expression("sk")
            .consistent_read(true);
        let mut out = Vec::new();
        self.for_each_page(query, |items| {
            out.extend(items.into_iter().filter_map(|i| i.get(SK).and_then(|v| v.as_s().ok()).cloned()));
            Ok(true)
        })
        .await?;
        out.sort_by_key(|sk| sk.rsplit('#').next().and_then(|p| p.parse::<usize>().ok()).unwrap_or(0));
        Ok(out)
    }

    /// Stored rollups of the buckets `first..=last` (labels), unexpired.
    pub async fn rollups(
        &self,
        tenant: &str,
        res: Resolution,
        first: &str,
        last: &str,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, Rollup>, StoreError> {
        let query = self
            .query()
            .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
            .filter_expression("#ttl > :now")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":p", s(keys::rollup_pk(tenant, res.as_str())))
            .expression_attribute_values(":a", s(format!("{first}#")))
            .expression_attribute_values(":b", s(format!("{last}#~")))
            .expression_attribute_values(":now", n(now.timestamp()));
        // (label) -> (rev, expected parts, parts in order)
        let mut parts: BTreeMap<String, (String, usize, Vec<Vec<u8>>)> = BTreeMap::new();
        self.for_each_page(query, |items| {
            for item in items {
                let sk = item.get(SK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                let label = sk.rsplit_once('#').map(|(l, _)| l.to_owned()).unwrap_or_default();
                let rev = item.get("rev").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                let count = item.get("parts").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(1);
                let data = item.get("data").and_then(|v| v.as_b().ok()).map(|b| b.as_ref().to_vec()).unwrap_or_default();
                let entry = parts.entry(label).or_insert_with(|| (rev.clone(), count, Vec::new()));
                if entry.0 != rev {
                    return Err(StoreError::unavailable("a rollup is being rewritten; retry"));
                }
                entry.2.push(data);
            }
            Ok(true)
        })
        .await?;
        let mut out = BTreeMap::new();
        for (label, (_, count, chunks)) in parts {
            if chunks.len() != count {
                return Err(StoreError::unavailable("a rollup is being rewritten; retry"));
            }
            let bytes = chunks.concat();
            let rollup: Rollup = serde_json::from_slice(&bytes).map_err(|e| StoreError::corrupt(format!("rollup {label}: {e}")))?;
            out.insert(label, rollup);
        }
        Ok(out)
    }

    /// Rolls up the tenant's dirty hours, oldest first and at most
    /// `max_hours` of them, then rebuilds their days, then clears the
    /// markers that did not move meanwhile.
    pub async fn roll_up_tenant(
        &self,
        tenant: &str,
        now: DateTime<Utc>,
        retention: &Retention,
        max_hours: usize,
    ) -> Result<RollUpSummary, StoreError> {
        let dirty = self.dirty_hours(tenant).await?;
        if let Some(first) = dirty.keys().next() {
            self.register_tenant(tenant, first, now, retention.rollup_days).await?;
        }
        let remaining = dirty.len().saturating_sub(max_hours);
        let todo: Vec<(String, u64, DateTime<Utc>)> =
            dirty.into_iter().take(max_hours).filter_map(|(label, v)| parse_hour(&label).map(|h| (label, v, h))).collect();
        let keep = |t: DateTime<Utc>| (t + Duration::days(i64::from(retention.rollup_days))).timestamp();
        futures::stream::iter(todo.iter().map(|(label, _, hour)| async move {
            let r = self.rollup_from_events(tenant, *hour, *hour, *hour + Duration::hours(1), now).await?;
            self.put_rollup(tenant, Resolution::Hour, label, &r, keep(*hour)).await
        }))
        .buffer_unordered(4)
        .try_collect::<Vec<_>>()
        .await?;
        let days: BTreeSet<String> = todo.iter().map(|(_, _, h)| keys::day_label(*h)).collect();
        for day in &days {
            self.rebuild_day(tenant, day, now, retention).await?;
        }
        let mut still_dirty = 0;
        for (label, v, _) in &todo {
            if !self.clear_dirty(tenant, label, *v).await? {
                still_dirty += 1;
            }
        }
        Ok(RollUpSummary { hours: todo.len(), days: days.len(), still_dirty, remaining })
    }

    /// Rebuilds a day's rollup (`yyyy-mm-dd`) from its stored hours.
    pub async fn rebuild_day(&self, tenant: &str, day: &str, now: DateTime<Utc>, retention: &Retention) -> Result<(), StoreError> {
        let Some(start) = parse_day(day) else { return Err(StoreError::corrupt(format!("bad day label {day}"))) };
        let hours = self.rollups(tenant, Resolution::Hour, &format!("{day}T00"), &format!("{day}T23"), now).await?;
        let mut total = Rollup::default();
        for r in hours.values() {
            total.merge(r);
        }
        total.slots.clear();
        for u in total.users.values_mut() {
            u.slots = 0;
        }
        let expires = (start + Duration::days(i64::from(retention.rollup_days))).timestamp();
        self.put_rollup(tenant, Resolution::Day, day, &total, expires).await
    }
}
