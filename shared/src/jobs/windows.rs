//! Keeps a tenant's dashboard windows (`store::windows`) in step with its
//! days: after a roll-up or the daily job rebuilt days, the windows that
//! end yesterday are built again, unless those already stored end there
//! and were built under the current day epoch.

use chrono::{DateTime, Duration, Utc};

use crate::config::Retention;
use crate::query::answers;
use crate::query::period::{self, Piece, window_days};
use crate::store::StoreError;
use crate::store::Table;
use crate::store::windows::{Built, StoredWindow};
use crate::time::{day_label, day_start};

/// [`keep_windows`], its failure logged rather than failing the tenant:
/// the roll-up's work is done by then, and a reader without current
/// windows reads the days one by one.
pub async fn keep_windows_or_warn(store: &Table, tenant: &str, now: DateTime<Utc>, retention: &Retention) {
    if let Err(e) = keep_windows(store, tenant, now, retention).await {
        tracing::warn!(tenant, error = %e, "the dashboard windows were not built; dashboards read day by day until the next run");
    }
}

/// Builds the tenant's windows as of yesterday when they are missing or
/// stale; `true` when it built them. The epoch is read before the days,
/// so a day rewritten meanwhile bumps it and leaves these stale. Windows
/// longer than the rollups are kept are not built: their oldest days
/// expire during the day, which a stored window cannot follow.
pub async fn keep_windows(store: &Table, tenant: &str, now: DateTime<Utc>, retention: &Retention) -> Result<bool, StoreError> {
    let today = day_start(now);
    let as_of = day_label(today - Duration::days(1));
    let (built, epoch) = futures::future::try_join(store.windows().built(tenant), store.windows().epoch(tenant)).await?;
    if built.as_ref() == Some(&Built { as_of: as_of.clone(), epoch }) {
        return Ok(false);
    }
    let lengths = window_days(retention);
    let Some(longest) = lengths.last().map(|d| i64::from(*d)) else { return Ok(false) };
    // A window of n days holds the n - 1 completed days before today.
    let first = today - Duration::days(longest - 1);
    let parts = store.rollups().dashboard_days(tenant, &day_label(first), &as_of, now, true).await?;
    let bounds: Vec<DateTime<Utc>> = (0..longest).map(|i| first + Duration::days(i)).collect();
    let pieces: Vec<Piece> = bounds
        .windows(2)
        .filter_map(|w| parts.get(&day_label(w[0])).map(|r| Piece { start: w[0], end: w[1], rollup: r.clone() }))
        .collect();
    let totals = answers::buckets(&pieces, &bounds);
    for days in &lengths {
        let completed = i64::from(*days - 1);
        let from = today - Duration::days(completed);
        // The window's days are the pieces' newest (they are in day order),
        // merged oldest first as the day-by-day read merges them: the same
        // sums to the last bit.
        let own = &pieces[pieces.partition_point(|p| p.start < from)..];
        let window = StoredWindow { epoch, rollup: period::total(own), days: totals[totals.len() - completed as usize..].to_vec() };
        store.windows().put(tenant, &as_of, *days, &window, now).await?;
    }
    // Recorded only if no day changed meanwhile: a record ahead of the
    // windows would keep the next run from building them.
    if store.windows().epoch(tenant).await? == epoch {
        store.windows().set_built(tenant, &Built { as_of, epoch }, now).await?;
    }
    Ok(true)
}
