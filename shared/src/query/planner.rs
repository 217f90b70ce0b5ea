//! How a period is read: which stored days and hours cover it, and which
//! hours' figures must be made (dirty hours, the range's partial first and
//! last hours). What it reads is behind [`RollupSource`], which the table
//! implements (`store::rollups`), so the plan is unit-tested against an in-memory source.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use chrono::{DateTime, Duration, Timelike, Utc};

use super::period::{DateRange, Piece};
use crate::config::Retention;
use crate::rollup::Rollup;
use crate::store::StoreError;
use crate::store::hours::HourAsk;
use crate::store::rollups::{DayPart, StoredRollup};
use crate::store::windows::StoredWindow;
use crate::time::{day_label, hour_label, hour_start};

/// What the planner reads: dirty markers, stored days and hours, and the
/// figures of the hours it cannot take from storage as they are.
pub trait RollupSource: Sync {
    /// The dirty hours (labels) among `first..=last`.
    fn dirty_hours(&self, tenant: &str, first: &str, last: &str) -> impl Future<Output = Result<BTreeSet<String>, StoreError>> + Send;
    /// Stored day rollups of `first..=last` (day labels), whole or the
    /// part the read needs.
    fn days(
        &self,
        tenant: &str,
        first: &str,
        last: &str,
        part: DayPart,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<BTreeMap<String, Rollup>, StoreError>> + Send;
    /// Stored hour documents of `first..=last` (hour labels).
    fn hours(
        &self,
        tenant: &str,
        first: &str,
        last: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<BTreeMap<String, StoredRollup>, StoreError>> + Send;
    /// The stored dashboard windows of `days` days each as of the completed
    /// day `as_of`, in that order, when every one is there, built under
    /// the tenant's current day epoch, and none of their hours is dirty;
    /// otherwise `None`, and the days are read one by one.
    fn current_windows(
        &self,
        _tenant: &str,
        _as_of: DateTime<Utc>,
        _days: &[u32],
        _now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Vec<StoredWindow>>, StoreError>> + Send {
        async { Ok(None) }
    }
    /// The activity, API requests and auth events of `[the five minutes
    /// `five` of the live hour `hour`, to)`, from its deltas' five-minute
    /// rollups (`store::deltas`), as a raw read at `now` makes them; `None`
    /// when they cannot say.
    fn recent(
        &self,
        _tenant: &str,
        _hour: DateTime<Utc>,
        _five: u8,
        _to: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Rollup>, StoreError>> + Send {
        async { Ok(None) }
    }
    /// Each asked hour's figures, made as the roll-up makes them.
    fn figures(
        &self,
        tenant: &str,
        asks: &[HourAsk<'_>],
        now: DateTime<Utc>,
        retention: &Retention,
    ) -> impl Future<Output = Result<Vec<Rollup>, StoreError>> + Send;
}

/// Days read per query when stored days are fetched in parallel.
const DAYS_PER_READ: usize = 16;

/// Reads the rollups of `range`. `boundaries` are instants no stored day may
/// straddle (a trend's bucket edges); days are used wherever they fit,
/// hours elsewhere, and for dirty hours and the range's partial first and
/// last hours the figures are made as the roll-up makes them
/// ([`crate::store::rollups::Rollups::hour_figures`]: raw events where they are all kept, the
/// stored figures and the journal where they are not).
///
/// The dirty markers of the range, the stored days and the stored hours
/// outside whole days are read at once; only a day that turns out to hold
/// a dirty hour or to have no stored rollup costs a second round (its
/// hours, and the figures of its dirty hours).
pub async fn read_pieces<S: RollupSource>(
    store: &S,
    tenant: &str,
    range: DateRange,
    boundaries: &[DateTime<Utc>],
    now: DateTime<Utc>,
    retention: &Retention,
) -> Result<Vec<Piece>, StoreError> {
    read_pieces_of(store, tenant, range, boundaries, DayPart::Whole, now, retention).await
}

/// [`read_pieces`] taking of each stored day only the `part` the answer
/// needs (hours, read for the range's edges and dirty days, stay whole).
pub async fn read_pieces_of<S: RollupSource>(
    store: &S,
    tenant: &str,
    range: DateRange,
    boundaries: &[DateTime<Utc>],
    part: DayPart,
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
        async move { store.days(tenant, &first, &last, part, now).await }
    });
    let last_hour = hour_start(range.to - Duration::milliseconds(1));
    let marker_span = (hour_label(hour_start(range.from)), hour_label(last_hour));
    // The current hour (an edge whenever the range ends now) is made (from
    // its deltas, or its raw events where they cannot say) beside the first round, without waiting for its
    // stored document: none of its kinds is frozen by age. Its document is
    // read in the same round all the same, and should it hold a kind
    // frozen by what an earlier run counted (a retention raised tenfold
    // since), the hour is made again with it, below, as the roll-up makes it.
    let current = hour_start(now);
    let (early, mut edges): (Vec<_>, Vec<_>) = edges.into_iter().partition(|e| e.0 == current);
    let early_asks: Vec<HourAsk<'_>> = early.iter().map(|(hour, a, b)| HourAsk { hour: *hour, from: *a, to: *b, stored: None }).collect();
    let mut first_round: Vec<DateTime<Utc>> =
        hours.iter().copied().chain(edges.iter().map(|e| e.0)).chain(early.iter().map(|e| e.0)).collect();
    first_round.sort();
    first_round.dedup();
    let ((dirty, stored_days), mut stored_hours, early_figures) = futures::future::try_join3(
        futures::future::try_join(store.dirty_hours(tenant, &marker_span.0, &marker_span.1), futures::future::try_join_all(day_reads)),
        read_hour_runs(store, tenant, &first_round, now),
        store.figures(tenant, &early_asks, now, retention),
    )
    .await?;
    let mut stored_days: std::collections::BTreeMap<String, Rollup> = stored_days.into_iter().flatten().collect();
    let is_dirty = |t: DateTime<Utc>| dirty.contains(&hour_label(t));

    // Made again with its document where that holds a frozen kind.
    let (redo, early): (Vec<_>, Vec<_>) = early
        .into_iter()
        .zip(early_figures)
        .partition(|(e, _)| stored_hours.get(&hour_label(e.0)).is_some_and(|doc| doc.freezes_any(e.0, now, retention)));
    edges.extend(redo.into_iter().map(|(e, _)| e));
    let mut pieces: Vec<Piece> = early.into_iter().map(|((_, a, b), rollup)| Piece { start: a, end: b, rollup }).collect();
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
    for ((_, a, b), rollup) in made.iter().zip(store.figures(tenant, &asks, now, retention).await?) {
        pieces.push(Piece { start: *a, end: *b, rollup });
    }
    pieces.sort_by_key(|p| p.start);
    Ok(pieces)
}

/// Stored hourly documents of the given hours, one query per run of
/// consecutive hours, in parallel.
async fn read_hour_runs<S: RollupSource>(
    store: &S,
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
    let reads = labels.iter().map(|(a, b)| store.hours(tenant, a, b, now));
    Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::rollup::SlotCounters;
    use crate::time::parse_timestamp;

    fn at(s: &str) -> DateTime<Utc> {
        parse_timestamp(s).unwrap()
    }

    /// A rollup that says where it came from: `activities` counts it once.
    fn marked(tag: &str) -> Rollup {
        let mut r = Rollup::default();
        r.users.insert(tag.to_owned(), Default::default());
        r.slots = vec![SlotCounters { activities: 1, ..Default::default() }; 1];
        r
    }

    /// An in-memory source: what is stored, what is dirty, and which hours
    /// were asked to be made.
    #[derive(Default)]
    struct Fake {
        dirty: BTreeSet<String>,
        days: BTreeMap<String, Rollup>,
        hours: BTreeMap<String, StoredRollup>,
        made: Mutex<Vec<(DateTime<Utc>, DateTime<Utc>)>>,
        /// Whether each ask came with its stored document.
        with_stored: Mutex<Vec<bool>>,
    }

    impl RollupSource for Fake {
        async fn dirty_hours(&self, _: &str, first: &str, last: &str) -> Result<BTreeSet<String>, StoreError> {
            Ok(self.dirty.iter().filter(|h| h.as_str() >= first && h.as_str() <= last).cloned().collect())
        }
        async fn days(
            &self,
            _: &str,
            first: &str,
            last: &str,
            _: DayPart,
            _: DateTime<Utc>,
        ) -> Result<BTreeMap<String, Rollup>, StoreError> {
            Ok(self.days.range(first.to_owned()..=last.to_owned()).map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        async fn hours(&self, _: &str, first: &str, last: &str, _: DateTime<Utc>) -> Result<BTreeMap<String, StoredRollup>, StoreError> {
            Ok(self.hours.range(first.to_owned()..=last.to_owned()).map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        async fn figures(&self, _: &str, asks: &[HourAsk<'_>], _: DateTime<Utc>, _: &Retention) -> Result<Vec<Rollup>, StoreError> {
            self.made.lock().unwrap().extend(asks.iter().map(|a| (a.from, a.to)));
            self.with_stored.lock().unwrap().extend(asks.iter().map(|a| a.stored.is_some()));
            Ok(asks.iter().map(|a| marked(&format!("made {} {}", a.from, a.stored.is_some()))).collect())
        }
    }

    fn hours_of(day: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> {
        (0..24).map(move |h| day + Duration::hours(h))
    }

    /// Three days and two partial hours: a clean stored day is read whole,
    /// a day holding a dirty hour is read as its hours (that one made), a
    /// day without a stored rollup as its stored hours, a day cut by a
    /// bucket edge as hours, and the range's partial hours are made.
    #[tokio::test]
    async fn the_plan_reads_days_where_they_fit_and_makes_only_what_it_must() {
        let (d1, d2, d3, d4) =
            (at("2026-11-20T00:00:00Z"), at("2026-11-21T00:00:00Z"), at("2026-11-22T00:00:00Z"), at("2026-11-23T00:00:00Z"));
        let mut fake = Fake::default();
        for d in [d1, d2, d4] {
            fake.days.insert(day_label(d), marked(&format!("day {}", day_label(d))));
        }
        for h in hours_of(d1).chain(hours_of(d2)).chain(hours_of(d3)).chain(hours_of(d4)) {
            fake.hours.insert(hour_label(h), StoredRollup { rollup: marked(&format!("hour {}", hour_label(h))), ..Default::default() });
        }
        fake.dirty.insert(hour_label(d2 + Duration::hours(5)));
        // A dirty hour outside the range is none of this read's business.
        fake.dirty.insert(hour_label(d1 - Duration::days(30)));
        let range = DateRange { from: d1 - Duration::minutes(30), to: d4 + Duration::hours(12) + Duration::minutes(15) };
        let edge = d4 + Duration::hours(6);
        let pieces = read_pieces(&fake, "t", range, &[edge], d4 + Duration::days(1), &Retention::default()).await.unwrap();
        let tags: Vec<String> = pieces.iter().map(|p| p.rollup.users.keys().next().unwrap().clone()).collect();
        assert!(tags.contains(&"day 2026-11-20".to_string()), "a clean stored day is read whole");
        assert!(!tags.contains(&"day 2026-11-21".to_string()), "a day with a dirty hour is not");
        assert_eq!(tags.iter().filter(|t| t.starts_with("hour 2026-11-21")).count(), 23, "its clean hours are");
        assert_eq!(tags.iter().filter(|t| t.starts_with("hour 2026-11-22")).count(), 24, "a day not stored is read as hours");
        assert_eq!(tags.iter().filter(|t| t.starts_with("hour 2026-11-23")).count(), 12, "a day cut by a bucket edge too");
        let made = fake.made.lock().unwrap().clone();
        let mut made_sorted = made.clone();
        made_sorted.sort();
        assert_eq!(
            made_sorted,
            vec![(range.from, d1), (d2 + Duration::hours(5), d2 + Duration::hours(6)), (d4 + Duration::hours(12), range.to),],
            "only the partial hours and the dirty one are made"
        );
        // The pieces tile the range without a gap or an overlap.
        assert_eq!(pieces.first().unwrap().start, range.from);
        assert_eq!(pieces.last().unwrap().end, range.to);
        assert!(pieces.windows(2).all(|w| w[0].end == w[1].start), "contiguous");
    }

    /// The current hour is made without waiting for
    /// its stored document; a document holding a frozen kind (an earlier
    /// run counted it so) has it made again with that document, as the
    /// roll-up makes it, and the hour counted once.
    #[tokio::test]
    async fn the_current_hour_is_made_at_once_unless_its_document_holds_a_frozen_kind() {
        let hour = at("2026-11-23T10:00:00Z");
        let now = hour + Duration::minutes(20);
        let range = DateRange { from: hour - Duration::hours(2), to: now };
        let mut fake = Fake::default();
        for h in [hour - Duration::hours(2), hour - Duration::hours(1)] {
            fake.hours.insert(hour_label(h), StoredRollup { rollup: marked(&format!("hour {}", hour_label(h))), ..Default::default() });
        }
        let ret = Retention::default();
        let read = |fake: &Fake| {
            let pieces = futures::executor::block_on(read_pieces(fake, "t", range, &[], now, &ret)).unwrap();
            let tags: Vec<String> = pieces.iter().flat_map(|p| p.rollup.users.keys().cloned()).collect();
            (tags, fake.with_stored.lock().unwrap().clone())
        };
        let (tags, stored) = read(&fake);
        assert_eq!(tags.last().unwrap(), &format!("made {hour} false"), "{tags:?}");
        assert_eq!(stored, [false], "made once, at once");

        let mut doc = StoredRollup { rollup: marked("stale"), ..Default::default() };
        doc.kinds.insert(crate::model::EventKind::ApiRequest, crate::store::rollups::KindState { frozen: true, ..Default::default() });
        let mut frozen = Fake { hours: fake.hours.clone(), ..Default::default() };
        frozen.hours.insert(hour_label(hour), doc);
        let (tags, stored) = read(&frozen);
        assert_eq!(tags.iter().filter(|t| t.starts_with("made")).collect::<Vec<_>>(), [&format!("made {hour} true")], "{tags:?}");
        assert_eq!(stored, [false, true], "made again with its document");
    }
}
