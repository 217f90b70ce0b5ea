//! Rollups: what the period routes need of a span of events, in a form that
//! merges. An hour is rolled up from its raw events ([`Rollup::add`]); a day
//! or a whole period is the [`Rollup::merge`] of its hours. Every figure of
//! the read API is computed from a `Rollup`, whether it was stored by the
//! rollup job or built on the spot from raw events of hours not rolled up
//! yet: one code path, so the two can never disagree.
//!
//! Events are placed at their corrected `occurred_at`, the same time their
//! keys, hours and cursors use.

use std::collections::BTreeMap;

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{AuthEventType, Event, EventBody, EventKind, ReportStatus};

/// Quarter hours per hour: every IANA zone in use today is offset from UTC
/// by a multiple of 15 minutes, so quarter-hour counters let an hour be cut
/// at any local day, week or month boundary.
pub const SLOTS: usize = 4;

/// A latency histogram with logarithmic buckets (each 4% wider than the
/// last): it merges by adding counts, so the p50 and p95 of a month come
/// from its hours, within 2% of the exact value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Histogram(BTreeMap<u16, f64>);

const GROWTH: f64 = 1.04;

impl Histogram {
    fn index(ms: f64) -> u16 {
        ((ms.max(0.0) + 1.0).ln() / GROWTH.ln()).floor().min(f64::from(u16::MAX)) as u16
    }

    /// The representative value of a bucket (its geometric middle).
    fn value(i: u16) -> f64 {
        GROWTH.powf(f64::from(i) + 0.5) - 1.0
    }

    pub fn record(&mut self, ms: f64, weight: f64) {
        *self.0.entry(Self::index(ms)).or_default() += weight;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (i, w) in &other.0 {
            *self.0.entry(*i).or_default() += w;
        }
    }

    pub fn total(&self) -> f64 {
        self.0.values().sum()
    }

    /// The value below which a fraction `q` of the weight lies.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total <= 0.0 {
            return None;
        }
        let target = q.clamp(0.0, 1.0) * total;
        let mut seen = 0.0;
        for (i, w) in &self.0 {
            seen += w;
            if seen >= target - 1e-9 {
                return Some(Self::value(*i));
            }
        }
        self.0.keys().next_back().map(|i| Self::value(*i))
    }
}

/// A user's activity in the span: counts per action, and (on hours) which
/// quarter hours the user was active in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserActivity {
    pub actions: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "is_zero_u8")]
    pub slots: u8,
}

impl UserActivity {
    pub fn total(&self) -> u64 {
        self.actions.values().fold(0, |a, b| a.saturating_add(*b))
    }
}

fn is_zero_u8(v: &u8) -> bool {
    *v == 0
}

/// Generated reports and their outcomes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportStats {
    /// Every `generate_report` event, with an outcome or not.
    pub generated: u64,
    pub completed: u64,
    pub failed: u64,
    /// Sum and count of `processing_time_ms`, for the average.
    pub processing_ms: u64,
    pub processing_count: u64,
    pub categories: BTreeMap<String, u64>,
    pub impact_high: u64,
    pub impact_medium: u64,
    pub impact_low: u64,
    pub savings: f64,
}

impl ReportStats {
    fn add(&mut self, e: &crate::model::Activity) {
        sat(&mut self.generated, 1);
        let Some(r) = &e.report else { return };
        match r.status {
            ReportStatus::Completed => sat(&mut self.completed, 1),
            ReportStatus::Failed => sat(&mut self.failed, 1),
        }
        if let Some(ms) = r.processing_time_ms {
            sat(&mut self.processing_ms, ms);
            sat(&mut self.processing_count, 1);
        }
        for (k, v) in &r.categories {
            sat(self.categories.entry(k.clone()).or_default(), *v);
        }
        if let Some(i) = &r.impact {
            sat(&mut self.impact_high, i.high);
            sat(&mut self.impact_medium, i.medium);
            sat(&mut self.impact_low, i.low);
        }
        self.savings += r.estimated_monthly_savings.unwrap_or(0.0);
    }

    pub fn merge(&mut self, o: &ReportStats) {
        sat(&mut self.generated, o.generated);
        sat(&mut self.completed, o.completed);
        sat(&mut self.failed, o.failed);
        sat(&mut self.processing_ms, o.processing_ms);
        sat(&mut self.processing_count, o.processing_count);
        add_counts(&mut self.categories, &o.categories);
        sat(&mut self.impact_high, o.impact_high);
        sat(&mut self.impact_medium, o.impact_medium);
        sat(&mut self.impact_low, o.impact_low);
        self.savings += o.savings;
    }

    /// Completed out of reports with an outcome, in percent.
    pub fn success_rate(&self) -> Option<f64> {
        let decided = self.completed as f64 + self.failed as f64;
        (decided > 0.0).then(|| (100.0 * self.completed as f64 / decided).clamp(0.0, 100.0))
    }

    pub fn avg_processing_seconds(&self) -> Option<f64> {
        (self.processing_count > 0).then(|| self.processing_ms as f64 / self.processing_count as f64 / 1000.0)
    }
}

/// A client's activity and reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientStats {
    pub activities: u64,
    pub reports: ReportStats,
}

/// Requests of one endpoint, method and status class. Counts are weighted
/// by `1 / sample_rate`, so sampled traffic still adds up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiStats {
    pub count: f64,
    /// Requests actually received (unweighted).
    pub received: u64,
    pub time_ms: f64,
    pub latency: Histogram,
}

impl ApiStats {
    pub fn merge(&mut self, o: &ApiStats) {
        self.count += o.count;
        sat(&mut self.received, o.received);
        self.time_ms += o.time_ms;
        self.latency.merge(&o.latency);
    }
}

/// The key of [`Rollup::api`]: `"{class digit} {METHOD} {endpoint}"`.
pub fn api_key(status_code: u16, method: &str, endpoint: &str) -> String {
    format!("{} {} {}", status_code / 100, method, endpoint)
}

/// Splits an [`api_key`] into (status class digit, method, endpoint).
pub fn split_api_key(key: &str) -> (u16, &str, &str) {
    let mut parts = key.splitn(3, ' ');
    let class = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    (class, parts.next().unwrap_or(""), parts.next().unwrap_or(""))
}

/// Outcomes of one auth event type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    pub success: u64,
    pub failure: u64,
}

/// Calls to one external service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExternalStats {
    pub calls: u64,
    pub errors: u64,
    pub time_ms: f64,
    pub cost: f64,
}

impl ExternalStats {
    pub fn merge(&mut self, o: &ExternalStats) {
        sat(&mut self.calls, o.calls);
        sat(&mut self.errors, o.errors);
        self.time_ms += o.time_ms;
        self.cost += o.cost;
    }
}

/// Counters per quarter hour, for cutting an hour at a local boundary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlotCounters {
    pub activities: u64,
    pub reports: u64,
    pub api_requests: f64,
    pub errors: f64,
}

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
    /// Quarter-hour counters; only hours built from events have them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<SlotCounters>,
}

/// Adds without wrapping: accepted values are bounded (10^12 per count),
/// but a sum over enough of them must still never wrap or panic.
pub fn sat(into: &mut u64, v: u64) {
    *into = into.saturating_add(v);
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        sat(into.entry(k.clone()).or_default(), *v);
    }
}

/// The key that stands for every entry merged away by [`Rollup::compact`].
/// It holds a control character, which no user id, client id, IP, service
/// or endpoint may contain, so it never meets a real key.
pub const OTHER: &str = "\u{1f}other";

/// How a key is shown in an answer: [`OTHER`] as `other`.
pub fn shown(key: &str) -> &str {
    if key == OTHER { "other" } else { key }
}

/// Keeps the `max` most active entries of a breakdown (by `weight`,
/// ties by key) and merges the others into [`OTHER`] with `merge`.
fn cap<V: Default>(map: &mut BTreeMap<String, V>, max: usize, weight: impl Fn(&V) -> f64, merge: impl Fn(&mut V, &V)) {
    let max = max.max(2);
    if map.len() <= max {
        return;
    }
    let mut order: Vec<(f64, String)> = map.iter().filter(|(k, _)| *k != OTHER).map(|(k, v)| (weight(v), k.clone())).collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut other = map.remove(OTHER).unwrap_or_default();
    for (_, k) in order.into_iter().skip(max - 1) {
        if let Some(v) = map.remove(&k) {
            merge(&mut other, &v);
        }
    }
    map.insert(OTHER.to_owned(), other);
}

fn cap_counts(map: &mut BTreeMap<String, u64>, max: usize) {
    cap(map, max, |v| *v as f64, |a, b| sat(a, *b));
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
        match &e.body {
            EventBody::Activity(a) => {
                sat(&mut counters.activities, 1);
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
            }
            EventBody::Auth(a) => {
                let o = self.auth.entry(a.event_type.as_str().to_owned()).or_default();
                if a.success {
                    sat(&mut o.success, 1);
                } else {
                    sat(&mut o.failure, 1);
                }
                if is_failed_login(a.event_type, a.success) {
                    if let Some(ip) = &e.ip_address {
                        sat(self.failed_login_ips.entry(ip.clone()).or_default(), 1);
                    }
                    if let Some(u) = &e.user_id {
                        sat(self.failed_login_users.entry(u.clone()).or_default(), 1);
                    }
                }
            }
            EventBody::ExternalCall(c) => {
                let s = self.external.entry(c.service.clone()).or_default();
                sat(&mut s.calls, 1);
                if c.status_code.is_some_and(|code| code >= 400) || c.error_message.is_some() {
                    sat(&mut s.errors, 1);
                }
                s.time_ms += c.response_time_ms;
                s.cost += c.cost_estimate.unwrap_or(0.0);
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
        for (k, s) in &o.external {
            self.external.entry(k.clone()).or_default().merge(s);
        }
        self.slots = slots;
    }

    /// Bounds every breakdown with free-text keys (users and their actions,
    /// clients, endpoints, failed-login IPs and users, services, report
    /// categories) to `max` entries: the least active are merged into one
    /// [`OTHER`] entry. Totals stay exact; only which key a figure belongs
    /// to is lost for the merged ones.
    pub fn compact(&mut self, max: usize) {
        for u in self.users.values_mut() {
            cap_counts(&mut u.actions, max);
        }
        cap(
            &mut self.users,
            max,
            |u| u.total() as f64,
            |a, b| {
                add_counts(&mut a.actions, &b.actions);
                a.slots |= b.slots;
            },
        );
        cap(
            &mut self.clients,
            max,
            |c| c.activities as f64,
            |a, b| {
                sat(&mut a.activities, b.activities);
                a.reports.merge(&b.reports);
            },
        );
        for c in self.clients.values_mut() {
            cap_counts(&mut c.reports.categories, max);
        }
        cap_counts(&mut self.reports.categories, max);
        // Endpoints are capped as endpoints: the merged ones keep their
        // status class and method under the endpoint `OTHER`.
        let mut per_endpoint: BTreeMap<String, f64> = BTreeMap::new();
        for (k, s) in &self.api {
            *per_endpoint.entry(split_api_key(k).2.to_owned()).or_default() += s.count;
        }
        if per_endpoint.len() > max.max(2) {
            let mut order: Vec<(f64, String)> = per_endpoint.into_iter().filter(|(k, _)| k != OTHER).map(|(k, v)| (v, k)).collect();
            order.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            let dropped: std::collections::BTreeSet<String> = order.into_iter().skip(max.max(2) - 1).map(|(_, k)| k).collect();
            let api = std::mem::take(&mut self.api);
            for (k, s) in api {
                let (class, method, endpoint) = split_api_key(&k);
                let key = if dropped.contains(endpoint) { api_key(class * 100, method, OTHER) } else { k.clone() };
                self.api.entry(key).or_default().merge(&s);
            }
        }
        cap_counts(&mut self.failed_login_ips, max);
        cap_counts(&mut self.failed_login_users, max);
        cap(&mut self.external, max, |s| s.calls as f64, ExternalStats::merge);
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.clients.is_empty()
            && self.reports.generated == 0
            && self.api.is_empty()
            && self.auth.is_empty()
            && self.external.is_empty()
    }

    /// The figures of one kind of event only (its maps and its quarter-hour
    /// counters): an hour is kept kind by kind, and merging the four parts
    /// gives the whole back.
    pub fn part(&self, kind: EventKind) -> Rollup {
        let mut r = Rollup::default();
        match kind {
            EventKind::Activity => {
                r.users = self.users.clone();
                r.clients = self.clients.clone();
                r.reports = self.reports.clone();
            }
            EventKind::ApiRequest => r.api = self.api.clone(),
            EventKind::Auth => {
                r.auth = self.auth.clone();
                r.failed_login_ips = self.failed_login_ips.clone();
                r.failed_login_users = self.failed_login_users.clone();
            }
            EventKind::ExternalCall => r.external = self.external.clone(),
        }
        if r.is_empty() {
            return Rollup::default();
        }
        r.slots = self
            .slots
            .iter()
            .map(|c| match kind {
                EventKind::Activity => SlotCounters { activities: c.activities, reports: c.reports, ..Default::default() },
                EventKind::ApiRequest => SlotCounters { api_requests: c.api_requests, errors: c.errors, ..Default::default() },
                EventKind::Auth | EventKind::ExternalCall => SlotCounters::default(),
            })
            .collect();
        r
    }

    /// Only what one user may see of the span: their own activity and the
    /// reports among it. Other kinds are admin-only figures.
    pub fn own(&self, user: &str) -> Rollup {
        let mut r = Rollup::default();
        if let Some(a) = self.users.get(user) {
            r.users.insert(user.to_owned(), a.clone());
        }
        r
    }

    /// The part of an hour's rollup that falls in the quarter hours of
    /// `mask` (bit i = quarter i): exact for the counters that have slots,
    /// and for the users active in those quarters.
    pub fn quarters(&self, mask: u8) -> Rollup {
        let mut r = Rollup::default();
        for (u, a) in &self.users {
            if a.slots & mask != 0 {
                r.users.insert(u.clone(), UserActivity { actions: BTreeMap::new(), slots: a.slots & mask });
            }
        }
        let mut slots = vec![SlotCounters::default(); SLOTS];
        for (i, s) in self.slots.iter().enumerate() {
            if mask & (1 << i) != 0 {
                slots[i] = s.clone();
            }
        }
        r.slots = slots;
        r
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
mod tests {
    use super::*;
    use crate::config::Retention;
    use crate::time::parse_timestamp;
    use crate::validate::{Context, validate_event};

    fn ev(v: serde_json::Value) -> Event {
        let now = parse_timestamp("2026-11-21T12:00:00Z").unwrap();
        validate_event(&v.to_string(), &Context { received_at: now, sent_at: None, retention: Retention::default() }).unwrap()
    }

    fn sample() -> Vec<Event> {
        use serde_json::json;
        vec![
            ev(json!({"kind": "activity", "occurred_at": "2026-11-21T10:05:00Z", "user_id": "u1", "action": "generate_report",
                "client_id": "c1", "report": {"status": "completed", "processing_time_ms": 4000, "categories": {"cost": 3},
                "impact": {"high": 1, "medium": 2, "low": 0}, "estimated_monthly_savings": 10.5}})),
            ev(json!({"kind": "activity", "occurred_at": "2026-11-21T10:35:00Z", "user_id": "u2", "action": "login"})),
            ev(json!({"kind": "api_request", "occurred_at": "2026-11-21T10:50:00Z", "endpoint": "/a", "method": "GET",
                "status_code": 503, "response_time_ms": 100, "sample_rate": 0.5})),
            ev(json!({"kind": "auth", "occurred_at": "2026-11-21T10:10:00Z", "user_id": "u3", "event_type": "login_failed",
                "success": false, "ip_address": "198.51.100.1"})),
            ev(json!({"kind": "external_call", "occurred_at": "2026-11-21T10:20:00Z", "service": "gemini", "endpoint": "/v1",
                "status_code": 429, "response_time_ms": 300, "cost_estimate": 0.25})),
        ]
    }

    #[test]
    fn an_hour_counts_every_kind_with_weights_and_quarters() {
        let mut r = Rollup::default();
        sample().iter().for_each(|e| r.add(e));
        assert_eq!(r.activities(), 2);
        assert_eq!(r.reports.completed, 1);
        assert_eq!(r.reports.categories["cost"], 3);
        assert_eq!(r.clients["c1"].reports.generated, 1);
        let api = &r.api["5 GET /a"];
        assert_eq!((api.count, api.received), (2.0, 1), "weighted by 1/sample_rate");
        assert_eq!(r.auth["login_failed"], Outcomes { success: 0, failure: 1 });
        assert_eq!(r.failed_login_ips["198.51.100.1"], 1);
        assert_eq!(r.failed_login_users["u3"], 1);
        assert_eq!(r.failed_logins(), 1);
        assert_eq!(r.external["gemini"].errors, 1);
        assert_eq!(r.users["u1"].slots, 0b0001);
        assert_eq!(r.users["u2"].slots, 0b0100);
        let c = r.counters();
        assert_eq!((c.activities, c.reports, c.api_requests, c.errors), (2, 1, 2.0, 2.0));
        let second_half = r.quarters(0b1100);
        assert_eq!(second_half.users.keys().collect::<Vec<_>>(), ["u2"]);
        assert_eq!(second_half.counters().activities, 1);
        assert_eq!(second_half.counters().errors, 2.0);
    }

    #[test]
    fn merging_equals_adding_everything_at_once() {
        let events = sample();
        let mut whole = Rollup::default();
        events.iter().for_each(|e| whole.add(e));
        let mut merged = Rollup::default();
        for e in &events {
            let mut one = Rollup::default();
            one.add(e);
            let mut tmp = merged.clone();
            tmp.merge(&one);
            merged = tmp;
        }
        assert_eq!(merged, whole, "parts of one hour merge into the hour, quarters included");
        let mut day = Rollup { slots: Vec::new(), ..whole.clone() };
        day.merge(&whole);
        assert!(day.slots.is_empty(), "a span without quarters drops them");
        assert_eq!(day.counters().activities, 2 * whole.counters().activities);
        assert_eq!(day.counters().errors, 2.0 * whole.counters().errors);
    }

    #[test]
    fn the_parts_of_each_kind_merge_back_into_the_whole() {
        let mut whole = Rollup::default();
        sample().iter().for_each(|e| whole.add(e));
        let mut back = Rollup::default();
        for k in EventKind::ALL {
            back.merge(&whole.part(k));
        }
        assert_eq!(back, whole);
        assert!(whole.part(EventKind::ApiRequest).users.is_empty());
        assert_eq!(whole.part(EventKind::ApiRequest).counters().errors, 2.0);
        assert_eq!(whole.part(EventKind::ApiRequest).counters().activities, 0);
    }

    #[test]
    fn compacting_keeps_the_busiest_keys_and_every_total() {
        let mut r = Rollup::default();
        let t = parse_timestamp("2026-11-21T10:00:00Z").unwrap();
        for i in 0..50u32 {
            for _ in 0..=i {
                r.add(&ev(serde_json::json!({"kind": "api_request", "occurred_at": t, "endpoint": format!("/items/{i}"), "method": "GET",
                    "status_code": if i % 2 == 0 { 200 } else { 503 }, "response_time_ms": 10})));
                r.add(&ev(serde_json::json!({"kind": "activity", "occurred_at": t, "user_id": format!("u{i}"), "action": "login", "client_id": format!("c{i}")})));
                r.add(&ev(serde_json::json!({"kind": "auth", "occurred_at": t, "user_id": format!("u{i}"), "event_type": "login_failed", "success": false,
                    "ip_address": format!("198.51.100.{i}")})));
                r.add(&ev(serde_json::json!({"kind": "external_call", "occurred_at": t, "service": format!("s{i}"), "endpoint": "/v1", "response_time_ms": 1, "cost_estimate": 0.5})));
            }
        }
        let before = (r.counters(), r.activities(), r.failed_logins(), r.external.values().map(|s| s.cost).sum::<f64>());
        r.compact(10);
        let endpoints: std::collections::BTreeSet<&str> = r.api.keys().map(|k| split_api_key(k).2).collect();
        assert_eq!(endpoints.len(), 10);
        assert!(endpoints.contains(OTHER) && endpoints.contains("/items/49") && !endpoints.contains("/items/0"));
        assert_eq!(
            (r.users.len(), r.clients.len(), r.failed_login_ips.len(), r.failed_login_users.len(), r.external.len()),
            (10, 10, 10, 10, 10)
        );
        assert_eq!(r.users[OTHER].total(), (1..=41).sum::<u64>(), "the 41 least active users merged");
        let after = (r.counters(), r.activities(), r.failed_logins(), r.external.values().map(|s| s.cost).sum::<f64>());
        assert_eq!(before, after, "totals stay exact");
        assert_eq!(r.api.values().map(|s| s.count).sum::<f64>(), (1..=50).sum::<u32>() as f64);
        assert_eq!(shown(OTHER), "other");
        let again = r.clone();
        r.compact(10);
        assert_eq!(r, again, "compacting is idempotent");
    }

    #[test]
    fn sums_saturate_instead_of_wrapping() {
        let big = |n: u64| ReportStats { generated: n, completed: n, impact_high: n, processing_ms: n, ..Default::default() };
        let mut r = big(u64::MAX - 1);
        r.merge(&big(10));
        assert_eq!((r.generated, r.completed, r.impact_high, r.processing_ms), (u64::MAX, u64::MAX, u64::MAX, u64::MAX));
        r.failed = u64::MAX;
        let rate = r.success_rate().unwrap();
        assert!((0.0..=100.0).contains(&rate), "{rate}");
    }

    #[test]
    fn the_histogram_is_within_two_percent_and_merges() {
        let mut h = Histogram::default();
        let mut parts = [Histogram::default(), Histogram::default()];
        for i in 1..=1000 {
            h.record(f64::from(i), 1.0);
            parts[i as usize % 2].record(f64::from(i), 1.0);
        }
        let p50 = h.quantile(0.5).unwrap();
        let p95 = h.quantile(0.95).unwrap();
        assert!((p50 - 500.0).abs() / 500.0 < 0.02, "{p50}");
        assert!((p95 - 950.0).abs() / 950.0 < 0.02, "{p95}");
        let mut m = parts[0].clone();
        m.merge(&parts[1]);
        assert_eq!(m, h);
        assert_eq!(Histogram::default().quantile(0.5), None);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Histogram>(&json).unwrap(), h);
    }
}
