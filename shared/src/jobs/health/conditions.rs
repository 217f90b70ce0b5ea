//! The alert conditions as pure rules over rollups: which alerts a span's
//! figures raise, each with its setting, threshold, value and window, and
//! the span it is claimed for (what makes it go out once).
//!
//! - `error_rate`, `failed_logins_ip`, `failed_logins_user` and
//!   `latency_p95` look at the 15-minute window and are claimed for it.
//! - `no_activity` looks at the last [`ALERT_SILENCE_HOURS`] hours (the
//!   silence) and at the 7 UTC days up to the one the silence began in (the
//!   look-back, that day's hours before the silence included). It is
//!   claimed for the last `max(silence, 24 h)` hours: raised when a silence
//!   reaches the setting, then again only after as many hours more of the
//!   same silence, and never twice within 24 hours (a claim's span must not
//!   overlap the last one's).
//! - `external_cost` looks at the UTC day so far and is claimed for the
//!   whole day: once per day.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use super::HealthAlert;
use crate::config::{ALERT_DAILY_COST, ALERT_ERROR_RATE, ALERT_FAILED_LOGINS, ALERT_P95_MS, ALERT_SILENCE_HOURS, JobsConfig};
use crate::jobs::Window;
use crate::query::answers::{external_cost, round2};
use crate::query::period::Piece;
use crate::rollup::{Histogram, OTHER, Rollup, split_api_key};
use crate::time::day_start;

/// The UTC days `no_activity` looks back over, and on how many of them the
/// tenant must have had activity events.
pub const LOOK_BACK_DAYS: i64 = 7;
pub const ACTIVE_DAYS_NEEDED: usize = 3;
/// The shortest span between two `no_activity` alerts of a tenant.
pub const SILENCE_REPEAT_HOURS: i64 = 24;

/// Whether a span had activity events (users are only counted for them).
pub fn has_activity(r: &Rollup) -> bool {
    !r.users.is_empty()
}

/// The conditions of the 15-minute window `w` (or a manual run's window):
/// error rate, failed logins per IP and per user, p95 latency per endpoint.
pub fn window_conditions(tenant: &str, r: &Rollup, w: Window, cfg: &JobsConfig) -> Vec<HealthAlert> {
    let c = r.counters();
    let failed = r.failed_logins();
    let alert = |condition, subject, setting: &crate::config::Var, threshold, value| HealthAlert {
        requests: Some(round2(c.api_requests)),
        errors: Some(round2(c.errors)),
        failed_logins: Some(failed),
        ..HealthAlert::new(tenant, condition, subject, setting.name, threshold, value, w, w)
    };
    let mut out = Vec::new();
    if c.api_requests >= cfg.alert_min_requests as f64 {
        let rate = round2(100.0 * c.errors / c.api_requests);
        if rate > cfg.alert_error_rate {
            out.push(alert("error_rate", None, &ALERT_ERROR_RATE, cfg.alert_error_rate, rate));
        }
    }
    let limit = cfg.alert_failed_logins;
    for (ip, n) in r.failed_login_ips.iter().filter(|(_, n)| **n > limit) {
        out.push(alert("failed_logins_ip", Some(ip.clone()), &ALERT_FAILED_LOGINS, limit as f64, *n as f64));
    }
    for (user, n) in r.failed_login_users.iter().filter(|(_, n)| **n > limit) {
        out.push(alert("failed_logins_user", Some(user.clone()), &ALERT_FAILED_LOGINS, limit as f64, *n as f64));
    }
    let p95_limit = cfg.alert_p95_ms as f64;
    let mut slow = Vec::new();
    for (subject, (requests, latency)) in endpoint_latency(r) {
        if requests < cfg.alert_min_requests as f64 {
            continue;
        }
        if let Some(p95) = latency.quantile(0.95).map(round2)
            && p95 > p95_limit
        {
            slow.push(HealthAlert {
                endpoint_requests: Some(round2(requests)),
                ..alert("latency_p95", Some(subject), &ALERT_P95_MS, p95_limit, p95)
            });
        }
    }
    // A slow database makes every endpoint slow: the slowest few say so
    // without a mail per endpoint.
    slow.sort_by(|a, b| b.value.total_cmp(&a.value).then_with(|| a.subject.cmp(&b.subject)));
    slow.truncate(MAX_LATENCY_ALERTS);
    out.extend(slow);
    out
}

/// `latency_p95` alerts of one tenant's window at most (the slowest).
pub const MAX_LATENCY_ALERTS: usize = 5;

/// Per endpoint and method (`"METHOD endpoint"`, the alert's subject), the
/// weighted requests and the latency histogram, every status class of it
/// combined. The entry a capped rollup merged endpoints into is no
/// endpoint and is left out.
pub fn endpoint_latency(r: &Rollup) -> BTreeMap<String, (f64, Histogram)> {
    let mut out: BTreeMap<String, (f64, Histogram)> = BTreeMap::new();
    for (k, s) in &r.api {
        let (_, method, endpoint) = split_api_key(k);
        if endpoint == OTHER || method.is_empty() || endpoint.is_empty() {
            continue;
        }
        let e = out.entry(format!("{method} {endpoint}")).or_default();
        e.0 += s.count;
        e.1.merge(&s.latency);
    }
    out
}

/// The silence `no_activity` asks about: the last [`ALERT_SILENCE_HOURS`] before `end`.
pub fn silence_window(end: DateTime<Utc>, cfg: &JobsConfig) -> Window {
    Window { start: end - Duration::hours(i64::from(cfg.alert_silence_hours)), end }
}

/// The look-back of a silence: the UTC day its last instant before the
/// silence lies in (up to the silence) and the 6 days before it.
pub fn look_back_window(silence: Window) -> Window {
    let last_day = day_start(silence.start - Duration::seconds(1));
    Window { start: last_day - Duration::days(LOOK_BACK_DAYS - 1), end: silence.start }
}

/// `no_activity`, given a silence that had no activity events and the
/// pieces of its look-back: raised when at least [`ACTIVE_DAYS_NEEDED`]
/// UTC days of the look-back had activity. The value is the hours since
/// the end of the last piece (hour or day) with activity: a lower bound of
/// the silence, never below the setting.
pub fn no_activity(tenant: &str, silence: Window, look_back: &[Piece], cfg: &JobsConfig) -> Option<HealthAlert> {
    let active: Vec<&Piece> = look_back.iter().filter(|p| p.start < silence.start && has_activity(&p.rollup)).collect();
    let days: BTreeSet<DateTime<Utc>> = active.iter().map(|p| day_start(p.start)).collect();
    if days.len() < ACTIVE_DAYS_NEEDED {
        return None;
    }
    let last = active.iter().map(|p| p.end).max()?.min(silence.start);
    let silent_hours = round2((silence.end - last).num_seconds() as f64 / 3600.0);
    let hours = i64::from(cfg.alert_silence_hours);
    let claim = Window { start: silence.end - Duration::hours(hours.max(SILENCE_REPEAT_HOURS)), end: silence.end };
    Some(HealthAlert {
        active_days: Some(days.len()),
        ..HealthAlert::new(tenant, "no_activity", None, ALERT_SILENCE_HOURS.name, hours as f64, silent_hours, silence, claim)
    })
}

/// The UTC day an alert run ending at `end` adds up cost for: the day of
/// its last instant (a run at midnight completes the day before).
pub fn cost_day(end: DateTime<Utc>) -> Window {
    let start = day_start(end - Duration::seconds(1));
    Window { start, end: start + Duration::days(1) }
}

/// `external_cost`: the cost of every external call of the day so far
/// (`today`, the rollup of `[day start, end)`) over [`ALERT_DAILY_COST`],
/// when it is set; claimed for the whole UTC day.
pub fn daily_cost(tenant: &str, today: &Rollup, end: DateTime<Utc>, cfg: &JobsConfig) -> Option<HealthAlert> {
    let limit = cfg.alert_daily_cost?;
    let day = cost_day(end);
    let cost = external_cost(today);
    let so_far = Window { start: day.start, end: end.min(day.end) };
    (cost > limit).then(|| HealthAlert::new(tenant, "external_cost", None, ALERT_DAILY_COST.name, limit, cost, so_far, day))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::rollup::{ApiStats, UserActivity, api_key};

    fn at(s: &str) -> DateTime<Utc> {
        crate::time::parse_timestamp(s).unwrap()
    }

    fn window(end: &str) -> Window {
        Window { start: at(end) - Duration::minutes(15), end: at(end) }
    }

    fn requests(n: u32, ms: f64) -> ApiStats {
        let mut s = ApiStats { count: f64::from(n), received: u64::from(n), time_ms: f64::from(n) * ms, ..Default::default() };
        s.latency.record(ms, f64::from(n));
        s
    }

    #[test]
    fn window_conditions_need_volume_and_name_their_threshold() {
        let cfg = JobsConfig::default();
        let w = window("2026-11-21T10:00:00Z");
        let mut r = Rollup::default();
        r.api.insert(api_key(500, "GET", "/a"), ApiStats { count: 3.0, received: 3, ..Default::default() });
        assert!(window_conditions("t", &r, w, &cfg).is_empty(), "3 failures of 3 requests are below the volume floor");
        r.api.insert(api_key(200, "GET", "/a"), ApiStats { count: 30.0, received: 30, ..Default::default() });
        let a = window_conditions("t", &r, w, &cfg);
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].condition, a[0].threshold_setting, a[0].value), ("error_rate", "ANALYTICS_ALERT_ERROR_RATE", 9.09));
        assert_eq!((a[0].requests, a[0].errors, a[0].claim), (Some(33.0), Some(3.0), w));
        r.failed_login_ips.insert("203.0.113.9".into(), 21);
        r.failed_login_ips.insert("203.0.113.10".into(), 20);
        r.failed_login_users.insert("bob".into(), 25);
        let a = window_conditions("t", &r, w, &cfg);
        let keys: Vec<String> = a.iter().map(HealthAlert::key).collect();
        assert_eq!(keys, ["error_rate#-", "failed_logins_ip#203.0.113.9", "failed_logins_user#bob"], "20 is not over 20");
    }

    /// The status classes of one endpoint and method count together, for
    /// the volume floor and the percentile; other methods, other endpoints
    /// and the merged `other` endpoint are apart.
    #[test]
    fn latency_is_per_endpoint_and_method_across_status_classes() {
        let cfg = JobsConfig::default();
        let w = window("2026-11-21T10:00:00Z");
        let mut r = Rollup::default();
        r.api.insert(api_key(200, "GET", "/reports"), requests(12, 3000.0));
        r.api.insert(api_key(404, "GET", "/reports"), requests(10, 2500.0));
        r.api.insert(api_key(200, "POST", "/reports"), requests(40, 100.0));
        r.api.insert(api_key(200, "GET", "/slow"), requests(19, 9000.0));
        r.api.insert(api_key(200, "GET", OTHER), requests(50, 9000.0));
        let by = endpoint_latency(&r);
        assert_eq!(by.keys().collect::<Vec<_>>(), ["GET /reports", "GET /slow", "POST /reports"]);
        let a = window_conditions("t", &r, w, &cfg);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(
            (a[0].condition, a[0].subject.as_deref(), a[0].threshold_setting),
            ("latency_p95", Some("GET /reports"), "ANALYTICS_ALERT_P95_MS")
        );
        assert_eq!((a[0].threshold, a[0].endpoint_requests), (2000.0, Some(22.0)));
        assert!((a[0].value - 3000.0).abs() < 3000.0 * 0.02, "the p95 within the histogram's 2%: {}", a[0].value);
        let lenient = JobsConfig { alert_p95_ms: 3100, ..cfg.clone() };
        assert!(window_conditions("t", &r, w, &lenient).is_empty(), "3000 ms is not over 3100");
        let strict = JobsConfig { alert_min_requests: 19, ..cfg };
        let subjects: Vec<_> = window_conditions("t", &r, w, &strict).into_iter().filter_map(|a| a.subject).collect();
        assert_eq!(subjects, ["GET /slow", "GET /reports"], "the slowest first");
        // At most a few per window, the slowest.
        let mut many = Rollup::default();
        for i in 0..12 {
            many.api.insert(api_key(200, "GET", &format!("/e{i:02}")), requests(30, 3000.0 + 100.0 * f64::from(i)));
        }
        let a = window_conditions("t", &many, w, &strict);
        assert_eq!(a.len(), MAX_LATENCY_ALERTS);
        assert_eq!(a[0].subject.as_deref(), Some("GET /e11"));
        // A 2048-character endpoint is claimed under a key a sort key holds.
        let long = format!("/{}", "a".repeat(2047));
        let mut r = Rollup::default();
        r.api.insert(api_key(200, "GET", &long), requests(30, 5000.0));
        let a = window_conditions("t", &r, w, &JobsConfig::default());
        assert_eq!(a[0].subject.as_deref(), Some(format!("GET {long}").as_str()), "the message keeps the whole subject");
        assert!(a[0].key().len() < 100 && a[0].key().starts_with("latency_p95#sha256:"), "{}", a[0].key());
    }

    fn active_piece(start: &str, hours: i64) -> Piece {
        let mut rollup = Rollup::default();
        rollup.users.insert("u-1".into(), UserActivity { actions: [("login".to_string(), 1)].into(), slots: 0 });
        Piece { start: at(start), end: at(start) + Duration::hours(hours), rollup }
    }

    #[test]
    fn the_silence_looks_back_over_seven_utc_days() {
        let cfg = JobsConfig::default();
        let s = silence_window(at("2026-11-21T10:05:00Z"), &cfg);
        assert_eq!(s.start, at("2026-11-20T10:05:00Z"));
        let b = look_back_window(s);
        assert_eq!((b.start, b.end), (at("2026-11-14T00:00:00Z"), s.start), "20 November up to the silence and the 6 days before");
        let midnight = look_back_window(Window { start: at("2026-11-21T00:00:00Z"), end: at("2026-11-22T00:00:00Z") });
        assert_eq!(midnight.start, at("2026-11-14T00:00:00Z"), "a silence from midnight looks back over the 7 whole days before");
    }

    #[test]
    fn no_activity_needs_three_active_days_and_repeats_at_most_daily() {
        let cfg = JobsConfig::default();
        let s = silence_window(at("2026-11-21T10:05:00Z"), &cfg);
        let mut pieces = vec![active_piece("2026-11-15T00:00:00Z", 24)];
        // Two pieces of one day are one day.
        pieces.push(active_piece("2026-11-20T08:00:00Z", 1));
        pieces.push(active_piece("2026-11-20T09:00:00Z", 1));
        assert!(no_activity("t", s, &pieces, &cfg).is_none(), "activity on 2 days of 7");
        // A piece without activity is no active day.
        pieces.push(Piece { rollup: Rollup::default(), ..active_piece("2026-11-16T00:00:00Z", 24) });
        assert!(no_activity("t", s, &pieces, &cfg).is_none());
        pieces.push(active_piece("2026-11-17T00:00:00Z", 24));
        let a = no_activity("t", s, &pieces, &cfg).unwrap();
        assert_eq!((a.condition, a.subject.clone(), a.threshold_setting), ("no_activity", None, "ANALYTICS_ALERT_SILENCE_HOURS"));
        assert_eq!((a.threshold, a.value, a.active_days), (24.0, 24.08, Some(3)), "silent since 20 November 10:00");
        assert_eq!((a.window_start, a.window_end), (s.start, s.end));
        assert_eq!((a.claim.start, a.claim.end), (s.start, s.end));
        assert_eq!(a.requests, None, "no 15-minute figures");
        let short = JobsConfig { alert_silence_hours: 6, ..cfg };
        let s6 = silence_window(at("2026-11-21T10:05:00Z"), &short);
        let a = no_activity("t", s6, &pieces, &short).unwrap();
        assert_eq!((a.threshold, a.window_start), (6.0, at("2026-11-21T04:05:00Z")));
        assert_eq!(a.claim.start, at("2026-11-20T10:05:00Z"), "a short silence is still claimed for 24 hours");
    }

    #[test]
    fn the_daily_cost_is_off_unless_set_and_claimed_for_the_day() {
        let mut r = Rollup::default();
        r.external.insert("gemini".into(), crate::rollup::ExternalStats { calls: 3, cost: 1.25, ..Default::default() });
        r.external.insert("brightdata".into(), crate::rollup::ExternalStats { calls: 1, cost: 0.5, ..Default::default() });
        let end = at("2026-11-21T10:05:00Z");
        assert!(daily_cost("t", &r, end, &JobsConfig::default()).is_none(), "unset is off");
        let cfg = JobsConfig { alert_daily_cost: Some(1.5), ..Default::default() };
        let a = daily_cost("t", &r, end, &cfg).unwrap();
        assert_eq!((a.condition, a.threshold_setting, a.threshold, a.value), ("external_cost", "ANALYTICS_ALERT_DAILY_COST", 1.5, 1.75));
        assert_eq!((a.window_start, a.window_end), (at("2026-11-21T00:00:00Z"), end));
        assert_eq!((a.claim.start, a.claim.end), (at("2026-11-21T00:00:00Z"), at("2026-11-22T00:00:00Z")));
        assert!(daily_cost("t", &r, end, &JobsConfig { alert_daily_cost: Some(1.75), ..cfg }).is_none(), "1.75 is not over 1.75");
        let midnight = cost_day(at("2026-11-22T00:00:00Z"));
        assert_eq!(midnight.start, at("2026-11-21T00:00:00Z"), "the run at midnight completes the day before");
    }

    #[test]
    fn the_settings_are_read_and_the_daily_cost_is_optional() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!((c.jobs.alert_silence_hours, c.jobs.alert_p95_ms, c.jobs.alert_daily_cost), (24, 2000, None));
        let set = |k: &'static str, v: &'static str| Config::from_lookup(move |name| (name == k).then(|| v.to_owned()));
        assert_eq!(set("ANALYTICS_ALERT_DAILY_COST", " 12.5 ").unwrap().jobs.alert_daily_cost, Some(12.5));
        assert_eq!(set("ANALYTICS_ALERT_DAILY_COST", "0").unwrap().jobs.alert_daily_cost, Some(0.0));
        assert_eq!(set("ANALYTICS_ALERT_DAILY_COST", "-1").unwrap_err().var, "ANALYTICS_ALERT_DAILY_COST");
        assert_eq!(set("ANALYTICS_ALERT_DAILY_COST", "ten").unwrap_err().var, "ANALYTICS_ALERT_DAILY_COST");
        assert_eq!(set("ANALYTICS_ALERT_SILENCE_HOURS", "0").unwrap_err().var, "ANALYTICS_ALERT_SILENCE_HOURS");
        assert_eq!(set("ANALYTICS_ALERT_SILENCE_HOURS", "48").unwrap().jobs.alert_silence_hours, 48);
        assert_eq!(set("ANALYTICS_ALERT_P95_MS", "1500").unwrap().jobs.alert_p95_ms, 1500);
    }
}
