//! A dashboard period read: whole UTC days up to now (today included), and
//! for the headline totals the history kept around it. The completed days
//! come from the stored windows (`store::windows`: one or two documents)
//! where they are current, else day by day; today is read as any period's
//! hours are. Both ways answer alike: the windows hold the very day parts
//! the day-by-day read merges, and each day's trend totals as the answer
//! rounds them.

use chrono::{DateTime, Duration, Utc};

use super::answers::{self, BucketTotals};
use super::period::{self, DateRange, Granularity, Piece, bucket_bounds};
use super::planner::{RollupSource, read_pieces_of};
use super::zone::Zone;
use crate::config::Retention;
use crate::rollup::Rollup;
use crate::store::StoreError;
use crate::store::rollups::DayPart;
use crate::time::day_start;

/// What a dashboard period shows, read.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodFigures {
    pub range: DateRange,
    /// Everything in the period, merged.
    pub total: Rollup,
    /// Everything kept (the period included), merged: empty unless asked for.
    pub history: Rollup,
    /// The trend totals of each UTC day of the period.
    pub days: Vec<BucketTotals>,
}

/// Reads the period of `days` days ending now, and the kept history with
/// it when `with_history`.
pub async fn read_period<S: RollupSource>(
    store: &S,
    tenant: &str,
    days: i64,
    with_history: bool,
    now: DateTime<Utc>,
    retention: &Retention,
) -> Result<PeriodFigures, StoreError> {
    let today = day_start(now);
    let range = DateRange { from: today - Duration::days(days - 1), to: now };
    let kept = i64::from(retention.events_days).max(1);
    let history_from = range.from.min(today - Duration::days(kept - 1));
    let mut lengths = vec![days as u32];
    if with_history && history_from < range.from {
        lengths.push(((today - history_from).num_days() + 1) as u32);
    }
    // Only the lengths the jobs build (none longer than the rollups kept).
    let stored = period::window_days(retention);
    let windows = async {
        if lengths.iter().all(|l| stored.contains(l)) {
            store.current_windows(tenant, today - Duration::days(1), &lengths, now).await
        } else {
            Ok(None)
        }
    };
    // Boxed: the period planner's futures are large, and a route holds two.
    let (windows, today_pieces) = futures::future::try_join(
        Box::pin(windows),
        Box::pin(read_pieces_of(store, tenant, DateRange { from: today, to: now }, &[], DayPart::Dashboard, now, retention)),
    )
    .await?;
    // The past, then today's pieces one by one: the order the day-by-day
    // read merges in, so both ways give the same sums to the last bit.
    let merged = |past: &Rollup| {
        let mut r = past.clone();
        for p in &today_pieces {
            r.merge(&p.rollup);
        }
        r
    };
    if let Some(w) = windows {
        let total = merged(&w[0].rollup);
        let history = if with_history { w.last().map(|h| merged(&h.rollup)).unwrap_or_default() } else { Rollup::default() };
        let mut trend = w[0].days.clone();
        if now > today {
            trend.extend(answers::buckets(&today_pieces, &[today, today + Duration::days(1)]));
        }
        return Ok(PeriodFigures { range, total, history, days: trend });
    }
    let from = if with_history { history_from } else { range.from };
    // No stored day straddles the period's start, so the pieces split there.
    let past =
        Box::pin(read_pieces_of(store, tenant, DateRange { from, to: today }, &[range.from], DayPart::Dashboard, now, retention)).await?;
    let history = if with_history { merged(&period::total(&past)) } else { Rollup::default() };
    let period_past: Vec<Piece> = past.into_iter().filter(|p| p.start >= range.from).collect();
    let total = merged(&period::total(&period_past));
    let pieces: Vec<Piece> = period_past.into_iter().chain(today_pieces).collect();
    let days = answers::buckets(&pieces, &bucket_bounds(range, Granularity::Day, &Zone::UTC));
    Ok(PeriodFigures { range, total, history, days })
}
