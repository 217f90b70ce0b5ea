//! Periods, buckets in the caller's time zone, and how a period is read:
//! stored day and hour rollups, plus rollups built on the spot for hours
//! that are not rolled up yet (dirty) or only partly in the range: from the
//! hour deltas of live hours (`store::deltas`), else from raw events. What a
//! period read costs grows with its hours, never with its events.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};

use super::zone::{LocalTime, Zone};

use crate::config::Retention;
use crate::rollup::{FiveCounters, Rollup, SLOTS, five_of};
use crate::store::StoreError;
use crate::time::hour_start;

/// The longest range a query may cover.
pub const MAX_RANGE_DAYS: i64 = 400;

/// `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The dashboard's periods (`period=`), in days, today included.
pub const DASHBOARD_PERIODS: [(&str, i64); 4] = [("7d", 7), ("30d", 30), ("90d", 90), ("365d", 365)];

/// The lengths of the stored dashboard windows (`store::windows`), in
/// days, shortest first: every dashboard period, and the kept history its
/// headline totals cover; none longer than the rollups are kept (the
/// oldest day of such a window expires during the day).
pub fn window_days(retention: &Retention) -> Vec<u32> {
    let mut days: Vec<u32> = DASHBOARD_PERIODS
        .iter()
        .map(|(_, d)| *d as u32)
        .chain([retention.events_days.max(2)])
        .filter(|d| *d <= retention.rollup_days)
        .collect();
    days.sort_unstable();
    days.dedup();
    days
}

/// Trend bucket sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
    Week,
    Month,
}

/// The most buckets a trend may have (31 days of hours).
pub const MAX_BUCKETS: usize = 31 * 24;

/// The instant a local wall-clock time names: the earlier of two when the
/// clocks go back, the first valid instant after it when they jump forward.
pub fn local_to_utc(tz: &Zone, naive: NaiveDateTime) -> DateTime<Utc> {
    let earliest = |n: NaiveDateTime| match tz.from_local(n) {
        LocalTime::Single(t) | LocalTime::Ambiguous(t, _) => Some(t),
        LocalTime::None => None,
    };
    earliest(naive).or_else(|| (1..=16).find_map(|q| earliest(naive + Duration::minutes(15 * q)))).unwrap_or_else(|| naive.and_utc())
}

/// The start of a local day.
pub fn local_midnight(tz: &Zone, day: NaiveDate) -> DateTime<Utc> {
    local_to_utc(tz, day.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

/// The local start of the bucket `t` falls in.
fn floor_local(t: DateTime<Utc>, g: Granularity, tz: &Zone) -> NaiveDateTime {
    let local = tz.local(t);
    let day = local.date();
    match g {
        Granularity::Hour => local.with_minute(0).and_then(|l| l.with_second(0)).and_then(|l| l.with_nanosecond(0)).unwrap_or(local),
        Granularity::Day => day.and_hms_opt(0, 0, 0).expect("midnight"),
        Granularity::Week => {
            (day - Duration::days(i64::from(day.weekday().num_days_from_monday()))).and_hms_opt(0, 0, 0).expect("midnight")
        }
        Granularity::Month => day.with_day(1).expect("day 1").and_hms_opt(0, 0, 0).expect("midnight"),
    }
}

fn next_local(n: NaiveDateTime, g: Granularity) -> NaiveDateTime {
    match g {
        Granularity::Hour => n + Duration::hours(1),
        Granularity::Day => n + Duration::days(1),
        Granularity::Week => n + Duration::days(7),
        Granularity::Month => {
            let (y, m) = if n.month() == 12 { (n.year() + 1, 1) } else { (n.year(), n.month() + 1) };
            NaiveDate::from_ymd_opt(y, m, 1).expect("valid month").and_hms_opt(0, 0, 0).expect("midnight")
        }
    }
}

/// The starts of the buckets covering the range, in `tz`, as UTC instants,
/// plus the end of the last one. Hours step in real time (a local hour that
/// repeats when clocks go back is two buckets); days, weeks and months
/// follow the local calendar, so a day may last 23 or 25 hours.
pub fn bucket_bounds(range: DateRange, g: Granularity, tz: &Zone) -> Vec<DateTime<Utc>> {
    let mut bounds = Vec::new();
    if g == Granularity::Hour {
        let mut t = local_to_utc(tz, floor_local(range.from, g, tz));
        if t > range.from {
            t -= Duration::hours(1);
        }
        while t < range.to {
            bounds.push(t);
            t += Duration::hours(1);
        }
        bounds.push(t);
        return bounds;
    }
    let mut local = floor_local(range.from, g, tz);
    loop {
        let t = local_to_utc(tz, local);
        if bounds.last().is_some_and(|last| t <= *last) {
            local = next_local(local, g);
            continue;
        }
        bounds.push(t);
        if t >= range.to {
            return bounds;
        }
        local = next_local(local, g);
    }
}

/// A span of time and its rollup: a stored day, a stored hour, or an hour
/// (or part of one) built from raw events.
#[derive(Debug, Clone)]
pub struct Piece {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub rollup: Rollup,
}

/// Which quarters of the hour starting at `hour` meet `[a, b)`. Bucket
/// edges fall on quarter hours, so a quarter that meets the window lies in it.
pub fn quarter_mask(hour: DateTime<Utc>, a: DateTime<Utc>, b: DateTime<Utc>) -> u8 {
    (0..SLOTS)
        .filter(|q| {
            let start = hour + Duration::minutes(15 * *q as i64);
            start < b && start + Duration::minutes(15) > a
        })
        .fold(0, |m, q| m | (1 << q))
}

/// The part of a piece inside `[a, b)`: the whole piece, its quarter hours
/// in range, or nothing.
pub fn clip(p: &Piece, a: DateTime<Utc>, b: DateTime<Utc>) -> Option<Rollup> {
    if p.end <= a || p.start >= b {
        return None;
    }
    if p.start >= a && p.end <= b {
        return Some(p.rollup.clone());
    }
    let mask = quarter_mask(hour_start(p.start), a.max(p.start), b.min(p.end));
    (mask != 0).then(|| p.rollup.quarters(mask))
}

/// The application figures of system health at `now`: the last 24 hours
/// read once and split at UTC midnight (which no stored piece straddles)
/// for the users active today. The hour the 24 hours start in is read
/// from its stored five-minute figures from its first whole five minutes
/// on ([`edge_health`]).
pub async fn app_health_now<S: super::planner::RollupSource>(
    store: &S,
    tenant: &str,
    now: DateTime<Utc>,
    retention: &Retention,
) -> Result<crate::model::HealthSnapshot, StoreError> {
    app_health_at(store, tenant, now, now, retention).await
}

/// [`app_health_now`] of the 24 hours before `at`, read at `now`.
pub async fn app_health_at<S: super::planner::RollupSource>(
    store: &S,
    tenant: &str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    retention: &Retention,
) -> Result<crate::model::HealthSnapshot, StoreError> {
    let midnight = crate::time::day_start(at);
    let from = at - Duration::hours(24);
    let edge = hour_start(from);
    let whole_from = if from > edge { edge + Duration::hours(1) } else { from };
    let (pieces, edge) = futures::future::try_join(
        health_pieces(store, tenant, DateRange { from: whole_from, to: at }, &[midnight], now, retention),
        async {
            match from > edge {
                // Boxed: a planner read is a large future, and this holds three.
                true => Box::pin(edge_health(store, tenant, from, now, retention)).await,
                false => Ok(FiveCounters::default()),
            }
        },
    )
    .await?;
    let today: Vec<Piece> = pieces.iter().filter(|x| x.start >= midnight).cloned().collect();
    let mut last_24h = total(&pieces).health_totals();
    last_24h.merge(&edge);
    Ok(super::answers::app_health(&last_24h, &total(&today), at))
}

/// The health figures of `[from, the end of its hour)`: from the hour's
/// stored five-minute figures where it is rolled up and not dirty, the
/// minutes before its first whole five (at most five) from raw events;
/// else the whole span as any partial hour is read.
pub async fn edge_health<S: super::planner::RollupSource>(
    store: &S,
    tenant: &str,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
    retention: &Retention,
) -> Result<FiveCounters, StoreError> {
    let hour = hour_start(from);
    let end = hour + Duration::hours(1);
    // The first five-minute mark at or after `from`.
    let floor = hour + Duration::minutes(5 * i64::from(five_of(from)));
    let first = if floor == from { from } else { floor + Duration::minutes(5) };
    let read = |a: DateTime<Utc>, b: DateTime<Utc>| async move {
        if a >= b {
            return Ok(FiveCounters::default());
        }
        let pieces = Box::pin(super::planner::read_pieces(store, tenant, DateRange { from: a, to: b }, &[], now, retention)).await?;
        Ok::<_, StoreError>(total(&pieces).health_totals())
    };
    if first >= end {
        return read(from, end).await;
    }
    let label = crate::time::hour_label(hour);
    let (dirty, stored) =
        futures::future::try_join(store.dirty_hours(tenant, &label, &label), store.hours(tenant, &label, &label, now)).await?;
    let fives = stored.get(&label).filter(|_| !dirty.contains(&label)).and_then(|doc| doc.rollup.fives_from(five_of(first)));
    match fives {
        Some(mut f) => {
            f.merge(&read(from, first).await?);
            Ok(f)
        }
        None => read(from, end).await,
    }
}

/// The pieces of `range` for figures that read no external call (system
/// health, the silence before `no_activity`): when the range ends at five
/// minutes inside a live hour, that hour's part is made from its deltas'
/// five-minute rollups, which count every request, received before the
/// range's end or after, as a raw read at `now` does, whenever a
/// compaction ran; the rest, and what the deltas cannot say, as any range.
pub async fn health_pieces<S: super::planner::RollupSource>(
    store: &S,
    tenant: &str,
    range: DateRange,
    boundaries: &[DateTime<Utc>],
    now: DateTime<Utc>,
    retention: &Retention,
) -> Result<Vec<Piece>, StoreError> {
    let head = hour_start(range.to);
    if range.to == head || !crate::rollup::at_five(range.to) || range.from > head {
        return Box::pin(super::planner::read_pieces(store, tenant, range, boundaries, now, retention)).await;
    }
    let before = async {
        match range.from < head {
            true => {
                Box::pin(super::planner::read_pieces(store, tenant, DateRange { from: range.from, to: head }, boundaries, now, retention))
                    .await
            }
            false => Ok(Vec::new()),
        }
    };
    let (mut pieces, made) = futures::future::try_join(before, store.recent(tenant, head, 0, range.to, now)).await?;
    let rollup = match made {
        Some(r) => r,
        None => total(
            &Box::pin(super::planner::read_pieces(store, tenant, DateRange { from: head, to: range.to }, boundaries, now, retention))
                .await?,
        ),
    };
    pieces.push(Piece { start: head, end: range.to, rollup });
    Ok(pieces)
}

/// Everything in the pieces, merged.
pub fn total(pieces: &[Piece]) -> Rollup {
    let mut all = Rollup::default();
    for p in pieces {
        all.merge(&p.rollup);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn kolkata_days_start_at_half_past_six_utc() {
        let r = DateRange { from: at("2026-11-19T18:30:00Z"), to: at("2026-11-21T18:30:00Z") };
        let b = bucket_bounds(r, Granularity::Day, &Zone::named("Asia/Kolkata").unwrap());
        assert_eq!(b, vec![at("2026-11-19T18:30:00Z"), at("2026-11-20T18:30:00Z"), at("2026-11-21T18:30:00Z")]);
        let hours = bucket_bounds(
            DateRange { from: at("2026-11-21T10:00:00Z"), to: at("2026-11-21T12:00:00Z") },
            Granularity::Hour,
            &Zone::named("Asia/Kolkata").unwrap(),
        );
        assert_eq!(hours[0], at("2026-11-21T09:30:00Z"), "local hours start at :30 UTC");
        assert_eq!(hours.len(), 4);
    }

    #[test]
    fn a_day_across_the_dst_change_lasts_25_hours() {
        let ny = &Zone::named("America/New_York").unwrap();
        let r = DateRange { from: local_midnight(ny, NaiveDate::from_ymd_opt(2026, 10, 31).unwrap()), to: at("2026-11-03T05:00:00Z") };
        let b = bucket_bounds(r, Granularity::Day, ny);
        assert_eq!(b[0], at("2026-10-31T04:00:00Z"));
        assert_eq!(b[1], at("2026-11-01T04:00:00Z"));
        assert_eq!(b[2], at("2026-11-02T05:00:00Z"), "1 November 2026 has 25 hours in New York");
        assert_eq!(b[2] - b[1], Duration::hours(25));
        let weeks =
            bucket_bounds(DateRange { from: at("2026-11-18T12:00:00Z"), to: at("2026-11-21T00:00:00Z") }, Granularity::Week, &Zone::UTC);
        assert_eq!(weeks, vec![at("2026-11-16T00:00:00Z"), at("2026-11-23T00:00:00Z")], "ISO weeks start on Monday");
        let months =
            bucket_bounds(DateRange { from: at("2026-11-18T12:00:00Z"), to: at("2027-01-02T00:00:00Z") }, Granularity::Month, &Zone::UTC);
        assert_eq!(months.len(), 4);
        assert_eq!(months[2], at("2027-01-01T00:00:00Z"));
    }

    #[test]
    fn a_skipped_midnight_maps_to_the_first_instant_of_the_day() {
        // Santiago skips from 00:00 to 01:00 on 6 September 2026.
        let santiago = Zone::named("America/Santiago").unwrap();
        let t = local_midnight(&santiago, NaiveDate::from_ymd_opt(2026, 9, 6).unwrap());
        assert_eq!(santiago.local(t).hour(), 1);
    }

    #[test]
    fn clipping_an_hour_at_a_half_hour_keeps_its_quarters() {
        let r = Rollup { slots: vec![crate::rollup::SlotCounters { activities: 1, ..Default::default() }; 4], ..Default::default() };
        let p = Piece { start: at("2026-11-21T10:00:00Z"), end: at("2026-11-21T11:00:00Z"), rollup: r };
        assert_eq!(clip(&p, at("2026-11-21T10:30:00Z"), at("2026-11-22T00:00:00Z")).unwrap().counters().activities, 2);
        assert_eq!(clip(&p, at("2026-11-20T00:00:00Z"), at("2026-11-22T00:00:00Z")).unwrap().counters().activities, 4);
        assert!(clip(&p, at("2026-11-21T11:00:00Z"), at("2026-11-22T00:00:00Z")).is_none());
    }
}
