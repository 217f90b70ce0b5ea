//! Rollups in the table and the dirty-hour markers that say which hours
//! must be rolled up again. How an hour's figures are made (from its raw
//! events, or kept where raw retention has passed) is `store::hours`.
//!
//! Ingest marks every hour it writes to, before and after writing: the
//! marker's version (`v`) grows with each mark. The roll-up reads a marker,
//! recomputes its hour, rewrites the hour's and the day's rollups, and only
//! then deletes the marker, on condition that its version did not move. A
//! batch that landed meanwhile has bumped the version, so its hour stays
//! dirty for the next run: no event is ever left out of a rollup, and
//! recomputing makes every run idempotent.
//!
//! A stored rollup is JSON split over items of at most [`PART_BYTES`], all
//! parts of one write sharing a revision in their sort key
//! (`{label}#{rev}#{part}`); the old revision is deleted only once the new
//! one is whole, and readers take the newest whole revision, so a write cut
//! short never leaves a bucket unreadable or half old, half new.

use crate::store::ItemExt;
use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::events::EventStore;
use super::keys;
use super::table::{GSI1, GSI1_PK, PK, SK, TTL_ATTRIBUTE};
use super::{Item, StoreError, n, s};
use crate::model::EventKind;
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

/// The largest part of a stored rollup (the item limit is 400 KB).
const PART_BYTES: usize = 350 * 1024;

/// How one kind's figures of a stored hour were made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindState {
    /// The kind's raw events of the hour may have expired: its figures are
    /// kept as stored, and only journaled late events are added.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub frozen: bool,
    /// The earliest TTL among the raw events counted (epoch seconds): raw
    /// figures can be recomputed only before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_until: Option<i64>,
    /// The journal entries (sort keys) already counted.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub absorbed: BTreeSet<String>,
}

/// A stored rollup and, for an hour, how each kind's figures were made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredRollup {
    pub rollup: Rollup,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kinds: BTreeMap<EventKind, KindState>,
}

impl StoredRollup {
    pub fn is_empty(&self) -> bool {
        self.rollup.is_empty() && self.kinds.values().all(|k| k.absorbed.is_empty() && !k.frozen)
    }

    /// A stored document: this form, or a bare rollup as written before
    /// hours kept their kinds' states.
    fn parse(bytes: &[u8]) -> Result<StoredRollup, serde_json::Error> {
        serde_json::from_slice::<StoredRollup>(bytes).or_else(|e| {
            serde_json::from_slice::<Rollup>(bytes).map(|rollup| StoredRollup { rollup, kinds: BTreeMap::new() }).map_err(|_| e)
        })
    }
}

/// The parts of one revision of a stored rollup, as read.
struct Revision {
    parts: usize,
    chunks: BTreeMap<usize, Vec<u8>>,
}

/// `{label}#{rev}#{part}` (or, as first written, `{label}#{part}` with the
/// revision in an attribute).
fn split_part_key(sk: &str, rev_attr: &str) -> Option<(String, String, usize)> {
    let mut it = sk.split('#');
    let label = it.next()?.to_owned();
    match (it.next(), it.next()) {
        (Some(rev), Some(part)) => Some((label, rev.to_owned(), part.parse().ok()?)),
        (Some(part), None) => Some((label, rev_attr.to_owned(), part.parse().ok()?)),
        _ => None,
    }
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
        self.dirty_hours_between(tenant, None).await
    }

    /// The dirty hours whose labels lie within `first..=last` (all of them
    /// with `None`): a period read looks only at its own hours' markers.
    pub async fn dirty_hours_between(&self, tenant: &str, labels: Option<(&str, &str)>) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut query = self.query().expression_attribute_values(":p", s(keys::dirty_pk(tenant))).consistent_read(true);
        query = match labels {
            Some((a, b)) => query
                .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
                .expression_attribute_values(":a", s(a))
                .expression_attribute_values(":b", s(b)),
            None => query.key_condition_expression("pk = :p"),
        };
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
                if let Some(t) = item.str(PK).and_then(|pk| keys::tenant_of_dirty_pk(pk)) {
                    out.insert(t.to_owned());
                }
            }
            Ok(true)
        })
        .await?;
        Ok(out)
    }

    /// Stores a rollup, replacing the bucket's previous one once the new
    /// one is whole; an empty rollup removes the bucket instead.
    pub async fn put_rollup(
        &self,
        tenant: &str,
        res: Resolution,
        label: &str,
        doc: &StoredRollup,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let pk = keys::rollup_pk(tenant, res.as_str());
        let old_parts = self.rollup_part_keys(&pk, label).await?;
        let data = if doc.is_empty() { Vec::new() } else { serde_json::to_vec(doc).map_err(StoreError::corrupt)? };
        let chunks: Vec<&[u8]> = data.chunks(PART_BYTES).collect();
        let rev = uuid::Uuid::now_v7().simple().to_string();
        for (i, chunk) in chunks.iter().enumerate() {
            let item: Item = [
                (PK.to_owned(), s(&pk)),
                (SK.to_owned(), s(format!("{label}#{rev}#{i}"))),
                ("data".to_owned(), AttributeValue::B(Blob::new(*chunk))),
                ("parts".to_owned(), n(chunks.len())),
                ("rev".to_owned(), s(&rev)),
                (TTL_ATTRIBUTE.to_owned(), n(expires_at)),
            ]
            .into();
            self.client().put_item().table_name(&self.config().table).set_item(Some(item)).send().await.map_err(StoreError::sdk)?;
        }
        for sk in old_parts {
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

    /// Sort keys of every stored part of a bucket (any revision).
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
            out.extend(items.into_iter().filter_map(|i| i.str(SK).map(str::to_owned)));
            Ok(true)
        })
        .await?;
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
        Ok(self.stored_rollups(tenant, res, first, last, now, false).await?.into_iter().map(|(k, d)| (k, d.rollup)).collect())
    }

    /// Stored documents of the buckets `first..=last`, unexpired: for each,
    /// the newest revision whose parts are all there. `consistent` reads
    /// what was written a moment ago (the roll-up, after writing hours).
    pub async fn stored_rollups(
        &self,
        tenant: &str,
        res: Resolution,
        first: &str,
        last: &str,
        now: DateTime<Utc>,
        consistent: bool,
    ) -> Result<BTreeMap<String, StoredRollup>, StoreError> {
        let query = self
            .query()
            .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
            .filter_expression("#ttl > :now")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":p", s(keys::rollup_pk(tenant, res.as_str())))
            .expression_attribute_values(":a", s(format!("{first}#")))
            .expression_attribute_values(":b", s(format!("{last}#~")))
            .expression_attribute_values(":now", n(now.timestamp()))
            .consistent_read(consistent);
        let mut revisions: BTreeMap<String, BTreeMap<String, Revision>> = BTreeMap::new();
        self.for_each_page(query, |items| {
            for item in items {
                let get_s = |k: &str| item.str(k).map(str::to_owned).unwrap_or_default();
                let Some((label, rev, part)) = split_part_key(&get_s(SK), &get_s("rev")) else { continue };
                let parts = item.num("parts").unwrap_or(1);
                let data = item.bytes("data").map(<[u8]>::to_vec).unwrap_or_default();
                let r = revisions.entry(label).or_default().entry(rev).or_insert_with(|| Revision { parts, chunks: BTreeMap::new() });
                r.chunks.insert(part, data);
            }
            Ok(true)
        })
        .await?;
        let mut out = BTreeMap::new();
        for (label, revs) in revisions {
            // Revisions are time-ordered ids: the newest whole one wins.
            let Some(whole) =
                revs.into_values().rev().find(|r| r.chunks.len() == r.parts && (0..r.parts).all(|i| r.chunks.contains_key(&i)))
            else {
                continue;
            };
            let bytes: Vec<u8> = whole.chunks.into_values().flatten().collect();
            let doc = StoredRollup::parse(&bytes).map_err(|e| StoreError::corrupt(format!("rollup {label}: {e}")))?;
            out.insert(label, doc);
        }
        Ok(out)
    }
}
