//! Rollups: what the period routes need of a span of events, in a form that
//! merges. An hour is rolled up from its raw events ([`Rollup::add`]); a day
//! or a whole period is the [`Rollup::merge`] of its hours. Every figure of
//! the read API is computed from a `Rollup`, whether it was stored by the
//! rollup job or built on the spot from raw events of hours not rolled up
//! yet: one code path, so the two can never disagree.
//!
//! Events are placed at their corrected `occurred_at`, the same time their
//! keys, hours and cursors use.

mod fives;
mod histogram;
mod stats;
mod views;

use std::collections::BTreeMap;

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{AuthEventType, Event, EventBody};

pub use fives::{FIVES, FiveCounters, at_five, five_of};
pub use histogram::Histogram;
pub use stats::{
    ApiStats, CallKey, ClientStats, ExternalStats, NONE, Outcomes, ReportStats, SlotCounters, UserActivity, api_key, external_key,
    split_api_key, split_external_key,
};
pub use views::{HEALTH_KINDS, OTHER, shown};

/// Quarter hours per hour: every IANA zone in use today is offset from UTC
/// by a multiple of 15 minutes, so quarter-hour counters let an hour be cut
/// at any local day, week or month boundary.
pub const SLOTS: usize = 4;

/// Everything the read API and the reports need of a span of events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// Activity events per user.
    #[serde(default)]
    pub users: BTreeMap<String, UserActivity>,
    /// Activity events per client (`client_id`).
    #[serde(default)]
    pub clients: BTreeMap<String, ClientStats>,
    #[serde(default)]
    pub reports: ReportStats,
    /// API requests by [`api_key`].
    #[serde(default)]
    pub api: BTreeMap<String, ApiStats>,
    /// Auth events per type.
    #[serde(default)]
    pub auth: BTreeMap<String, Outcomes>,
    /// Failed logins per source IP and per user.
    #[serde(default)]
    pub failed_login_ips: BTreeMap<String, u64>,
    #[serde(default)]
    pub failed_login_users: BTreeMap<String, u64>,
    /// External calls per service.
    #[serde(default)]
    pub external: BTreeMap<String, ExternalStats>,
    /// External calls per service and model, per service and user, per
    /// service and endpoint, keyed by [`external_key`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub external_models: BTreeMap<String, ExternalStats>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub external_users: BTreeMap<String, ExternalStats>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub external_endpoints: BTreeMap<String, ExternalStats>,
    /// Quarter-hour counters; only hours built from events have them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<SlotCounters>,
    /// Five-minute health figures ([`FiveCounters`]), by slice of the
    /// hour; only hours built from events have them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fives: BTreeMap<u8, FiveCounters>,
}

/// Adds without wrapping: accepted values are bounded (10^12 per count),
/// but a sum over enough of them must still never wrap or panic.
pub fn sat(into: &mut u64, v: u64) {
    *into = into.saturating_add(v);
}

pub(crate) fn add_counts(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        sat(into.entry(k.clone()).or_default(), *v);
    }
}

/// A failed login: the `login_failed` type, or a `login` that did not succeed.
pub fn is_failed_login(event_type: AuthEventType, success: bool) -> bool {
    event_type == AuthEventType::LoginFailed || (event_type == AuthEventType::Login && !success)
}

/// The quarter hour of a time within its hour.
pub fn slot_of(t: DateTime<Utc>) -> usize {
    (t.minute() / 15) as usize
}

impl Rollup {
    /// Adds one event of the hour this rollup covers.
    pub fn add(&mut self, e: &Event) {
        if self.slots.is_empty() {
            self.slots = vec![SlotCounters::default(); SLOTS];
        }
        let slot = slot_of(e.occurred_at);
        let counters = &mut self.slots[slot];
        let five = five_of(e.occurred_at);
        match &e.body {
            EventBody::Activity(a) => {
                sat(&mut counters.activities, 1);
                sat(&mut self.fives.entry(five).or_default().activities, 1);
                let user = self.users.entry(e.user_id.clone().unwrap_or_default()).or_default();
                sat(user.actions.entry(a.action.clone()).or_default(), 1);
                user.slots |= 1 << slot;
                let is_report = a.action == "generate_report";
                if is_report {
                    sat(&mut counters.reports, 1);
                    self.reports.add(a);
                }
                if let Some(c) = &a.client_id {
                    let client = self.clients.entry(c.clone()).or_default();
                    sat(&mut client.activities, 1);
                    if is_report {
                        client.reports.add(a);
                    }
                }
            }
            EventBody::ApiRequest(r) => {
                let weight = 1.0 / r.sample_rate;
                counters.api_requests += weight;
                if r.status_code >= 500 {
                    counters.errors += weight;
                }
                let stats = self.api.entry(api_key(r.status_code, &r.method, &r.endpoint)).or_default();
                stats.count += weight;
                sat(&mut stats.received, 1);
                stats.time_ms += weight * r.response_time_ms;
                stats.latency.record(r.response_time_ms, weight);
                let f = self.fives.entry(five).or_default();
                f.api_requests += weight;
                if r.status_code >= 500 {
                    f.errors += weight;
                }
                f.time_ms += weight * r.response_time_ms;
                f.latency.record(r.response_time_ms, weight);
            }
            EventBody::Auth(a) => {
                let o = self.auth.entry(a.event_type.as_str().to_owned()).or_default();
                if a.success {
                    sat(&mut o.success, 1);
                } else {
                    sat(&mut o.failure, 1);
                }
                if is_failed_login(a.event_type, a.success) {
                    sat(&mut self.fives.entry(five).or_default().failed_logins, 1);
                    if let Some(ip) = &e.ip_address {
                        sat(self.failed_login_ips.entry(ip.clone()).or_default(), 1);
                    }
                    if let Some(u) = &e.user_id {
                        sat(self.failed_login_users.entry(u.clone()).or_default(), 1);
                    }
                }
            }
            EventBody::ExternalCall(c) => {
                self.external.entry(c.service.clone()).or_default().add(c);
                let by = [
                    (&mut self.external_models, c.model.as_deref()),
                    (&mut self.external_users, e.user_id.as_deref()),
                    (&mut self.external_endpoints, Some(c.endpoint.as_str())),
                ];
                for (map, key) in by {
                    map.entry(external_key(&c.service, key)).or_default().add(c);
                }
            }
        }
    }

    /// Adds another span's rollup. Quarter-hour counters add up when both
    /// sides have them (parts of one hour); otherwise they are dropped and
    /// [`Rollup::counters`] falls back to the totals.
    pub fn merge(&mut self, o: &Rollup) {
        let slots = if self.is_empty() {
            o.slots.clone()
        } else if o.is_empty() {
            std::mem::take(&mut self.slots)
        } else if self.slots.len() == SLOTS && o.slots.len() == SLOTS {
            self.slots
                .iter()
                .zip(&o.slots)
                .map(|(a, b)| SlotCounters {
                    activities: a.activities.saturating_add(b.activities),
                    reports: a.reports.saturating_add(b.reports),
                    api_requests: a.api_requests + b.api_requests,
                    errors: a.errors + b.errors,
                })
                .collect()
        } else {
            Vec::new()
        };
        for (u, a) in &o.users {
            let mine = self.users.entry(u.clone()).or_default();
            add_counts(&mut mine.actions, &a.actions);
            mine.slots |= a.slots;
        }
        for (c, s) in &o.clients {
            let mine = self.clients.entry(c.clone()).or_default();
            sat(&mut mine.activities, s.activities);
            mine.reports.merge(&s.reports);
        }
        self.reports.merge(&o.reports);
        for (k, s) in &o.api {
            self.api.entry(k.clone()).or_default().merge(s);
        }
        for (k, s) in &o.auth {
            let mine = self.auth.entry(k.clone()).or_default();
            sat(&mut mine.success, s.success);
            sat(&mut mine.failure, s.failure);
        }
        add_counts(&mut self.failed_login_ips, &o.failed_login_ips);
        add_counts(&mut self.failed_login_users, &o.failed_login_users);
        for (mine, theirs) in [
            (&mut self.external, &o.external),
            (&mut self.external_models, &o.external_models),
            (&mut self.external_users, &o.external_users),
            (&mut self.external_endpoints, &o.external_endpoints),
        ] {
            for (k, s) in theirs {
                mine.entry(k.clone()).or_default().merge(s);
            }
        }
        self.slots = slots;
        fives::merge_fives(&mut self.fives, &o.fives);
    }

    /// What the dashboard's routes read of a stored day
    /// (`store::rollups::DayPart::Dashboard`): clients and reports whole,
    /// each user's activities as one total (under the action `*`), API
    /// requests counted per status class without endpoints or latency
    /// histograms, nothing of auth or external calls. Every figure of
    /// `/dashboard`, `/metrics`, `/categories`, `/business-impact` and
    /// `/client-performance` reads the same from it as from the whole day,
    /// at a fraction of its bytes (BENCHMARKS.md, "Period reads").
    pub fn dashboard_part(&self) -> Rollup {
        let users = self
            .users
            .iter()
            .map(|(u, a)| (u.clone(), UserActivity { actions: [("*".to_owned(), a.total())].into(), slots: a.slots }))
            .collect();
        let mut api: BTreeMap<String, ApiStats> = BTreeMap::new();
        for (k, s) in &self.api {
            api.entry(api_key(split_api_key(k).0.saturating_mul(100), "*", "*")).or_default().merge(s);
        }
        for s in api.values_mut() {
            s.latency = Histogram::default();
        }
        Rollup { users, clients: self.clients.clone(), reports: self.reports.clone(), api, slots: self.slots.clone(), ..Rollup::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.clients.is_empty()
            && self.reports.generated == 0
            && self.api.is_empty()
            && self.auth.is_empty()
            && self.external.is_empty()
            && self.external_models.is_empty()
            && self.external_users.is_empty()
            && self.external_endpoints.is_empty()
    }

    /// The external-call breakdown `by` names: per service, or per
    /// service and model, user or endpoint ([`split_external_key`]).
    pub fn external_by(&self, by: CallKey) -> &BTreeMap<String, ExternalStats> {
        match by {
            CallKey::Service => &self.external,
            CallKey::Model => &self.external_models,
            CallKey::User => &self.external_users,
            CallKey::Endpoint => &self.external_endpoints,
        }
    }

    /// Activity events in the span.
    pub fn activities(&self) -> u64 {
        self.users.values().fold(0, |a, u| a.saturating_add(u.total()))
    }

    /// Counters summed over every quarter hour, or over the whole span when
    /// it has no slots.
    pub fn counters(&self) -> SlotCounters {
        if !self.slots.is_empty() {
            return self.slots.iter().fold(SlotCounters::default(), |mut acc, s| {
                sat(&mut acc.activities, s.activities);
                sat(&mut acc.reports, s.reports);
                acc.api_requests += s.api_requests;
                acc.errors += s.errors;
                acc
            });
        }
        let (mut api, mut errors) = (0.0, 0.0);
        for (k, s) in &self.api {
            api += s.count;
            if split_api_key(k).0 == 5 {
                errors += s.count;
            }
        }
        SlotCounters { activities: self.activities(), reports: self.reports.generated, api_requests: api, errors }
    }

    /// Failed logins ([`is_failed_login`]) of every auth event type.
    pub fn failed_logins(&self) -> u64 {
        self.auth
            .iter()
            .filter_map(|(t, o)| AuthEventType::parse(t).map(|t| (t, o)))
            .map(|(t, o)| {
                let s = if is_failed_login(t, true) { o.success } else { 0 };
                let f = if is_failed_login(t, false) { o.failure } else { 0 };
                s.saturating_add(f)
            })
            .fold(0, u64::saturating_add)
    }

    /// Activity counts per action.
    pub fn actions(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for a in self.users.values() {
            add_counts(&mut out, &a.actions);
        }
        out
    }
}

#[cfg(test)]
mod tests;
