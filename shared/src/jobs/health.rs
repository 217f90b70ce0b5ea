//! The health snapshot job: host and process figures (measured by the
//! function) plus each tenant's application figures, stored every five
//! minutes; and the alerts, at most one per condition and subject per
//! 15-minute window.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;

use super::{JobError, JobRequest, Jobs, RunContext, TenantFailure};
use crate::bus::BusEvent;
use crate::query::answers::round2;
use crate::query::period::{self, DateRange};

/// The span alerts look at.
pub const ALERT_WINDOW_MINUTES: i64 = 15;
/// How often the schedule runs; a scheduled run's snapshot is stamped
/// with the start of its slot, so a retried run rewrites the same item.
pub const SNAPSHOT_MINUTES: i64 = 5;

/// Host and process figures, measured by the function (sysinfo).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct HostFigures {
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub memory_used_mb: Option<f64>,
    pub process_memory_mb: Option<f64>,
}

/// What `AnalyticsHealthAlert` carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthAlert {
    pub tenant: String,
    /// `error_rate`, `failed_logins_ip` or `failed_logins_user`.
    pub condition: &'static str,
    /// The IP or user for failed logins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The setting that was passed, and its value.
    pub threshold_setting: &'static str,
    pub threshold: f64,
    pub value: f64,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub requests: f64,
    pub errors: f64,
    pub failed_logins: u64,
}

impl HealthAlert {
    fn key(&self) -> String {
        format!("{}#{}", self.condition, self.subject.as_deref().unwrap_or("-"))
    }
}

#[derive(Debug, Default, Serialize)]
pub struct HealthSummary {
    pub captured_at: DateTime<Utc>,
    pub window_start: DateTime<Utc>,
    pub host: HostFigures,
    pub tenants: usize,
    pub snapshots: usize,
    pub alerts_published: usize,
    /// Conditions still met but already alerted for this window.
    pub alerts_suppressed: usize,
    pub tenants_left: usize,
    /// Tenants whose part of the run failed, and why (the others were done).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<TenantFailure>,
}

impl Jobs {
    /// Snapshots every tenant active in the last day, then raises the
    /// alerts of the 15 minutes before the snapshot.
    pub async fn health_snapshot(&self, req: &JobRequest, ctx: &RunContext) -> Result<HealthSummary, JobError> {
        let (start, end) = match req.manual_window(ctx.now, Duration::days(1))? {
            Some(w) => (w.start, w.end),
            None => {
                let end = req.at(ctx.now).duration_trunc(Duration::minutes(SNAPSHOT_MINUTES)).unwrap_or(ctx.now);
                (end - Duration::minutes(ALERT_WINDOW_MINUTES), end)
            }
        };
        let mut summary = HealthSummary { captured_at: end, window_start: start, host: ctx.host, ..Default::default() };
        let mut tenants: BTreeSet<String> = self
            .tenants(req, ctx.now)
            .await?
            .into_iter()
            .filter(|t| req.tenant.is_some() || t.active_at >= end - Duration::hours(25))
            .map(|t| t.tenant)
            .collect();
        if req.tenant.is_none() {
            tenants.extend(self.store.markers().dirty_tenants().await?);
        }
        summary.tenants = tenants.len();
        let run = self
            .each_tenant(tenants.into_iter().collect(), ctx, 1, |tenant| async move {
                let mut snap = period::app_health_now(&self.store, &tenant, end, &self.cfg.retention).await?;
                snap.cpu_percent = ctx.host.cpu_percent;
                snap.memory_percent = ctx.host.memory_percent;
                snap.memory_used_mb = ctx.host.memory_used_mb;
                snap.process_memory_mb = ctx.host.process_memory_mb;
                self.store.documents().put_snapshot(&tenant, &snap, self.cfg.retention.metrics_days).await?;
                self.alert(&tenant, start, end, ctx.now).await
            })
            .await;
        summary.snapshots = run.done.len();
        for (published, suppressed) in run.done {
            summary.alerts_published += published;
            summary.alerts_suppressed += suppressed;
        }
        (summary.tenants_left, summary.failed) = (run.left, run.failed);
        Ok(summary)
    }

    /// The alerts of one tenant's window: claimed first (so a rerun or an
    /// overlapping window finds them taken), then published; a claim whose
    /// alert could not be published is given back so the retry sends it.
    async fn alert(&self, tenant: &str, start: DateTime<Utc>, end: DateTime<Utc>, now: DateTime<Utc>) -> Result<(usize, usize), JobError> {
        let pieces =
            crate::query::planner::read_pieces(&self.store, tenant, DateRange { from: start, to: end }, &[], now, &self.cfg.retention)
                .await?;
        let r = period::total(&pieces);
        let alerts = conditions(tenant, &r, start, end, &self.cfg.jobs);
        let mut claimed = Vec::new();
        for a in &alerts {
            if self.store.alerts().claim(tenant, &a.key(), start, end).await? {
                claimed.push(a);
            }
        }
        let events: Result<Vec<BusEvent>, _> = claimed.iter().map(|a| BusEvent::new("AnalyticsHealthAlert", a)).collect();
        let sent = match events {
            Ok(events) => self.bus.publish(&events).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            for a in &claimed {
                self.store.alerts().release(tenant, &a.key(), end).await?;
            }
            return Err(e.into());
        }
        for a in &claimed {
            tracing::warn!(tenant, condition = a.condition, subject = ?a.subject, value = a.value, "health alert published");
        }
        Ok((claimed.len(), alerts.len() - claimed.len()))
    }
}

/// The alert conditions a window's rollup meets.
pub fn conditions(
    tenant: &str,
    r: &crate::rollup::Rollup,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    cfg: &crate::config::JobsConfig,
) -> Vec<HealthAlert> {
    let c = r.counters();
    let failed = r.failed_logins();
    let base = |condition, subject, threshold_setting, threshold, value| HealthAlert {
        tenant: tenant.to_owned(),
        condition,
        subject,
        threshold_setting,
        threshold,
        value,
        window_start: start,
        window_end: end,
        requests: round2(c.api_requests),
        errors: round2(c.errors),
        failed_logins: failed,
    };
    let mut out = Vec::new();
    if c.api_requests >= cfg.alert_min_requests as f64 {
        let rate = round2(100.0 * c.errors / c.api_requests);
        if rate > cfg.alert_error_rate {
            out.push(base("error_rate", None, "ANALYTICS_ALERT_ERROR_RATE", cfg.alert_error_rate, rate));
        }
    }
    let limit = cfg.alert_failed_logins;
    for (ip, n) in r.failed_login_ips.iter().filter(|(_, n)| **n > limit) {
        out.push(base("failed_logins_ip", Some(ip.clone()), "ANALYTICS_ALERT_FAILED_LOGINS", limit as f64, *n as f64));
    }
    for (user, n) in r.failed_login_users.iter().filter(|(_, n)| **n > limit) {
        out.push(base("failed_logins_user", Some(user.clone()), "ANALYTICS_ALERT_FAILED_LOGINS", limit as f64, *n as f64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::JobsConfig;
    use crate::rollup::{ApiStats, Rollup, api_key};

    #[test]
    fn conditions_need_volume_and_name_their_threshold() {
        let cfg = JobsConfig::default();
        let t = Utc::now();
        let mut r = Rollup::default();
        r.api.insert(api_key(500, "GET", "/a"), ApiStats { count: 3.0, received: 3, ..Default::default() });
        assert!(conditions("t", &r, t, t, &cfg).is_empty(), "3 failures of 3 requests are below the volume floor");
        r.api.insert(api_key(200, "GET", "/a"), ApiStats { count: 30.0, received: 30, ..Default::default() });
        let a = conditions("t", &r, t, t, &cfg);
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].condition, a[0].threshold_setting, a[0].value), ("error_rate", "ANALYTICS_ALERT_ERROR_RATE", 9.09));
        r.failed_login_ips.insert("203.0.113.9".into(), 21);
        r.failed_login_ips.insert("203.0.113.10".into(), 20);
        r.failed_login_users.insert("bob".into(), 25);
        let a = conditions("t", &r, t, t, &cfg);
        let keys: Vec<String> = a.iter().map(HealthAlert::key).collect();
        assert_eq!(keys, ["error_rate#-", "failed_logins_ip#203.0.113.9", "failed_logins_user#bob"], "20 is not over 20");
    }
}
