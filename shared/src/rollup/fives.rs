//! Five-minute health figures of an hour: what system health and the
//! silence check need (API requests, errors, response times and their
//! histogram, failed logins, activities), per five minutes, so that a
//! window whose start falls inside a stored or live hour at five minutes
//! (the health snapshot's last 24 hours, taken every five minutes) is read
//! from the hour's rollup instead of its raw events. Every figure adds up,
//! so the fives of the parts of one hour merge into the hour's.

use std::collections::BTreeMap;

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use super::{Histogram, Rollup, sat};
use crate::model::EventKind;

/// Five-minute slices per hour.
pub const FIVES: u8 = 12;

/// The health figures of five minutes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FiveCounters {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub api_requests: f64,
    /// API requests with a status of 500 or more.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors: f64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub time_ms: f64,
    #[serde(default, skip_serializing_if = "Histogram::is_empty")]
    pub latency: Histogram,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub failed_logins: u64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub activities: u64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

impl FiveCounters {
    pub fn merge(&mut self, o: &FiveCounters) {
        self.api_requests += o.api_requests;
        self.errors += o.errors;
        self.time_ms += o.time_ms;
        self.latency.merge(&o.latency);
        sat(&mut self.failed_logins, o.failed_logins);
        sat(&mut self.activities, o.activities);
    }

    /// Only the figures of one kind of event.
    fn part(&self, kind: EventKind) -> FiveCounters {
        match kind {
            EventKind::ApiRequest => FiveCounters {
                api_requests: self.api_requests,
                errors: self.errors,
                time_ms: self.time_ms,
                latency: self.latency.clone(),
                ..Default::default()
            },
            EventKind::Auth => FiveCounters { failed_logins: self.failed_logins, ..Default::default() },
            EventKind::Activity => FiveCounters { activities: self.activities, ..Default::default() },
            EventKind::ExternalCall => FiveCounters::default(),
        }
    }

    fn is_empty(&self) -> bool {
        *self == FiveCounters::default()
    }
}

/// The five minutes of a time within its hour.
pub fn five_of(t: DateTime<Utc>) -> u8 {
    (t.minute() / 5) as u8
}

/// Whether `t` starts five minutes of its hour (to the nanosecond).
pub fn at_five(t: DateTime<Utc>) -> bool {
    t.timestamp().rem_euclid(300) == 0 && t.timestamp_subsec_nanos() == 0
}

/// The fives of the parts of one hour, added.
pub(super) fn merge_fives(into: &mut BTreeMap<u8, FiveCounters>, from: &BTreeMap<u8, FiveCounters>) {
    for (k, f) in from {
        into.entry(*k).or_default().merge(f);
    }
}

impl Rollup {
    /// One kind's part of the fives.
    pub(super) fn fives_part(&self, kind: EventKind) -> BTreeMap<u8, FiveCounters> {
        self.fives.iter().map(|(k, f)| (*k, f.part(kind))).filter(|(_, f)| !f.is_empty()).collect()
    }

    /// The fives within the quarter hours of `mask`.
    pub(super) fn fives_in_quarters(&self, mask: u8) -> BTreeMap<u8, FiveCounters> {
        self.fives.iter().filter(|(k, _)| mask & (1 << (*k / 3)) != 0).map(|(k, f)| (*k, f.clone())).collect()
    }

    /// The health figures of this hour's rollup from its five-minute slice
    /// `from` on: `None` when the rollup cannot say (an hour stored before
    /// rollups kept fives): its fives must add up to its totals. Only an
    /// hour's rollup has fives that mean anything (a day's are dropped).
    pub fn fives_from(&self, from: u8) -> Option<FiveCounters> {
        let mut all = FiveCounters::default();
        let mut since = FiveCounters::default();
        for (k, f) in &self.fives {
            if *k >= FIVES {
                return None;
            }
            all.merge(f);
            if *k >= from {
                since.merge(f);
            }
        }
        let c = self.counters();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0);
        let whole = close(all.api_requests, c.api_requests)
            && close(all.errors, c.errors)
            && all.failed_logins == self.failed_logins()
            && all.activities == self.activities();
        whole.then_some(since)
    }

    /// The health figures of the whole span, from its maps.
    pub fn health_totals(&self) -> FiveCounters {
        let mut t = FiveCounters::default();
        for (k, s) in &self.api {
            t.api_requests += s.count;
            if super::split_api_key(k).0 == 5 {
                t.errors += s.count;
            }
            t.time_ms += s.time_ms;
            t.latency.merge(&s.latency);
        }
        t.failed_logins = self.failed_logins();
        t.activities = self.activities();
        t
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::Retention;
    use crate::model::Event;
    use crate::time::parse_timestamp;
    use crate::validate::{Context, validate_event};

    fn ev(kind: u8, second: u32, status: u16, ms: u32) -> Event {
        let at = parse_timestamp("2026-11-21T10:00:00Z").unwrap() + chrono::Duration::seconds(i64::from(second));
        let t = at.to_rfc3339();
        let v = match kind % 4 {
            0 => serde_json::json!({"kind": "activity", "occurred_at": t, "user_id": format!("u{}", ms % 5), "action": "login"}),
            1 => {
                serde_json::json!({"kind": "auth", "occurred_at": t, "user_id": "u1", "event_type": "login", "success": ms.is_multiple_of(2),
                "ip_address": "198.51.100.1"})
            }
            2 => serde_json::json!({"kind": "external_call", "occurred_at": t, "service": "s", "endpoint": "/v1",
                "status_code": status, "response_time_ms": ms}),
            _ => serde_json::json!({"kind": "api_request", "occurred_at": t, "endpoint": "/a", "method": "GET",
                "status_code": status, "response_time_ms": ms, "sample_rate": if ms.is_multiple_of(3) { 0.5 } else { 1.0 }}),
        };
        let now = parse_timestamp("2026-11-21T12:00:00Z").unwrap();
        validate_event(&v.to_string(), &Context { received_at: now, sent_at: None, retention: Retention::default() }).unwrap()
    }

    #[test]
    fn five_minute_marks_are_to_the_nanosecond() {
        let t = |s: &str| parse_timestamp(s).unwrap();
        assert!(at_five(t("2026-11-21T10:05:00Z")) && at_five(t("2026-11-21T10:00:00Z")));
        assert!(!at_five(t("2026-11-21T10:05:01Z")) && !at_five(t("2026-11-21T10:05:00.000000001Z")));
        assert!(at_five(t("1969-12-31T23:55:00Z")) && !at_five(t("1969-12-31T23:55:30Z")), "before the epoch too");
    }

    proptest! {
        /// From any five minutes of an hour on, its fives say what the
        /// events of those minutes say; parts of the hour merge into it.
        #[test]
        fn the_fives_from_any_slice_are_the_figures_of_its_events(
            events in proptest::collection::vec((0u8..4, 0u32..3600, prop::sample::select(vec![200u16, 404, 500, 503]), 0u32..5000), 0..60),
            from in 0u8..=FIVES,
        ) {
            let events: Vec<Event> = events.into_iter().map(|(k, s, st, ms)| ev(k, s, st, ms)).collect();
            let mut hour = Rollup::default();
            let mut later = Rollup::default();
            let mut parts = Rollup::default();
            for e in &events {
                hour.add(e);
                if five_of(e.occurred_at) >= from {
                    later.add(e);
                }
                let mut one = Rollup::default();
                one.add(e);
                parts.merge(&one);
            }
            let said = hour.fives_from(from).expect("an hour made of events says");
            let truth = later.health_totals();
            prop_assert!((said.api_requests - truth.api_requests).abs() < 1e-9);
            prop_assert!((said.errors - truth.errors).abs() < 1e-9);
            prop_assert!((said.time_ms - truth.time_ms).abs() < 1e-6);
            prop_assert_eq!(&said.latency, &truth.latency);
            prop_assert_eq!(said.failed_logins, truth.failed_logins);
            prop_assert_eq!(said.activities, truth.activities);
            prop_assert_eq!(parts.fives_from(from), Some(said));
        }
    }

    #[test]
    fn an_hour_stored_without_fives_cannot_say() {
        let mut hour = Rollup::default();
        hour.add(&ev(3, 10, 500, 40));
        hour.add(&ev(0, 700, 200, 1));
        assert!(hour.fives_from(3).is_some());
        let mut old = hour.clone();
        old.fives.clear();
        assert_eq!(old.fives_from(3), None, "its totals are not in fives");
        assert_eq!(Rollup::default().fives_from(0), Some(FiveCounters::default()), "an empty hour says nothing happened");
        let mut api_only = hour.part(EventKind::ApiRequest);
        assert_eq!(api_only.fives_from(0).map(|f| (f.api_requests, f.activities)), Some((1.0, 0)));
        api_only.fives.insert(FIVES, FiveCounters::default());
        assert_eq!(api_only.fives_from(0), None, "a slice past the hour is not one of its fives");
    }
}
