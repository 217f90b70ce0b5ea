//! The weekly report job: the last ISO week of each tenant, stored and
//! published as `WeeklyReportGenerated`. A report is published when its
//! figures are new or changed (late events), or when a previous run stored
//! it but could not publish it; a rerun with the same figures does nothing.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::{JobError, JobRequest, Jobs, RunContext, TenantFailure};
use crate::bus::BusEvent;
use crate::query::period::{self, DateRange};
use crate::report::weekly_report;
use crate::store::StoreError;
use crate::store::documents::ReportWrite;
use crate::time::{midnight, week_label};

#[derive(Debug, Default, Serialize)]
pub struct WeeklySummary {
    pub weeks: Vec<String>,
    pub tenants: usize,
    /// New or changed reports stored.
    pub stored: usize,
    /// Reports already stored with the same figures.
    pub unchanged: usize,
    pub published: usize,
    /// Tenants without any event in the week: no report.
    pub skipped_empty: usize,
    pub tenants_left: usize,
    /// Tenants whose part of the run failed, and why (the others were done).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<TenantFailure>,
}

impl Jobs {
    pub async fn weekly_report(&self, req: &JobRequest, ctx: &RunContext) -> Result<WeeklySummary, JobError> {
        // A manual window reports every ISO week starting inside it; a
        // scheduled run the week before the one it runs in.
        let mondays: Vec<NaiveDate> = match req.manual_window(ctx.now, Duration::weeks(27))? {
            Some(w) => {
                let mut d = w.start.date_naive();
                while d.weekday() != chrono::Weekday::Mon || midnight(d) < w.start {
                    d += Duration::days(1);
                }
                let mut out = Vec::new();
                while midnight(d) < w.end && midnight(d) + Duration::days(7) <= ctx.now {
                    out.push(d);
                    d += Duration::days(7);
                }
                out
            }
            None => {
                let today = req.at(ctx.now).date_naive();
                vec![today - Duration::days(i64::from(today.weekday().num_days_from_monday()) + 7)]
            }
        };
        let mut summary = WeeklySummary { weeks: mondays.iter().map(|d| week_label(*d)).collect(), ..Default::default() };
        let tenants = self.tenants(req, ctx.now).await?;
        summary.tenants = tenants.len();
        let keep = Duration::days(i64::from(self.cfg.retention.rollup_days));
        let mondays = &mondays;
        let run = self
            .each_tenant(tenants.into_iter().map(|t| t.tenant).collect(), ctx, 1, |tenant| async move {
                let mut n = WeeklySummary::default();
                // Every week of the run and the one before the first, read once,
                // cut at each Monday (no stored piece straddles one).
                let (Some(first), Some(last)) = (mondays.first(), mondays.last()) else { return Ok(n) };
                let edges: Vec<DateTime<Utc>> = mondays.iter().map(|d| midnight(*d)).collect();
                let range = DateRange { from: midnight(*first) - Duration::days(7), to: midnight(*last) + Duration::days(7) };
                let pieces = crate::query::planner::read_pieces(&self.store, &tenant, range, &edges, ctx.now, &self.cfg.retention).await?;
                let week_of = |start: DateTime<Utc>| {
                    let parts: Vec<_> =
                        pieces.iter().filter(|p| p.start >= start && p.start < start + Duration::days(7)).cloned().collect();
                    period::total(&parts)
                };
                for monday in mondays {
                    let start = midnight(*monday);
                    let (week, previous) = (week_of(start), week_of(start - Duration::days(7)));
                    if week.is_empty() {
                        n.skipped_empty += 1;
                        continue;
                    }
                    let report = weekly_report(&tenant, *monday, &week, &previous);
                    let body = serde_json::to_string(&report).map_err(StoreError::corrupt)?;
                    let digest = crate::hash::digest(&body);
                    let expires = (start + Duration::days(7) + keep).timestamp();
                    let publish = match self.store.documents().put_report(&tenant, &report.week, &body, &digest, expires).await? {
                        ReportWrite::Written => {
                            n.stored += 1;
                            true
                        }
                        ReportWrite::Unchanged { published } => {
                            n.unchanged += 1;
                            !published
                        }
                    };
                    if publish {
                        self.bus.publish(&[BusEvent::new("WeeklyReportGenerated", &report.summary())?]).await?;
                        self.store.documents().mark_report_published(&tenant, &report.week, &digest).await?;
                        n.published += 1;
                    }
                }
                Ok(n)
            })
            .await;
        for n in run.done {
            summary.stored += n.stored;
            summary.unchanged += n.unchanged;
            summary.published += n.published;
            summary.skipped_empty += n.skipped_empty;
        }
        (summary.tenants_left, summary.failed) = (run.left, run.failed);
        Ok(summary)
    }
}
