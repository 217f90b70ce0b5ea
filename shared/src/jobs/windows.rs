//! Keeps a tenant's dashboard windows (`store::windows`) in step with its
//! days: after a roll-up or the daily job rebuilt days, the windows that
//! end yesterday are built again, unless those already stored end there
//! and were built under the current day epoch.

use chrono::{DateTime, Duration, Utc};

use crate::config::Retention;
use crate::query::answers;
use crate::query::period::{Piece, window_days};
use crate::store::StoreError;
use crate::store::Table;
use crate::store::windows::{Built, StoredWindow};
use crate::time::{day_label, day_start};

/// Builds the tenant's windows as of yesterday when they are missing or
/// stale; `true` when it built them. The epoch is read before the days,
/// so a day rewritten meanwhile bumps it and leaves these stale.
pub async fn keep_windows(store: &Table, tenant: &str, now: DateTime<Utc>, retention: &Retention) -> Result<bool, StoreError> {
    let today = day_start(now);
    let as_of = day_label(today - Duration::days(1));
    let (built, epoch) = futures::future::try_join(store.windows().built(tenant), store.windows().epoch(tenant)).await?;
    if built.as_ref() == Some(&Built { as_of: as_of.clone(), epoch }) {
        return Ok(false);
    }
    let lengths = window_days(retention);
    let longest = i64::from(*lengths.last().expect("the dashboard has periods"));
    // A window of n days holds the n - 1 completed days before today.
    let first = today - Duration::days(longest - 1);
    let parts = store.rollups().dashboard_days(tenant, &day_label(first), &as_of, now, true).await?;
    let bounds: Vec<DateTime<Utc>> = (0..longest).map(|i| first + Duration::days(i)).collect();
    let pieces: Vec<Piece> = bounds
        .windows(2)
        .filter_map(|w| parts.get(&day_label(w[0])).map(|r| Piece { start: w[0], end: w[1], rollup: r.clone() }))
        .collect();
    let totals = answers::buckets(&pieces, &bounds);
    // Newest day first: each window is the longest's newest days.
    let mut merged = crate::rollup::Rollup::default();
    let mut taken = 0usize;
    for days in &lengths {
        let completed = (*days - 1) as usize;
        for p in pieces.iter().rev().filter(|p| p.start >= today - Duration::days(completed as i64)).skip(taken) {
            merged.merge(&p.rollup);
            taken += 1;
        }
        let window = StoredWindow { epoch, rollup: merged.clone(), days: totals[totals.len() - completed..].to_vec() };
        store.windows().put(tenant, &as_of, *days, &window, now).await?;
    }
    store.windows().set_built(tenant, &Built { as_of, epoch }, now).await?;
    Ok(true)
}
