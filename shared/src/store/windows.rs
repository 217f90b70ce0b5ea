//! The dashboard's trailing windows: for each period the dashboard shows
//! (and the kept history its headline totals cover), the completed days
//! before today merged into one stored document with each day's trend
//! totals, so a dashboard reads one or two documents and today instead of
//! a document per day (`jobs::windows` builds them, `query::windowed`
//! reads them).
//!
//! A window is right only while none of its days changed since it was
//! built. Every rebuild of a day that may already be over bumps the
//! tenant's **day epoch** after writing the day; a window records the
//! epoch read before its days were, and a reader takes it only under the
//! same epoch. A day rewritten while a window was being built therefore
//! always leaves the window stale, never wrong; a day with events not yet
//! rolled up has a dirty marker, which the reader checks as well.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::keys;
use super::rollups::new_revision;
use super::table::{PK, SK, TTL_ATTRIBUTE, Table};
use super::{ItemExt, StoreError, n, s};
use crate::query::answers::BucketTotals;
use crate::rollup::Rollup;
use crate::time;

/// One stored window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoredWindow {
    /// The tenant's day epoch when the window's days were read.
    pub epoch: u64,
    /// The days' dashboard parts, merged.
    pub rollup: Rollup,
    /// Each day's trend totals, oldest first.
    pub days: Vec<BucketTotals>,
}

/// What the builder last stored: the completed day its windows end on and
/// the epoch they were built under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub as_of: String,
    pub epoch: u64,
}

const EPOCH_SK: &str = "epoch";
const BUILT_SK: &str = "built";

/// How long a window outlives its day: it is replaced by the next day's.
const WINDOW_KEEP: Duration = Duration::days(3);

/// A tenant's windows and their bookkeeping.
#[derive(Clone, Copy)]
pub struct Windows<'t> {
    pub(super) t: &'t Table,
}

impl Windows<'_> {
    /// The tenant's day epoch (strongly consistent; 0 before any bump).
    pub async fn epoch(self, tenant: &str) -> Result<u64, StoreError> {
        let item = self.t.get_item(keys::windows_pk(tenant), EPOCH_SK).await?;
        self.t.count_read(usize::from(item.is_some()));
        Ok(item.and_then(|i| i.num("v")).unwrap_or(0))
    }

    /// Moves the day epoch on: every window built before is stale. The
    /// item has no TTL: an epoch that expired and started again would make
    /// an old window look current.
    pub async fn bump(self, tenant: &str) -> Result<(), StoreError> {
        self.t
            .client()
            .update_item()
            .table_name(&self.t.config().table)
            .key(PK, s(keys::windows_pk(tenant)))
            .key(SK, s(EPOCH_SK))
            .update_expression("ADD v :one")
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// What the builder last stored, if anything.
    pub async fn built(self, tenant: &str) -> Result<Option<Built>, StoreError> {
        let item = self.t.get_item(keys::windows_pk(tenant), BUILT_SK).await?;
        Ok(item.and_then(|i| Some(Built { as_of: i.str("as_of")?.to_owned(), epoch: i.num("epoch")? })))
    }

    /// Records what the builder stored (after every window of it is whole).
    pub async fn set_built(self, tenant: &str, built: &Built, now: DateTime<Utc>) -> Result<(), StoreError> {
        let item = [
            (PK.to_owned(), s(keys::windows_pk(tenant))),
            (SK.to_owned(), s(BUILT_SK)),
            ("as_of".to_owned(), s(&built.as_of)),
            ("epoch".to_owned(), n(built.epoch)),
            (TTL_ATTRIBUTE.to_owned(), n((now + WINDOW_KEEP).timestamp())),
        ]
        .into();
        self.t.put(item).await
    }

    /// Stores the window of `days` days as of the completed day `as_of`.
    pub async fn put(self, tenant: &str, as_of: &str, days: u32, window: &StoredWindow, now: DateTime<Utc>) -> Result<(), StoreError> {
        let data = serde_json::to_vec(window).map_err(StoreError::corrupt)?;
        let pk = keys::rollup_pk(tenant, "window");
        let expires = (now + WINDOW_KEEP).timestamp();
        // The epoch leads the revision: of two builders racing, the one
        // under the newer epoch is the one readers take, whichever wrote last.
        let rev = format!("{:020}{}", window.epoch, new_revision());
        self.t.rollups().put_bytes(&pk, &keys::window_label(as_of, days), &data, expires, &rev).await
    }

    /// The windows of `days` days each as of the completed day `as_of`, in
    /// that order, when every one is stored, built under the current epoch,
    /// and no hour of their days is dirty; otherwise `None`. The markers
    /// first, then the epoch: the roll-up bumps the epoch before it clears
    /// a marker, so a reader that finds the markers clear reads an epoch
    /// that already says the day changed.
    pub async fn current(
        self,
        tenant: &str,
        as_of: DateTime<Utc>,
        days: &[u32],
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<StoredWindow>>, StoreError> {
        let longest = i64::from(days.iter().copied().max().unwrap_or(2));
        let first = time::hour_label(as_of - Duration::days(longest - 2));
        let last = time::hour_label(as_of + Duration::hours(23));
        if !self.t.markers().dirty_hours_between(tenant, Some((&first, &last))).await?.is_empty() {
            return Ok(None);
        }
        let label = time::day_label(as_of);
        let reads = days.iter().map(|d| self.read(tenant, &label, *d, now));
        let (epoch, found) = futures::future::try_join(self.epoch(tenant), futures::future::try_join_all(reads)).await?;
        let found: Option<Vec<StoredWindow>> = found.into_iter().collect();
        Ok(found.filter(|w| w.iter().all(|w| w.epoch == epoch)))
    }

    /// The stored window of `days` days as of `as_of`, if whole. One that
    /// does not read (written by another version) is as good as missing:
    /// the days are read one by one instead.
    pub async fn read(self, tenant: &str, as_of: &str, days: u32, now: DateTime<Utc>) -> Result<Option<StoredWindow>, StoreError> {
        let label = keys::window_label(as_of, days);
        let pk = keys::rollup_pk(tenant, "window");
        let found = self.t.rollups().whole_revisions(&pk, (&label, &label), now, false, true).await?;
        Ok(found.into_values().next().and_then(|(_, bytes)| bytes).and_then(|b| match serde_json::from_slice(&b) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(tenant, window = %label, error = %e, "a stored window does not read; reading its days one by one");
                None
            }
        }))
    }
}
