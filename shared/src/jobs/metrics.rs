//! The roll-up jobs: hourly usage rollups, daily rollups, and the period
//! metrics of the dashboard.

use crate::time;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::rollup::{rebuild_day, roll_up_tenant};
use super::{JobError, JobRequest, Jobs, RunContext, TenantFailure};
use crate::report::{Period, dashboard_metrics};
use crate::rollup::Rollup;
use crate::store::rollups::Resolution;
use crate::time::parse_day;

/// Dirty hours one tenant's roll-up takes per run; the rest wait for the
/// next run (the summary says how many).
pub const MAX_HOURS_PER_TENANT: usize = 96;
/// Tenants rolled up at once.
const TENANT_CONCURRENCY: usize = 4;

#[derive(Debug, Default, Serialize)]
pub struct UsageRollupSummary {
    pub tenants: usize,
    pub hours: usize,
    pub days: usize,
    /// Hours written to during the run: rolled up again next run.
    pub still_dirty: usize,
    /// Dirty hours left by the per-run bound or the time budget.
    pub remaining: usize,
    /// Tenants not reached before the time budget ran out.
    pub tenants_left: usize,
    /// Hours a manual window marked for recomputation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marked: Option<usize>,
    /// Kinds of hours past raw retention whose stored figures were kept
    /// (late events added) instead of recomputed.
    pub kept_past_retention: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Cached answers dropped for the tenants whose rollups changed.
    pub cache_entries_dropped: usize,
    /// Tenants whose part of the run failed, and why (the others were done).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<TenantFailure>,
}

#[derive(Debug, Default, Serialize)]
pub struct DailyMetricsSummary {
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub tenants: usize,
    pub days_rebuilt: usize,
    pub cache_entries_dropped: usize,
    pub tenants_left: usize,
    /// Tenants whose part of the run failed, and why (the others were done).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<TenantFailure>,
}

#[derive(Debug, Default, Serialize)]
pub struct DashboardMetricsSummary {
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub tenants: usize,
    /// Period metrics written, by period.
    pub written: BTreeMap<&'static str, usize>,
    pub cache_entries_dropped: usize,
    pub tenants_left: usize,
    /// Tenants whose part of the run failed, and why (the others were done).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<TenantFailure>,
}

/// Yesterday (UTC) relative to `at`: the default window of the daily jobs.
fn yesterday(at: DateTime<Utc>) -> super::Window {
    let today = crate::time::day_start(at);
    super::Window { start: today - Duration::days(1), end: today }
}

impl Jobs {
    /// Rolls up every tenant's dirty hours. A manual window first marks
    /// its hours dirty (for one tenant or every registered one), which is
    /// how a backfill recomputes hours that were already rolled up.
    pub async fn usage_rollup(&self, req: &JobRequest, ctx: &RunContext) -> Result<UsageRollupSummary, JobError> {
        let mut summary = UsageRollupSummary::default();
        let mut tenants: BTreeSet<String> = self.store.markers().dirty_tenants().await?;
        if let Some(w) = req.manual_window(ctx.now, Duration::days(31))? {
            let hours: BTreeSet<String> = w.hours().into_iter().map(time::hour_label).collect();
            let targets = self.tenants(req, ctx.now).await?;
            for t in &targets {
                self.store.markers().mark(&t.tenant, &hours).await?;
                tenants.insert(t.tenant.clone());
            }
            summary.marked = Some(hours.len() * targets.len());
        }
        if let Some(only) = &req.tenant {
            tenants.retain(|t| t == only.as_str());
        }
        summary.tenants = tenants.len();
        let run = self
            .each_tenant(tenants.into_iter().collect(), ctx, TENANT_CONCURRENCY, |tenant| async move {
                let r = roll_up_tenant(&self.store, &tenant, ctx.now, &self.cfg.retention, MAX_HOURS_PER_TENANT).await?;
                // Answers cached before the run may hold figures the
                // roll-up just changed.
                let dropped = if r.hours > 0 { self.store.documents().invalidate_cache(&tenant).await? } else { 0 };
                Ok((r, dropped))
            })
            .await;
        for (r, dropped) in run.done {
            summary.hours += r.hours;
            summary.days += r.days;
            summary.still_dirty += r.still_dirty;
            summary.remaining += r.remaining;
            summary.kept_past_retention += r.kept;
            summary.cache_entries_dropped += dropped;
        }
        (summary.tenants_left, summary.failed) = (run.left, run.failed);
        if summary.kept_past_retention > 0 {
            summary.note = Some(format!(
                "{} kind(s) of hours past raw retention kept their stored figures (late events added); only what raw events still hold was recomputed",
                summary.kept_past_retention
            ));
        }
        Ok(summary)
    }

    /// Rebuilds the window's daily rollups (yesterday by default) from
    /// their hours, then drops the tenants' cached answers.
    pub async fn daily_metrics(&self, req: &JobRequest, ctx: &RunContext) -> Result<DailyMetricsSummary, JobError> {
        let w = req.manual_window(ctx.now, Duration::days(400))?.unwrap_or_else(|| yesterday(req.at(ctx.now)));
        let mut summary = DailyMetricsSummary { window_start: w.start, window_end: w.end, ..Default::default() };
        let days: Vec<String> = w.days().into_iter().map(time::day_label).collect();
        let tenants = self.tenants(req, ctx.now).await?.into_iter().map(|t| t.tenant).collect();
        let days = &days;
        let run = self
            .each_tenant(tenants, ctx, 1, |tenant| async move {
                futures::stream::iter(days.iter().map(|d| rebuild_day(&self.store, &tenant, d, ctx.now, &self.cfg.retention)))
                    .buffer_unordered(8)
                    .try_collect::<Vec<_>>()
                    .await?;
                super::windows::keep_windows_or_warn(&self.store, &tenant, ctx.now, &self.cfg.retention).await;
                Ok(self.store.documents().invalidate_cache(&tenant).await?)
            })
            .await;
        summary.tenants = run.done.len();
        summary.days_rebuilt = days.len() * run.done.len();
        summary.cache_entries_dropped = run.done.iter().sum();
        (summary.tenants_left, summary.failed) = (run.left, run.failed);
        Ok(summary)
    }

    /// Stores DashboardMetrics of every day, ISO week, month and year the
    /// window (yesterday by default) touches, counted up to the window's
    /// end, then drops the tenants' cached answers.
    pub async fn dashboard_metrics(&self, req: &JobRequest, ctx: &RunContext) -> Result<DashboardMetricsSummary, JobError> {
        let w = req.manual_window(ctx.now, Duration::days(400))?.unwrap_or_else(|| yesterday(req.at(ctx.now)));
        let mut summary = DashboardMetricsSummary { window_start: w.start, window_end: w.end, ..Default::default() };
        let end_day = match crate::time::day_start(w.end) {
            d if d < w.end => d + Duration::days(1),
            d => d,
        };
        let last = end_day.date_naive();
        // (period, first day, day after the last counted day)
        let mut buckets: BTreeSet<(Period, NaiveDate, NaiveDate)> = BTreeSet::new();
        for d in w.days() {
            for p in Period::ALL {
                let (a, b) = p.bounds(d.date_naive());
                buckets.insert((p, a, b.min(last)));
            }
        }
        let history_days = i64::from(self.cfg.retention.events_days);
        let Some(first) = buckets.iter().map(|(_, a, b)| (*a).min(*b - Duration::days(history_days))).min() else {
            return Ok(summary);
        };
        let tenants = self.tenants(req, ctx.now).await?.into_iter().map(|t| t.tenant).collect();
        let buckets = &buckets;
        let run = self
            .each_tenant(tenants, ctx, 1, |tenant| async move {
                let stored = self.read_days(&tenant, first, last, ctx.now).await?;
                let merged = |a: NaiveDate, b: NaiveDate| {
                    let mut r = Rollup::default();
                    for (_, day) in stored.range(a..b) {
                        r.merge(day);
                    }
                    r
                };
                let mut written: BTreeMap<&'static str, usize> = BTreeMap::new();
                for (period, start, end) in buckets {
                    let span = merged(*start, *end);
                    let history = merged(*end - Duration::days(history_days), *end);
                    let m = dashboard_metrics(*period, *start, *end, &span, &history);
                    let body = serde_json::to_string(&m).map_err(crate::store::StoreError::corrupt)?;
                    let period_end = time::midnight(period.bounds(*start).1);
                    let expires = (period_end + Duration::days(i64::from(self.cfg.retention.rollup_days))).timestamp();
                    self.store.documents().put_metrics(&tenant, period.as_str(), &start.to_string(), &body, expires).await?;
                    *written.entry(period.as_str()).or_default() += 1;
                }
                Ok((written, self.store.documents().invalidate_cache(&tenant).await?))
            })
            .await;
        summary.tenants = run.done.len();
        for (written, dropped) in run.done {
            for (period, n) in written {
                *summary.written.entry(period).or_default() += n;
            }
            summary.cache_entries_dropped += dropped;
        }
        (summary.tenants_left, summary.failed) = (run.left, run.failed);
        Ok(summary)
    }

    /// Stored day rollups of `[first, last)`, by day, read in parallel
    /// chunks.
    async fn read_days(
        &self,
        tenant: &str,
        first: NaiveDate,
        last: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<NaiveDate, Rollup>, JobError> {
        let mut chunks = Vec::new();
        let mut a = first;
        while a < last {
            let b = (a + Duration::days(31)).min(last);
            chunks.push((a.to_string(), (b - Duration::days(1)).to_string()));
            a = b;
        }
        let reads = chunks.iter().map(|(a, b)| self.store.rollups().read(tenant, Resolution::Day, a, b, now));
        let mut out = BTreeMap::new();
        for part in futures::future::try_join_all(reads).await? {
            for (label, r) in part {
                if let Some(d) = parse_day(&label) {
                    out.insert(d.date_naive(), r);
                }
            }
        }
        Ok(out)
    }
}
