//! The cleanup jobs. TTL removes what it should on its own; what it will
//! not reach is what was written under an older, longer retention (or while
//! TTL was off). Each tenant is swept hour by hour (events) or day by day
//! (snapshots) from where the last sweep stopped up to the current
//! retention's edge, so a weekly run only reads the week that just aged
//! out. A manual window sweeps exactly its span (a backfill after
//! retention was shortened again) without moving the marks.

use crate::time;
use chrono::Duration;
use serde::Serialize;

use super::{JobError, JobRequest, Jobs, RunContext, TenantFailure, TenantRun};
use crate::model::EventKind;
use crate::store::sweep::{SweepRun, Swept};
use crate::time::{parse_day, parse_hour};

/// Partitions (event hours or snapshot days) swept per tenant and sweep
/// per run: 100 days. A weekly run sweeps the week that aged out; the first
/// run after retention was cut sweeps up to this, the next ones the rest
/// (the summary says `complete: false` until done).
pub const MAX_UNITS_PER_TENANT: usize = 24 * 100;

#[derive(Debug, Default, Serialize)]
pub struct CleanupSummary {
    pub ttl_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    pub tenants: usize,
    /// Hours (events) or days (snapshots) swept.
    pub swept: usize,
    /// Items read because TTL would not remove them within a day.
    pub examined: usize,
    pub removed: usize,
    /// Whether every tenant was swept up to the retention's edge.
    pub complete: bool,
    /// Tenants not reached before the time budget ran out.
    pub tenants_left: usize,
    /// Tenants whose sweep failed, and why (the others were swept).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<TenantFailure>,
}

/// A sweep: which items, which retention, how its units are labelled.
struct Sweep {
    name: &'static str,
    kinds: &'static [EventKind],
    days: u32,
}

impl Jobs {
    async fn check_ttl(&self, summary: &mut CleanupSummary) -> Result<(), JobError> {
        summary.ttl_enabled = self.store.sweeps().ttl_enabled().await?;
        if !summary.ttl_enabled {
            summary.warning = Some(format!(
                "TTL is not enabled on table {} (attribute expires_at): nothing expires by itself; enable it, until then this job removes every item past retention",
                self.store.config().table
            ));
            tracing::warn!(table = %self.store.config().table, "TTL is not enabled");
        }
        Ok(())
    }

    /// Events past `ANALYTICS_RETENTION_DAYS` (activity, auth, external
    /// calls) and past `ANALYTICS_API_LOG_RETENTION_DAYS` (API requests).
    pub async fn activity_cleanup(&self, req: &JobRequest, ctx: &RunContext) -> Result<CleanupSummary, JobError> {
        let mut summary = CleanupSummary { complete: true, ..Default::default() };
        self.check_ttl(&mut summary).await?;
        let manual = req.manual_window(ctx.now, Duration::days(400))?;
        let r = self.cfg.retention;
        let sweeps = [
            Sweep { name: "events", kinds: &[EventKind::Activity, EventKind::Auth, EventKind::ExternalCall], days: r.events_days },
            Sweep { name: "api_requests", kinds: &[EventKind::ApiRequest], days: r.api_log_days },
        ];
        let run = SweepRun { now: ctx.now, ttl_on: summary.ttl_enabled, deadline: ctx.deadline };
        let tenants = self.tenants(req, ctx.now).await?;
        summary.tenants = tenants.len();
        let sweeps = &sweeps;
        let run = self
            .each_tenant(tenants, ctx, 1, |t| async move {
                let mut n = Swept::default();
                let mut complete = true;
                for sweep in sweeps {
                    // Hours that ended before the edge hold only expired events.
                    let edge = time::hour_start(ctx.now - Duration::days(i64::from(sweep.days)));
                    let (from, mark) = match manual {
                        Some(w) => (w.start, false),
                        None => {
                            let from = self.store.sweeps().mark(&t.tenant, sweep.name).await?.unwrap_or(t.first_hour.clone());
                            (parse_hour(&from).unwrap_or(edge), true)
                        }
                    };
                    let to = manual.map_or(edge, |w| w.end.min(edge));
                    // Stepped lazily, from no earlier than 1970: however early a
                    // tenant's first hour, a run sweeps a bounded number of hours.
                    let from = from.max(crate::time::earliest());
                    let mut done = time::hour_start(from);
                    let mut units = 0;
                    while done < to && units < MAX_UNITS_PER_TENANT && !ctx.out_of_time() {
                        let mut end = done;
                        let mut k = 0;
                        while end < to && k < 8 {
                            end += Duration::hours(1);
                            k += 1;
                        }
                        n += self.store.sweeps().events(&t.tenant, (done, end), sweep.kinds, &r, run).await?;
                        n.units += k;
                        units += k;
                        done = end;
                    }
                    complete &= done >= to;
                    if mark && done > from {
                        let keep = (ctx.now + Duration::days(i64::from(r.rollup_days))).timestamp();
                        self.store.sweeps().set_mark(&t.tenant, sweep.name, &time::hour_label(done), keep).await?;
                    }
                }
                Ok((n, complete))
            })
            .await;
        fold(&mut summary, run);
        Ok(summary)
    }

    /// Health snapshots past `ANALYTICS_METRICS_RETENTION_DAYS`.
    pub async fn metrics_cleanup(&self, req: &JobRequest, ctx: &RunContext) -> Result<CleanupSummary, JobError> {
        let mut summary = CleanupSummary { complete: true, ..Default::default() };
        self.check_ttl(&mut summary).await?;
        let manual = req.manual_window(ctx.now, Duration::days(400))?;
        let r = self.cfg.retention;
        let day = crate::time::day_start;
        // Days that ended before the edge hold only expired snapshots.
        let edge = day(ctx.now - Duration::days(i64::from(r.metrics_days)));
        let run = SweepRun { now: ctx.now, ttl_on: summary.ttl_enabled, deadline: ctx.deadline };
        let tenants = self.tenants(req, ctx.now).await?;
        summary.tenants = tenants.len();
        let run = self
            .each_tenant(tenants, ctx, 1, |t| async move {
                let (from, mark) = match manual {
                    Some(w) => (day(w.start), false),
                    None => {
                        let stored = self.store.sweeps().mark(&t.tenant, "snapshots").await?;
                        let first = stored.as_deref().and_then(parse_day).or_else(|| parse_hour(&t.first_hour).map(day));
                        (first.unwrap_or(edge), true)
                    }
                };
                let to = manual.map_or(edge, |w| w.end.min(edge));
                let mut n = Swept::default();
                let mut d = from;
                while d < to && n.units < MAX_UNITS_PER_TENANT && !ctx.out_of_time() {
                    n += self.store.sweeps().snapshot_day(&t.tenant, &time::day_label(d), run).await?;
                    n.units += 1;
                    d += Duration::days(1);
                }
                if mark && d > from {
                    let keep = (ctx.now + Duration::days(i64::from(r.rollup_days))).timestamp();
                    self.store.sweeps().set_mark(&t.tenant, "snapshots", &time::day_label(d), keep).await?;
                }
                Ok((n, d >= to))
            })
            .await;
        fold(&mut summary, run);
        Ok(summary)
    }
}

/// Adds each tenant's sweep to the summary.
fn fold(summary: &mut CleanupSummary, run: TenantRun<(Swept, bool)>) {
    for (n, complete) in run.done {
        summary.swept += n.units;
        summary.examined += n.examined;
        summary.removed += n.removed;
        summary.complete &= complete;
    }
    summary.complete &= run.left == 0 && run.failed.is_empty();
    summary.tenants_left = run.left;
    summary.failed = run.failed;
}
