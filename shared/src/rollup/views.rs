//! Views of a rollup: bounded (`compact`, with an `other` entry), one
//! kind's part, one user's own figures, some quarters of an hour.

use std::collections::BTreeMap;

use super::{ExternalStats, Rollup, SLOTS, SlotCounters, UserActivity, add_counts, api_key, sat, split_api_key};
use crate::model::EventKind;

/// The key that stands for every entry merged away by [`Rollup::compact`].
/// It holds a control character, which no user id, client id, IP, service
/// or endpoint may contain, so it never meets a real key.
pub const OTHER: &str = "\u{1f}other";

/// The kinds of event system health reads (external calls are costs).
pub const HEALTH_KINDS: [EventKind; 3] = [EventKind::Activity, EventKind::ApiRequest, EventKind::Auth];

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

impl Rollup {
    /// Bounds every breakdown with free-text keys (users and their actions,
    /// clients, endpoints, failed-login IPs and users, services and their
    /// models, users and endpoints, report
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
        for map in [&mut self.external, &mut self.external_models, &mut self.external_users, &mut self.external_endpoints] {
            cap(map, max, |s| s.calls as f64, ExternalStats::merge);
        }
    }

    /// What the health snapshot and alert conditions read of the span: all
    /// but its external calls ([`HEALTH_KINDS`]).
    pub fn health_part(&self) -> Rollup {
        let mut r = Rollup::default();
        for kind in HEALTH_KINDS {
            r.merge(&self.part(kind));
        }
        r
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
            EventKind::ExternalCall => {
                r.external = self.external.clone();
                r.external_models = self.external_models.clone();
                r.external_users = self.external_users.clone();
                r.external_endpoints = self.external_endpoints.clone();
            }
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
        r.fives = self.fives_part(kind);
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
        r.fives = self.fives_in_quarters(mask);
        r
    }
}
