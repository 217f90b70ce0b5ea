//! How an hour's figures are made, kind by kind, by the roll-up and by a
//! period read alike (one rule, so a read of a dirty hour answers what the
//! roll-up will store):
//!
//! - while every raw event of a kind in the hour is surely still kept, the
//!   kind is **live**: recomputed from its raw events;
//! - once some may have expired (the hour is within a tenth of the kind's
//!   retention of its end, or an earlier count saw a raw event expiring), it
//!   is **frozen**: its stored figures are kept as they are, and late events
//!   are added from the journal, never recomputed from what is left.
//!
//! The journal holds a copy of every event that arrived a quarter of its
//! retention late or more (`store::events`): those are the only events that
//! can land in an hour after one of its kinds froze, as long as the roll-up
//! runs at least once in the time between (over half the retention). Each
//! kind's state records the journal entries it has counted, so an entry is
//! counted once whether its raw copy was counted by a live run or not.

use crate::store::ItemExt;
use crate::time;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, TryStreamExt};

use super::keys;
use super::rollups::{KindState, Rollups, StoredRollup};
use super::table::{SK, TTL_ATTRIBUTE};
use super::{Item, StoreError, s};
use crate::config::Retention;
use crate::model::{Event, EventKind};
use crate::query::period::quarter_mask;
use crate::rollup::Rollup;
use crate::validate::retention_days;

/// The attributes a rollup folds (`Rollup::add`) and an event needs to be
/// read, with its sort key and TTL: the bulky free text (metadata, user
/// agent, query parameters, descriptions) stays in the table, a third of a
/// request log.
const ROLLUP_ATTRIBUTES: [&str; 26] = [
    "sk",
    "expires_at",
    "event_id",
    "occurred_at",
    "client_occurred_at",
    "received_at",
    "user_id",
    "ip_address",
    "kind",
    "action",
    "custom",
    "client_id",
    "report",
    "endpoint",
    "method",
    "status_code",
    "response_time_ms",
    "sample_rate",
    "event_type",
    "success",
    "service",
    "cost_estimate",
    "error_message",
    "model",
    "input_tokens",
    "output_tokens",
];

/// Events later than this are remembered by sort key while an hour is
/// counted from raw events (only journaled events, a quarter of a
/// retention of at least a day late, need to be).
const LATE: Duration = Duration::hours(1);

/// The seconds before a kind's earliest possible expiry in an hour from
/// which the kind is frozen: a tenth of its retention.
fn freeze_lead(days: u32) -> i64 {
    i64::from(days) * 86_400 / 10
}

/// Whether a kind of the hour starting at `hour` is frozen at `now`.
pub fn is_frozen(hour: DateTime<Utc>, days: u32, state: Option<&KindState>, now: DateTime<Utc>) -> bool {
    let lead = freeze_lead(days);
    let by_age = hour.timestamp() + i64::from(days) * 86_400 - lead <= now.timestamp();
    let by_ttl = state.and_then(|s| s.kept_until).is_some_and(|k| k - lead <= now.timestamp());
    by_age || by_ttl || state.is_some_and(|s| s.frozen)
}

impl StoredRollup {
    /// Whether any kind of this stored hour (starting at `hour`) is frozen
    /// at `now`: its figures are then kept, not recomputed from raw events.
    pub fn freezes_any(&self, hour: DateTime<Utc>, now: DateTime<Utc>, retention: &Retention) -> bool {
        EventKind::ALL.into_iter().any(|k| is_frozen(hour, retention_days(k, retention), self.kinds.get(&k), now))
    }
}

/// The raw events of a span, folded per kind, with what the freezing
/// rule needs: each kind's earliest TTL and the late events' sort keys.
#[derive(Default)]
struct RawFold {
    rollup: Rollup,
    kept_until: BTreeMap<EventKind, i64>,
    late: BTreeSet<String>,
}

/// What reading an hour found, for the roll-up's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourNote {
    /// Kinds whose stored figures were kept (past raw retention).
    pub frozen: usize,
}

/// One hour (or part of one) whose figures are asked for, with the
/// bucket's stored document.
#[derive(Debug, Clone, Copy)]
pub struct HourAsk<'a> {
    pub hour: DateTime<Utc>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub stored: Option<&'a StoredRollup>,
}

impl RawFold {
    fn add(&mut self, sk: String, ttl: i64, e: &Event) {
        let k = self.kept_until.entry(e.kind()).or_insert(ttl);
        *k = (*k).min(ttl);
        if e.received_at - e.occurred_at > LATE {
            self.late.insert(sk);
        }
        self.rollup.add(e);
    }

    fn merge(&mut self, o: RawFold) {
        self.rollup.merge(&o.rollup);
        for (k, t) in o.kept_until {
            let mine = self.kept_until.entry(k).or_insert(t);
            *mine = (*mine).min(t);
        }
        self.late.extend(o.late);
    }
}

/// The projection of the raw reads (`#a0, #a1, ...`).
fn projection() -> String {
    (0..ROLLUP_ATTRIBUTES.len()).map(|i| format!("#a{i}")).collect::<Vec<_>>().join(", ")
}

impl Rollups<'_> {
    /// The figures of the hour the ask names within its `[from, to)` (a
    /// whole hour or a part of it), made as the module says from the
    /// bucket's `stored` document. A frozen kind of a part of an hour keeps
    /// what its stored quarters hold. `consistent` reads what was written a
    /// moment ago (the roll-up).
    pub async fn hour_figures(
        self,
        tenant: &str,
        ask: HourAsk<'_>,
        now: DateTime<Utc>,
        retention: &Retention,
        consistent: bool,
    ) -> Result<(StoredRollup, HourNote), StoreError> {
        let mut all = self.hours_figures(tenant, &[ask], now, retention, consistent).await?;
        Ok(all.pop().unwrap_or_default())
    }

    /// [`Rollups::hour_figures`] of many hours at once: each hour's
    /// shards and journal are read on their own, the activity partitions
    /// once per month for every run of consecutive hours (a month's
    /// partition holds every hour of it).
    pub async fn hours_figures(
        self,
        tenant: &str,
        asks: &[HourAsk<'_>],
        now: DateTime<Utc>,
        retention: &Retention,
        consistent: bool,
    ) -> Result<Vec<(StoredRollup, HourNote)>, StoreError> {
        let frozen: Vec<BTreeSet<EventKind>> = asks
            .iter()
            .map(|a| {
                EventKind::ALL
                    .into_iter()
                    .filter(|k| is_frozen(a.hour, retention_days(*k, retention), a.stored.and_then(|d| d.kinds.get(k)), now))
                    .collect()
            })
            .collect();
        // What is read raw: the live kinds, and every kind of an hour with
        // nothing stored (what is left is all there is).
        let live: Vec<Vec<EventKind>> = asks
            .iter()
            .zip(&frozen)
            .map(|(a, f)| EventKind::ALL.into_iter().filter(|k| !f.contains(k) || a.stored.is_none()).collect())
            .collect();
        let (folds, journals) = futures::future::try_join(
            self.raw_folds(tenant, asks, &live, now, consistent),
            futures::future::try_join_all(asks.iter().map(|a| self.journal(tenant, a.hour, (a.from, a.to), consistent))),
        )
        .await?;
        let mut out = Vec::with_capacity(asks.len());
        for (((ask, frozen), raw), journal) in asks.iter().zip(frozen).zip(folds).zip(journals) {
            out.push(self.combine(ask, &frozen, &raw, &journal));
        }
        Ok(out)
    }

    /// One hour's figures from what was read, kind by kind.
    fn combine(
        self,
        ask: &HourAsk<'_>,
        frozen: &BTreeSet<EventKind>,
        raw: &RawFold,
        journal: &[(String, Event)],
    ) -> (StoredRollup, HourNote) {
        let whole = ask.from <= ask.hour && ask.to >= ask.hour + Duration::hours(1);
        let mask = quarter_mask(ask.hour, ask.from.max(ask.hour), ask.to.min(ask.hour + Duration::hours(1)));
        let mut out = StoredRollup::default();
        let mut note = HourNote::default();
        for kind in EventKind::ALL {
            let entries = journal.iter().filter(|(_, e)| e.kind() == kind);
            let is_frozen = frozen.contains(&kind);
            let (part, state) = match ask.stored {
                Some(doc) if is_frozen => {
                    note.frozen += 1;
                    let before = doc.kinds.get(&kind).cloned().unwrap_or_default();
                    let kept = doc.rollup.part(kind);
                    let mut part = if whole { kept } else { kept.quarters(mask) };
                    let mut absorbed = before.absorbed.clone();
                    for (sk, e) in entries {
                        if absorbed.insert(sk.clone()) {
                            part.add(e);
                        }
                    }
                    (part, KindState { frozen: true, kept_until: before.kept_until, absorbed })
                }
                _ => {
                    // Journal entries whose raw copy was counted are
                    // absorbed; with nothing stored and the kind frozen,
                    // the others are added too.
                    let mut part = raw.rollup.part(kind);
                    let mut absorbed = BTreeSet::new();
                    for (sk, e) in entries {
                        let counted = raw.late.contains(sk);
                        if !counted && is_frozen {
                            part.add(e);
                        }
                        if counted || is_frozen {
                            absorbed.insert(sk.clone());
                        }
                    }
                    (part, KindState { frozen: is_frozen, kept_until: raw.kept_until.get(&kind).copied(), absorbed })
                }
            };
            out.rollup.merge(&part);
            if state != KindState::default() {
                out.kinds.insert(kind, state);
            }
        }
        out.rollup.compact(self.t.config().rollup_max_keys);
        (out, note)
    }

    /// Folds the raw events of each ask's `[from, to)` of its `live` kinds:
    /// each hour's shards (API requests, auth events, external calls), and
    /// the activity partitions of each month a run of asked hours covers.
    async fn raw_folds(
        self,
        tenant: &str,
        asks: &[HourAsk<'_>],
        live: &[Vec<EventKind>],
        now: DateTime<Utc>,
        consistent: bool,
    ) -> Result<Vec<RawFold>, StoreError> {
        let shards = usize::from(self.t.config().shards.max(1));
        let projection = projection();
        let mut reads = Vec::new();
        for (i, a) in asks.iter().enumerate() {
            if live[i].iter().any(|k| *k != EventKind::Activity) {
                for pk in keys::raw_partitions(tenant, a.hour, self.t.config().shards).into_iter().take(shards) {
                    reads.push((pk, a.from, a.to));
                }
            }
        }
        // Runs of consecutive asks that read activity, cut at months.
        let mut wanted: Vec<usize> = (0..asks.len()).filter(|i| live[*i].contains(&EventKind::Activity)).collect();
        wanted.sort_by_key(|i| asks[*i].from);
        let mut runs: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        for i in &wanted {
            let (a, b) = (asks[*i].from, asks[*i].to);
            match runs.last_mut() {
                Some((_, end)) if *end >= a => *end = (*end).max(b),
                _ => runs.push((a, b)),
            }
        }
        for (a, b) in runs {
            let mut m = a;
            while m < b {
                let month_end = time::next_month_start(m);
                let to = month_end.min(b);
                for pk in keys::raw_partitions(tenant, m, self.t.config().shards).into_iter().skip(shards) {
                    reads.push((pk, m, to));
                }
                m = to;
            }
        }
        // Every item goes to the ask whose window holds it.
        let mut order: Vec<usize> = (0..asks.len()).collect();
        order.sort_by_key(|i| asks[*i].from);
        let owner = |t: DateTime<Utc>, kind: EventKind| -> Option<usize> {
            let at = order.partition_point(|i| asks[*i].from <= t);
            let i = *order.get(at.checked_sub(1)?)?;
            (t < asks[i].to && live[i].contains(&kind)).then_some(i)
        };
        let owner = &owner;
        let futures: Vec<_> = reads
            .into_iter()
            .map(|(pk, from, to)| {
                let mut query = self
                    .t
                    .query_unexpired(now)
                    .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
                    .expression_attribute_values(":p", s(pk))
                    .expression_attribute_values(":a", s(keys::sk_from(from)))
                    .expression_attribute_values(":b", s(keys::sk_before(to)))
                    .projection_expression(projection.as_str())
                    .consistent_read(consistent);
                for (i, name) in ROLLUP_ATTRIBUTES.iter().enumerate() {
                    query = query.expression_attribute_names(format!("#a{i}"), *name);
                }
                async move {
                    let mut folds: BTreeMap<usize, RawFold> = BTreeMap::new();
                    self.t
                        .for_each_page(query, |items| {
                            for item in items {
                                let (sk, ttl) = sk_and_ttl(&item);
                                let e: Event = super::read_event(item)?;
                                if let Some(i) = owner(e.occurred_at, e.kind()) {
                                    folds.entry(i).or_default().add(sk, ttl, &e);
                                }
                            }
                            Ok(true)
                        })
                        .await?;
                    Ok::<_, StoreError>(folds)
                }
            })
            .collect();
        let mut out: Vec<RawFold> = (0..asks.len()).map(|_| RawFold::default()).collect();
        for folds in futures::stream::iter(futures).buffer_unordered(64).try_collect::<Vec<_>>().await? {
            for (i, f) in folds {
                out[i].merge(f);
            }
        }
        Ok(out)
    }

    /// The journal's late events of `[from, to)` in the hour, by sort key.
    async fn journal(
        self,
        tenant: &str,
        hour: DateTime<Utc>,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        consistent: bool,
    ) -> Result<Vec<(String, Event)>, StoreError> {
        let query = self
            .t
            .query()
            .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
            .expression_attribute_values(":p", s(keys::journal_pk(tenant, &time::hour_label(hour))))
            .expression_attribute_values(":a", s(keys::sk_from(from)))
            .expression_attribute_values(":b", s(keys::sk_before(to)))
            .consistent_read(consistent);
        self.t
            .collect(query, |item| {
                let (sk, _) = sk_and_ttl(&item);
                Ok(Some((sk, super::read_event(item)?)))
            })
            .await
    }
}

/// The sort key and TTL of an event item.
fn sk_and_ttl(item: &Item) -> (String, i64) {
    let sk = item.str(SK).map(str::to_owned).unwrap_or_default();
    let ttl = item.num(TTL_ATTRIBUTE).unwrap_or(i64::MAX);
    (sk, ttl)
}

#[cfg(test)]
mod tests;
