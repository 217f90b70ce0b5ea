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
//! A stored rollup is JSON split over items of at most `PART_BYTES`, all
//! parts of one write sharing a revision in their sort key
//! (`{label}#{rev}#{part}`); the old revision is deleted only once the new
//! one is whole, and readers take the newest whole revision, so a write cut
//! short never leaves a bucket unreadable or half old, half new.

use crate::store::ItemExt;
use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::keys;
use super::table::{PK, SK, TTL_ATTRIBUTE, Table};
use super::{Item, StoreError, n, s};
use crate::config::Retention;
use crate::model::EventKind;
use crate::rollup::Rollup;

/// How long a stored rollup covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Hour,
    Day,
    /// A day's [`Rollup::dashboard_part`], written beside the whole day.
    DayDashboard,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Hour => "hour",
            Resolution::Day => "day",
            Resolution::DayDashboard => "day-dashboard",
        }
    }
}

/// What a period read needs of each stored day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayPart {
    Whole,
    /// [`Rollup::dashboard_part`]: read from its own document, or from the
    /// whole day where that is missing (a day stored before the part was).
    Dashboard,
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

/// A fresh revision id: time-ordered, so the newest whole one wins.
pub fn new_revision() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Stored hourly and daily rollups.
#[derive(Clone, Copy)]
pub struct Rollups<'t> {
    pub(super) t: &'t Table,
}

impl Rollups<'_> {
    /// Stores a rollup, replacing the bucket's previous one once the new
    /// one is whole; an empty rollup removes the bucket instead.
    pub async fn put(self, tenant: &str, res: Resolution, label: &str, doc: &StoredRollup, expires_at: i64) -> Result<(), StoreError> {
        self.put_revision(tenant, res, label, doc, expires_at, &new_revision()).await
    }

    /// [`Rollups::put`] under a revision the caller made ([`new_revision`]):
    /// a day's dashboard part carries its whole day's, which is how a
    /// reader knows the two belong together.
    pub async fn put_revision(
        self,
        tenant: &str,
        res: Resolution,
        label: &str,
        doc: &StoredRollup,
        expires_at: i64,
        rev: &str,
    ) -> Result<(), StoreError> {
        let data = if doc.is_empty() { Vec::new() } else { serde_json::to_vec(doc).map_err(StoreError::corrupt)? };
        self.put_bytes(&keys::rollup_pk(tenant, res.as_str()), label, &data, expires_at, rev).await
    }

    /// Stores a document's bytes as the parts of revision `rev` of the
    /// bucket `label` (nothing when empty), then deletes its older revisions.
    pub(super) async fn put_bytes(self, pk: &str, label: &str, data: &[u8], expires_at: i64, rev: &str) -> Result<(), StoreError> {
        let old_parts = self.rollup_part_keys(pk, label).await?;
        let chunks: Vec<&[u8]> = data.chunks(PART_BYTES).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let item: Item = [
                (PK.to_owned(), s(pk)),
                (SK.to_owned(), s(format!("{label}#{rev}#{i}"))),
                ("data".to_owned(), AttributeValue::B(Blob::new(*chunk))),
                ("parts".to_owned(), n(chunks.len())),
                ("rev".to_owned(), s(rev)),
                (TTL_ATTRIBUTE.to_owned(), n(expires_at)),
            ]
            .into();
            self.t.put(item).await?;
        }
        // Only older revisions go: a newer one, written meanwhile by a
        // rebuild that read later, stays the one readers take.
        for sk in old_parts {
            if split_part_key(&sk, "").is_some_and(|(_, r, _)| r.as_str() < rev) {
                self.t.delete(pk, sk).await?;
            }
        }
        Ok(())
    }

    /// Sort keys of every stored part of a bucket (any revision).
    async fn rollup_part_keys(self, pk: &str, label: &str) -> Result<Vec<String>, StoreError> {
        let query = self
            .t
            .query()
            .key_condition_expression("pk = :p AND begins_with(sk, :l)")
            .expression_attribute_values(":p", s(pk))
            .expression_attribute_values(":l", s(format!("{label}#")))
            .projection_expression("sk")
            .consistent_read(true);
        self.t.collect(query, |i| Ok(i.str(SK).map(str::to_owned))).await
    }

    /// Stored rollups of the buckets `first..=last` (labels), unexpired.
    pub async fn read(
        self,
        tenant: &str,
        res: Resolution,
        first: &str,
        last: &str,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, Rollup>, StoreError> {
        Ok(self.stored(tenant, res, first, last, now, false).await?.into_iter().map(|(k, d)| (k, d.rollup)).collect())
    }

    /// Stored documents of the buckets `first..=last`, unexpired: for each,
    /// the newest revision whose parts are all there. `consistent` reads
    /// what was written a moment ago (the roll-up, after writing hours).
    pub async fn stored(
        self,
        tenant: &str,
        res: Resolution,
        first: &str,
        last: &str,
        now: DateTime<Utc>,
        consistent: bool,
    ) -> Result<BTreeMap<String, StoredRollup>, StoreError> {
        let docs = self.revisions(tenant, res, (first, last), now, consistent, true).await?;
        Ok(docs.into_iter().map(|(label, (_, doc))| (label, doc.unwrap_or_default())).collect())
    }

    /// For each bucket of `first..=last`, its newest whole revision, and
    /// its document when `with_data` (otherwise only the keys are read).
    async fn revisions(
        self,
        tenant: &str,
        res: Resolution,
        span: (&str, &str),
        now: DateTime<Utc>,
        consistent: bool,
        with_data: bool,
    ) -> Result<BTreeMap<String, (String, Option<StoredRollup>)>, StoreError> {
        let pk = keys::rollup_pk(tenant, res.as_str());
        let mut out = BTreeMap::new();
        for (label, (rev, bytes)) in self.whole_revisions(&pk, span, now, consistent, with_data).await? {
            let doc = match bytes {
                Some(b) => Some(StoredRollup::parse(&b).map_err(|e| StoreError::corrupt(format!("rollup {label}: {e}")))?),
                None => None,
            };
            out.insert(label, (rev, doc));
        }
        Ok(out)
    }

    /// For each bucket of `first..=last` under `pk`, its newest revision
    /// whose parts are all there, and its bytes when `with_data`.
    pub(super) async fn whole_revisions(
        self,
        pk: &str,
        (first, last): (&str, &str),
        now: DateTime<Utc>,
        consistent: bool,
        with_data: bool,
    ) -> Result<BTreeMap<String, (String, Option<Vec<u8>>)>, StoreError> {
        let mut query = self
            .t
            .query_unexpired(now)
            .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
            .expression_attribute_values(":p", s(pk))
            .expression_attribute_values(":a", s(format!("{first}#")))
            .expression_attribute_values(":b", s(format!("{last}#~")))
            .consistent_read(consistent);
        if !with_data {
            query = query.projection_expression("sk, parts, rev");
        }
        let mut revisions: BTreeMap<String, BTreeMap<String, Revision>> = BTreeMap::new();
        self.t
            .for_each_page(query, |items| {
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
            let Some((rev, whole)) =
                revs.into_iter().rev().find(|(_, r)| r.chunks.len() == r.parts && (0..r.parts).all(|i| r.chunks.contains_key(&i)))
            else {
                continue;
            };
            let bytes = with_data.then(|| whole.chunks.into_values().flatten().collect());
            out.insert(label, (rev, bytes));
        }
        Ok(out)
    }
}

impl Rollups<'_> {
    /// The dashboard parts of the stored days `first..=last`. A part is
    /// taken only under its whole day's newest revision (one left by an
    /// older or a concurrent rebuild of the day is not); a day whose part
    /// is missing (stored before parts were, or holding none of one) or
    /// stale is read whole, each run of such days in one query, and made
    /// into its part here.
    pub async fn dashboard_days(
        self,
        tenant: &str,
        first: &str,
        last: &str,
        now: DateTime<Utc>,
        consistent: bool,
    ) -> Result<BTreeMap<String, Rollup>, StoreError> {
        let (mut parts, wholes) = futures::future::try_join(
            self.revisions(tenant, Resolution::DayDashboard, (first, last), now, consistent, true),
            self.revisions(tenant, Resolution::Day, (first, last), now, consistent, false),
        )
        .await?;
        let mut days = BTreeMap::new();
        let mut runs: Vec<(&str, &str)> = Vec::new();
        let mut open: Option<(&str, &str)> = None;
        for (label, (rev, _)) in &wholes {
            match parts.remove(label) {
                Some((part_rev, Some(doc))) if part_rev == *rev => {
                    days.insert(label.clone(), doc.rollup);
                    runs.extend(open.take());
                }
                // Consecutive stored days all without their part: one read.
                _ => open = Some((open.map_or(label.as_str(), |(a, _)| a), label.as_str())),
            }
        }
        runs.extend(open);
        let reads = runs.into_iter().map(|(a, b)| self.stored(tenant, Resolution::Day, a, b, now, consistent));
        for whole in futures::future::try_join_all(reads).await? {
            days.extend(whole.into_iter().map(|(label, d)| (label, d.rollup.dashboard_part())));
        }
        Ok(days)
    }
}

mod source;
