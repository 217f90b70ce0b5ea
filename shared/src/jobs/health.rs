//! The health snapshot job: host and process figures (measured by the
//! function) plus each tenant's application figures, stored every five
//! minutes; and the alerts of the contract's conditions ([`conditions`]),
//! each claimed before it is published so that it goes out once for the
//! span it is claimed for (the 15-minute window, the day, or the silence).

mod conditions;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;

use super::{JobError, JobRequest, Jobs, RunContext, TenantFailure, Window};
use crate::bus::BusEvent;
use crate::query::period::{self, DateRange, Piece};

/// The span alerts look at.
pub const ALERT_WINDOW_MINUTES: i64 = 15;
/// How often the schedule runs; a scheduled run's snapshot is stamped
/// with the start of its slot, so a retried run rewrites the same item.
pub const SNAPSHOT_MINUTES: i64 = 5;
/// Tenants the roll-up found events of within this span (or dirty ones)
/// are snapshotted and checked for every condition.
const ACTIVE_HOURS: i64 = 25;
/// A subject longer than this is claimed under its digest (a sort key
/// holds at most 1024 bytes; an endpoint may be 2048 characters).
const MAX_KEY_SUBJECT: usize = 256;

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
    /// `error_rate`, `failed_logins_ip`, `failed_logins_user`,
    /// `latency_p95`, `no_activity` or `external_cost`.
    pub condition: &'static str,
    /// The IP or user for failed logins, `"METHOD endpoint"` for latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The setting that was passed (the variable's name), and its value.
    pub threshold_setting: &'static str,
    pub threshold: f64,
    /// What passed it: a percentage, a count, milliseconds, hours of
    /// silence or USD, as the setting counts.
    pub value: f64,
    /// The span the value is of: the 15-minute window, the silence, or the
    /// UTC day so far.
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// The window's API requests, 5xx responses and failed logins (the
    /// conditions of the 15-minute window only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_logins: Option<u64>,
    /// `latency_p95`: the endpoint's requests in the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_requests: Option<f64>,
    /// `no_activity`: the days of the look-back with activity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_days: Option<usize>,
    /// The span the alert is claimed for: no other alert of the same
    /// condition and subject may overlap it.
    #[serde(skip)]
    pub claim: Window,
}

impl HealthAlert {
    #[allow(clippy::too_many_arguments)]
    fn new(
        tenant: &str,
        condition: &'static str,
        subject: Option<String>,
        threshold_setting: &'static str,
        threshold: f64,
        value: f64,
        window: Window,
        claim: Window,
    ) -> Self {
        HealthAlert {
            tenant: tenant.to_owned(),
            condition,
            subject,
            threshold_setting,
            threshold,
            value,
            window_start: window.start,
            window_end: window.end,
            requests: None,
            errors: None,
            failed_logins: None,
            endpoint_requests: None,
            active_days: None,
            claim,
        }
    }

    /// The claim's key: the condition and the subject (a long one by its digest).
    fn key(&self) -> String {
        match self.subject.as_deref() {
            None => format!("{}#-", self.condition),
            Some(s) if s.len() <= MAX_KEY_SUBJECT => format!("{}#{s}", self.condition),
            Some(s) => format!("{}#sha256:{}", self.condition, crate::hash::digest(s)),
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct HealthSummary {
    pub captured_at: DateTime<Utc>,
    pub window_start: DateTime<Utc>,
    pub host: HostFigures,
    /// Tenants with events in the last day (or dirty): snapshotted and
    /// checked for every condition.
    pub tenants: usize,
    /// Tenants without events in the last day but with some in the
    /// `no_activity` look-back: checked for that condition only.
    pub quiet_tenants: usize,
    pub snapshots: usize,
    pub alerts_published: usize,
    /// Conditions still met but already alerted for their span.
    pub alerts_suppressed: usize,
    pub tenants_left: usize,
    /// Tenants whose part of the run failed, and why (the others were done).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<TenantFailure>,
}

impl Jobs {
    /// Snapshots every tenant active in the last day and raises its alerts
    /// (of the 15 minutes before the snapshot, of its silence, of its day's
    /// cost); then checks the tenants quiet for longer for `no_activity`.
    pub async fn health_snapshot(&self, req: &JobRequest, ctx: &RunContext) -> Result<HealthSummary, JobError> {
        let manual_window = req.manual_window(ctx.now, Duration::days(1))?;
        let manual = manual_window.is_some();
        let w = match manual_window {
            Some(w) => w,
            None => {
                let end = req.at(ctx.now).duration_trunc(Duration::minutes(SNAPSHOT_MINUTES)).unwrap_or(ctx.now);
                Window { start: end - Duration::minutes(ALERT_WINDOW_MINUTES), end }
            }
        };
        let end = w.end;
        // A scheduled run reads as of its snapshot's time, so the live
        // hours are read from their deltas (`store::deltas`), what a read
        // ending now takes; a manual or late one as of now.
        let as_of = if manual || ctx.now - end > Duration::minutes(ALERT_WINDOW_MINUTES) { ctx.now } else { end };
        let mut summary = HealthSummary { captured_at: end, window_start: w.start, host: ctx.host, ..Default::default() };
        // A tenant whose last events precede the look-back cannot meet `no_activity`.
        let look_back = conditions::look_back_window(conditions::silence_window(end, &self.cfg.jobs)).start;
        let (mut active, mut quiet) = (BTreeSet::new(), BTreeSet::new());
        for t in self.tenants(req, ctx.now).await? {
            if req.tenant.is_some() || t.active_at >= end - Duration::hours(ACTIVE_HOURS) {
                active.insert(t.tenant);
            } else if t.active_at >= look_back {
                quiet.insert(t.tenant);
            }
        }
        if req.tenant.is_none() {
            active.extend(self.store.markers().dirty_tenants().await?);
        }
        quiet.retain(|t| !active.contains(t));
        (summary.tenants, summary.quiet_tenants) = (active.len(), quiet.len());
        let run = self
            .each_tenant(active.into_iter().collect(), ctx, 1, |tenant| async move {
                let mut snap = period::app_health_at(&self.store, &tenant, end, as_of, &self.cfg.retention).await?;
                snap.cpu_percent = ctx.host.cpu_percent;
                snap.memory_percent = ctx.host.memory_percent;
                snap.memory_used_mb = ctx.host.memory_used_mb;
                snap.process_memory_mb = ctx.host.process_memory_mb;
                self.store.documents().put_snapshot(&tenant, &snap, self.cfg.retention.metrics_days).await?;
                // The snapshot's "today" is [midnight, end): users active in it
                // break a silence that reaches back past midnight.
                let active_since = (snap.active_users_today > 0).then(|| crate::time::day_start(end));
                let alerts = self.alerts_of(&tenant, w, active_since, as_of).await?;
                self.raise(&tenant, alerts).await
            })
            .await;
        summary.snapshots = run.done.len();
        let quiet_run = self
            .each_tenant(quiet.into_iter().collect(), ctx, 4, |tenant| async move {
                let alerts = self.silence(&tenant, end, None, as_of).await?;
                self.raise(&tenant, alerts.into_iter().collect()).await
            })
            .await;
        for (published, suppressed) in run.done.into_iter().chain(quiet_run.done) {
            summary.alerts_published += published;
            summary.alerts_suppressed += suppressed;
        }
        summary.tenants_left = run.left + quiet_run.left;
        summary.failed = run.failed.into_iter().chain(quiet_run.failed).collect();
        Ok(summary)
    }

    /// Every condition of an active tenant: those of the window `w`, the
    /// day's cost (when its setting is set) and the silence.
    async fn alerts_of(
        &self,
        tenant: &str,
        w: Window,
        active_since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Vec<HealthAlert>, JobError> {
        let cfg = &self.cfg.jobs;
        let r = self.window_rollup(tenant, w, now).await?;
        let mut alerts = conditions::window_conditions(tenant, &r, w, cfg);
        if cfg.alert_daily_cost.is_some() {
            let day = conditions::cost_day(w.end);
            let today = period::total(&self.pieces(tenant, Window { start: day.start, end: w.end }, now).await?);
            alerts.extend(conditions::daily_cost(tenant, &today, w.end, cfg));
        }
        // The window's own activity counts too; the later start tells more.
        let active_since = active_since.into_iter().chain(conditions::has_activity(&r).then_some(w.start)).max();
        alerts.extend(self.silence(tenant, w.end, active_since, now).await?);
        Ok(alerts)
    }

    /// `no_activity`: the silence before `end` is read only when nothing
    /// already known breaks it (activity since `active_since`, inside the
    /// silence), and the look-back only when it holds. Both are read from
    /// stored days and hours, never from more raw events than the
    /// partial hours at their edges.
    async fn silence(
        &self,
        tenant: &str,
        end: DateTime<Utc>,
        active_since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Option<HealthAlert>, JobError> {
        let silence = conditions::silence_window(end, &self.cfg.jobs);
        if active_since.is_some_and(|t| t >= silence.start) {
            return Ok(None);
        }
        if self.unpriced(tenant, silence, now).await?.iter().any(|p| conditions::has_activity(&p.rollup)) {
            return Ok(None);
        }
        let look_back = self.unpriced(tenant, conditions::look_back_window(silence), now).await?;
        Ok(conditions::no_activity(tenant, silence, &look_back, &self.cfg.jobs))
    }

    /// The rollup of the alert window `w` (activity, API requests and auth
    /// events: what its conditions read). Each live hour it meets, from
    /// and to five minutes, is made from the deltas' fives
    /// (`store::deltas`: exact as a raw read, at a cost that does not grow
    /// with the hour's events); the rest, and whatever the deltas cannot
    /// say, as any span is read.
    async fn window_rollup(&self, tenant: &str, w: Window, now: DateTime<Utc>) -> Result<crate::rollup::Rollup, JobError> {
        if w.end - w.start > Duration::hours(1) {
            // A manual run's long window: read at once.
            return Ok(period::total(&self.pieces(tenant, w, now).await?));
        }
        let mut r = crate::rollup::Rollup::default();
        let mut hour = crate::time::hour_start(w.start);
        while hour < w.end {
            let (a, b) = (w.start.max(hour), w.end.min(hour + Duration::hours(1)));
            let made = match crate::rollup::at_five(a) {
                true => match self.store.deltas().recent_figures(tenant, hour, crate::rollup::five_of(a), b, now).await {
                    Ok(made) => made.map(|(r, _)| r),
                    Err(e) => {
                        tracing::warn!(tenant, error = %e, "alert window: hour deltas unreadable, read raw");
                        None
                    }
                },
                false => None,
            };
            match made {
                Some(part) => r.merge(&part),
                None => r.merge(&period::total(&self.pieces(tenant, Window { start: a, end: b }, now).await?)),
            }
            hour += Duration::hours(1);
        }
        Ok(r)
    }

    /// [`pieces`](Self::pieces) for figures that read no external call: a
    /// live hour the span ends inside at five minutes is read from its
    /// deltas' fives ([`period::health_pieces`]).
    async fn unpriced(&self, tenant: &str, w: Window, now: DateTime<Utc>) -> Result<Vec<Piece>, JobError> {
        let range = DateRange { from: w.start, to: w.end };
        Ok(period::health_pieces(&self.store, tenant, range, &[], now, &self.cfg.retention).await?)
    }

    /// The stored days and hours (and made partial hours) of a span.
    async fn pieces(&self, tenant: &str, w: Window, now: DateTime<Utc>) -> Result<Vec<Piece>, JobError> {
        let range = DateRange { from: w.start, to: w.end };
        Ok(crate::query::planner::read_pieces(&self.store, tenant, range, &[], now, &self.cfg.retention).await?)
    }

    /// Raises a tenant's alerts: each claimed first for its span (so a
    /// rerun or an overlapping span finds it taken), then published; a
    /// claim whose alert could not be published is given back so the retry
    /// sends it. Returns (published, suppressed).
    async fn raise(&self, tenant: &str, alerts: Vec<HealthAlert>) -> Result<(usize, usize), JobError> {
        let mut claimed = Vec::new();
        for a in &alerts {
            match self.store.alerts().claim(tenant, &a.key(), a.claim.start, a.claim.end).await {
                Ok(true) => claimed.push(a),
                Ok(false) => {}
                Err(e) => {
                    self.release(tenant, &claimed).await?;
                    return Err(e.into());
                }
            }
        }
        let events: Result<Vec<BusEvent>, _> = claimed.iter().map(|a| BusEvent::new("AnalyticsHealthAlert", a)).collect();
        let sent = match events {
            Ok(events) => self.bus.publish(&events).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            self.release(tenant, &claimed).await?;
            return Err(e.into());
        }
        for a in &claimed {
            tracing::warn!(tenant, condition = a.condition, subject = ?a.subject, value = a.value, "health alert published");
        }
        Ok((claimed.len(), alerts.len() - claimed.len()))
    }

    async fn release(&self, tenant: &str, claimed: &[&HealthAlert]) -> Result<(), JobError> {
        for a in claimed {
            self.store.alerts().release(tenant, &a.key(), a.claim.end).await?;
        }
        Ok(())
    }
}
