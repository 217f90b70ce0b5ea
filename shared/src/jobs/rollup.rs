//! The roll-up of a tenant: its dirty hours' figures made and stored
//! (`store::hours` says how), their days rebuilt, the markers cleared.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::config::Retention;
use crate::rollup::Rollup;
use crate::store::StoreError;
use crate::store::Table;
use crate::store::explorer::index::HourMask;
use crate::store::hours::HourAsk;
use crate::store::hours::HourNote;
use crate::store::rollups::{Resolution, StoredRollup, new_revision};
use crate::time::{self, parse_day, parse_hour};

/// Rolls up the tenant's dirty hours, oldest first and at most
/// `max_hours` of them, then rebuilds their days, then clears the
/// markers that did not move meanwhile.
pub async fn roll_up_tenant(
    store: &Table,
    tenant: &str,
    now: DateTime<Utc>,
    retention: &Retention,
    max_hours: usize,
) -> Result<RollUpSummary, StoreError> {
    let dirty = store.markers().dirty_hours(tenant).await?;
    if let Some(first) = dirty.keys().next() {
        store.tenants().register(tenant, first, now, retention.rollup_days).await?;
    }
    let remaining = dirty.len().saturating_sub(max_hours);
    let todo: Vec<(String, u64, DateTime<Utc>)> =
        dirty.into_iter().take(max_hours).filter_map(|(label, v)| parse_hour(&label).map(|h| (label, v, h))).collect();
    let keep = |t: DateTime<Utc>| (t + Duration::days(i64::from(retention.rollup_days))).timestamp();
    let notes: Vec<HourNote> = futures::stream::iter(todo.iter().map(|(label, _, hour)| async move {
        let stored = store.rollups().stored(tenant, Resolution::Hour, label, label, now, true).await?;
        let (doc, note) = store
            .rollups()
            .hour_figures(
                tenant,
                HourAsk { hour: *hour, from: *hour, to: *hour + Duration::hours(1), stored: stored.get(label) },
                now,
                retention,
                true,
            )
            .await?;
        store.rollups().put(tenant, Resolution::Hour, label, &doc, keep(*hour)).await?;
        // What the hour holds, for the event explorer, before its marker goes.
        let raw_days = retention.events_days.max(retention.api_log_days);
        store.explorer().index_hour(tenant, *hour, HourMask::of(&doc.rollup), raw_days).await?;
        Ok::<_, StoreError>(note)
    }))
    .buffer_unordered(4)
    .try_collect()
    .await?;
    let days: BTreeSet<String> = todo.iter().map(|(_, _, h)| time::day_label(*h)).collect();
    for day in &days {
        rebuild_day(store, tenant, day, now, retention).await?;
    }
    let mut still_dirty = 0;
    for (label, v, _) in &todo {
        if !store.markers().clear(tenant, label, *v).await? {
            still_dirty += 1;
        }
    }
    let kept = notes.iter().map(|n| n.frozen).sum();
    super::windows::keep_windows_or_warn(store, tenant, now, retention).await;
    Ok(RollUpSummary { hours: todo.len(), days: days.len(), still_dirty, remaining, kept })
}

/// Rebuilds a day's rollup (`yyyy-mm-dd`) from its stored hours, read
/// strongly consistent (they may have been written a moment ago).
pub async fn rebuild_day(store: &Table, tenant: &str, day: &str, now: DateTime<Utc>, retention: &Retention) -> Result<(), StoreError> {
    let Some(start) = parse_day(day) else { return Err(StoreError::corrupt(format!("bad day label {day}"))) };
    // The revision is taken before the hours are read: of two rebuilds
    // racing (the daily job and the roll-up), the one that read later wins.
    let rev = new_revision();
    let hours = store.rollups().stored(tenant, Resolution::Hour, &format!("{day}T00"), &format!("{day}T23"), now, true).await?;
    let mut total = Rollup::default();
    for doc in hours.values() {
        total.merge(&doc.rollup);
    }
    total.slots.clear();
    total.fives.clear();
    for u in total.users.values_mut() {
        u.slots = 0;
    }
    total.compact(store.config().rollup_max_keys);
    let expires = (start + Duration::days(i64::from(retention.rollup_days))).timestamp();
    // The whole day, then its dashboard part under the same revision: a
    // reader takes the part only when it carries the whole day's newest
    // revision, so a rebuild cut short, or racing another (the daily job
    // and the roll-up), never leaves a part that disagrees with its day.
    let part = StoredRollup { rollup: total.dashboard_part(), kinds: BTreeMap::new() };
    let whole = StoredRollup { rollup: total, kinds: BTreeMap::new() };
    store.rollups().put_revision(tenant, Resolution::Day, day, &whole, expires, &rev).await?;
    store.rollups().put_revision(tenant, Resolution::DayDashboard, day, &part, expires, &rev).await?;
    // A day that may be over by the time a dashboard window is next built
    // makes every stored window stale (`store::windows`). The wall clock
    // once the writes are done, not the run's start: a window as of this
    // day is built only once the day is over, and the margin covers the
    // clocks of two Lambdas disagreeing.
    if start + Duration::days(1) <= Utc::now() + Duration::minutes(5) {
        store.windows().bump(tenant).await?;
    }
    Ok(())
}

/// What one roll-up run of a tenant did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RollUpSummary {
    /// Hours recomputed.
    pub hours: usize,
    /// Days rebuilt from their hours.
    pub days: usize,
    /// Hours written to again during the run: they stay dirty for the next.
    pub still_dirty: usize,
    /// Dirty hours left for the next run by the per-run bound.
    pub remaining: usize,
    /// Kinds of hours past raw retention whose stored figures were kept
    /// (late events added) rather than recomputed.
    pub kept: usize,
}
