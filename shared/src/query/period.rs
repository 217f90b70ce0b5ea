//! Periods, buckets in the caller's time zone, and how a period is read:
//! stored day and hour rollups, plus rollups built on the spot from the raw
//! events of hours that are not rolled up yet (dirty) or only partly in the
//! range. What a period read costs grows with its hours, never with its
//! events.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};

use super::zone::{LocalTime, Zone};

use crate::config::Retention;
use crate::rollup::{Rollup, SLOTS};
use crate::store::StoreError;
use crate::store::Table;
use crate::store::hours::HourAsk;
use crate::store::rollups::{Resolution, StoredRollup};
use crate::time::{day_label, hour_label, hour_start};

/// The longest range a query may cover.
pub const MAX_RANGE_DAYS: i64 = 400;

/// `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
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

/// Days read per query when stored days are fetched in parallel.
const DAYS_PER_READ: usize = 16;

/// Reads the rollups of `range`. `boundaries` are instants no stored day may
/// straddle (a trend's bucket edges); days are used wherever they fit,
/// hours elsewhere, and for dirty hours and the range's partial first and
/// last hours the figures are made as the roll-up makes them
/// ([`Table::hour_figures`]: raw events where they are all kept, the
/// stored figures and the journal where they are not).
///
/// The dirty markers of the range, the stored days and the stored hours
/// outside whole days are read at once; only a day that turns out to hold
/// a dirty hour or to have no stored rollup costs a second round (its
/// hours, and the figures of its dirty hours).
pub async fn read_pieces(
    store: &Table,
    tenant: &str,
    range: DateRange,
    boundaries: &[DateTime<Utc>],
    now: DateTime<Utc>,
    retention: &Retention,
) -> Result<Vec<Piece>, StoreError> {
    // Plan: partial edge hours, whole UTC days, and other whole hours.
    let mut edges: Vec<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)> = Vec::new(); // (hour, from, to)
    let mut days: Vec<DateTime<Utc>> = Vec::new();
    let mut hours: Vec<DateTime<Utc>> = Vec::new();
    let mut h = hour_start(range.from);
    while h < range.to {
        let end = h + Duration::hours(1);
        if h < range.from || end > range.to {
            edges.push((h, h.max(range.from), end.min(range.to)));
            h = end;
            continue;
        }
        let day_end = h + Duration::days(1);
        if h.hour() == 0 && day_end <= range.to && !boundaries.iter().any(|b| *b > h && *b < day_end) {
            days.push(h);
            h = day_end;
            continue;
        }
        hours.push(h);
        h = end;
    }
    let day_reads = days.chunks(DAYS_PER_READ).map(|c| {
        let (first, last) = (day_label(c[0]), day_label(c[c.len() - 1]));
        async move { store.rollups().read(tenant, Resolution::Day, &first, &last, now).await }
    });
    let last_hour = hour_start(range.to - Duration::milliseconds(1));
    let marker_span = (hour_label(hour_start(range.from)), hour_label(last_hour));
    let mut first_round: Vec<DateTime<Utc>> = hours.iter().copied().chain(edges.iter().map(|e| e.0)).collect();
    first_round.sort();
    first_round.dedup();
    let ((dirty, stored_days), mut stored_hours) = futures::future::try_join(
        futures::future::try_join(
            store.markers().dirty_hours_between(tenant, Some((&marker_span.0, &marker_span.1))),
            futures::future::try_join_all(day_reads),
        ),
        read_hour_runs(store, tenant, &first_round, now),
    )
    .await?;
    let mut stored_days: std::collections::BTreeMap<String, Rollup> = stored_days.into_iter().flatten().collect();
    let is_dirty = |t: DateTime<Utc>| dirty.contains_key(&hour_label(t));

    let mut pieces = Vec::new();
    let mut made = edges;
    let mut more_hours = Vec::new();
    for d in &days {
        let day_dirty = (0..24).any(|i| is_dirty(*d + Duration::hours(i)));
        match stored_days.remove(&day_label(*d)) {
            Some(rollup) if !day_dirty => pieces.push(Piece { start: *d, end: *d + Duration::days(1), rollup }),
            _ => more_hours.extend((0..24).map(|i| *d + Duration::hours(i))),
        }
    }
    for hour in &hours {
        if is_dirty(*hour) {
            made.push((*hour, *hour, *hour + Duration::hours(1)));
        } else if let Some(doc) = stored_hours.remove(&hour_label(*hour)) {
            pieces.push(Piece { start: *hour, end: *hour + Duration::hours(1), rollup: doc.rollup });
        }
    }
    let second = read_hour_runs(store, tenant, &more_hours, now).await?;
    for h in &more_hours {
        if is_dirty(*h) {
            made.push((*h, *h, *h + Duration::hours(1)));
        } else if let Some(doc) = second.get(&hour_label(*h)) {
            pieces.push(Piece { start: *h, end: *h + Duration::hours(1), rollup: doc.rollup.clone() });
        }
    }
    let labels: Vec<String> = made.iter().map(|(hour, _, _)| hour_label(*hour)).collect();
    let asks: Vec<HourAsk<'_>> = made
        .iter()
        .zip(&labels)
        .map(|((hour, a, b), label)| HourAsk {
            hour: *hour,
            from: *a,
            to: *b,
            stored: stored_hours.get(label).or_else(|| second.get(label)),
        })
        .collect();
    for ((_, a, b), (doc, _)) in made.iter().zip(store.rollups().hours_figures(tenant, &asks, now, retention, false).await?) {
        pieces.push(Piece { start: *a, end: *b, rollup: doc.rollup });
    }
    pieces.sort_by_key(|p| p.start);
    Ok(pieces)
}

/// Stored hourly documents of the given hours, one query per run of
/// consecutive hours, in parallel.
async fn read_hour_runs(
    store: &Table,
    tenant: &str,
    hours: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Result<std::collections::BTreeMap<String, StoredRollup>, StoreError> {
    let mut runs: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for hour in hours {
        match runs.last_mut() {
            Some((_, last)) if *last + Duration::hours(1) == *hour => *last = *hour,
            _ => runs.push((*hour, *hour)),
        }
    }
    let labels: Vec<(String, String)> = runs.iter().map(|(a, b)| (hour_label(*a), hour_label(*b))).collect();
    let reads = labels.iter().map(|(a, b)| store.rollups().stored(tenant, Resolution::Hour, a, b, now, false));
    Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
}

/// The application figures of system health at `now`: the last 24 hours
/// read once and split at UTC midnight (which no stored piece straddles)
/// for the users active today.
pub async fn app_health_now(
    store: &Table,
    tenant: &str,
    now: DateTime<Utc>,
    retention: &Retention,
) -> Result<crate::model::HealthSnapshot, StoreError> {
    let midnight = crate::time::day_start(now);
    let pieces = read_pieces(store, tenant, DateRange { from: now - Duration::hours(24), to: now }, &[midnight], now, retention).await?;
    let today: Vec<Piece> = pieces.iter().filter(|x| x.start >= midnight).cloned().collect();
    Ok(super::answers::app_health(&total(&pieces), &total(&today), now))
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
