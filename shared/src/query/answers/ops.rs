//! The operations figures: API requests per endpoint, auth events, external
//! calls and their cost, and the application figures of system health.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{by_count_desc, pct, round2};
use crate::model::HealthSnapshot;
use crate::model::snapshot::{ser_num, ser_opt};
use crate::rollup::{ApiStats, FiveCounters, Histogram, Rollup, shown, split_api_key};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointStats {
    pub endpoint: String,
    pub method: String,
    #[serde(serialize_with = "ser_num")]
    pub count: f64,
    /// Responses with a status of 500 or more.
    #[serde(serialize_with = "ser_num")]
    pub error_count: f64,
    #[serde(serialize_with = "ser_opt")]
    pub avg_response_time_ms: Option<f64>,
    #[serde(serialize_with = "ser_opt")]
    pub p50_response_time_ms: Option<f64>,
    #[serde(serialize_with = "ser_opt")]
    pub p95_response_time_ms: Option<f64>,
}

/// API request stats summed over status classes (errors: class 5xx).
#[derive(Default)]
struct ApiTotals {
    count: f64,
    errors: f64,
    time: f64,
    latency: Histogram,
}

impl ApiTotals {
    fn add(&mut self, class: u16, s: &ApiStats) {
        self.count += s.count;
        if class == 5 {
            self.errors += s.count;
        }
        self.time += s.time_ms;
        self.latency.merge(&s.latency);
    }

    fn avg_ms(&self) -> Option<f64> {
        (self.count > 0.0).then(|| round2(self.time / self.count))
    }
}

/// `/api-requests`: per endpoint and method, busiest first. `class` keeps
/// one status class (2 for 2xx), `endpoint` one endpoint.
pub fn api_requests(r: &Rollup, endpoint: Option<&str>, class: Option<u16>) -> Vec<EndpointStats> {
    let mut per: BTreeMap<(String, String), ApiTotals> = BTreeMap::new();
    for (key, s) in &r.api {
        let (c, method, ep) = split_api_key(key);
        if endpoint.is_some_and(|e| e != ep) || class.is_some_and(|k| k != c) {
            continue;
        }
        per.entry((shown(ep).to_owned(), method.to_owned())).or_default().add(c, s);
    }
    let mut v: Vec<EndpointStats> = per
        .into_iter()
        .map(|((endpoint, method), a)| EndpointStats {
            endpoint,
            method,
            count: a.count,
            error_count: a.errors,
            avg_response_time_ms: a.avg_ms(),
            p50_response_time_ms: a.latency.quantile(0.5).map(round2),
            p95_response_time_ms: a.latency.quantile(0.95).map(round2),
        })
        .collect();
    v.sort_by(|a, b| b.count.total_cmp(&a.count).then_with(|| (&a.endpoint, &a.method).cmp(&(&b.endpoint, &b.method))));
    v
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthTypeCounts {
    pub event_type: String,
    pub success: u64,
    pub failure: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpCount {
    pub ip_address: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserCount {
    pub user_id: String,
    pub count: u64,
}

/// `/auth-events`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthEvents {
    pub event_types: Vec<AuthTypeCounts>,
    pub failed_logins: u64,
    pub top_failed_ips: Vec<IpCount>,
    pub top_failed_users: Vec<UserCount>,
}

pub fn auth_events(r: &Rollup, limit: usize) -> AuthEvents {
    let event_types =
        r.auth.iter().map(|(t, o)| AuthTypeCounts { event_type: t.clone(), success: o.success, failure: o.failure }).collect();
    let mut ips = by_count_desc(r.failed_login_ips.clone());
    ips.truncate(limit);
    let mut users = by_count_desc(r.failed_login_users.clone());
    users.truncate(limit);
    AuthEvents {
        event_types,
        failed_logins: r.failed_logins(),
        top_failed_ips: ips.into_iter().map(|k| IpCount { ip_address: k.key, count: k.count }).collect(),
        top_failed_users: users.into_iter().map(|k| UserCount { user_id: k.key, count: k.count }).collect(),
    }
}

/// The application figures of a health snapshot: API traffic, errors and
/// failed logins of the last 24 hours, users active today (UTC).
pub fn app_health(last_24h: &FiveCounters, today: &Rollup, captured_at: DateTime<Utc>) -> HealthSnapshot {
    let api =
        ApiTotals { count: last_24h.api_requests, errors: last_24h.errors, time: last_24h.time_ms, latency: last_24h.latency.clone() };
    HealthSnapshot {
        cpu_percent: None,
        memory_percent: None,
        memory_used_mb: None,
        process_memory_mb: None,
        error_rate: pct(api.errors, api.count),
        requests_24h: round2(api.count),
        avg_response_time_ms: api.avg_ms(),
        p95_response_time_ms: api.latency.quantile(0.95).map(round2),
        active_users_today: today.users.len() as u64,
        failed_logins_24h: last_24h.failed_logins,
        captured_at,
    }
}
