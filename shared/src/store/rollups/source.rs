//! The table as the period planner's source of rollups.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::*;

/// The period planner reads the table through this port.
impl crate::query::planner::RollupSource for Table {
    async fn dirty_hours(&self, tenant: &str, first: &str, last: &str) -> Result<BTreeSet<String>, StoreError> {
        Ok(self.markers().dirty_hours_between(tenant, Some((first, last))).await?.into_keys().collect())
    }
    async fn days(
        &self,
        tenant: &str,
        first: &str,
        last: &str,
        part: DayPart,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, Rollup>, StoreError> {
        match part {
            DayPart::Whole => self.rollups().read(tenant, Resolution::Day, first, last, now).await,
            DayPart::Dashboard => self.rollups().dashboard_days(tenant, first, last, now, false).await,
        }
    }
    async fn hours(&self, tenant: &str, first: &str, last: &str, now: DateTime<Utc>) -> Result<BTreeMap<String, StoredRollup>, StoreError> {
        self.rollups().stored(tenant, Resolution::Hour, first, last, now, false).await
    }
    async fn current_windows(
        &self,
        tenant: &str,
        as_of: DateTime<Utc>,
        days: &[u32],
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<crate::store::windows::StoredWindow>>, StoreError> {
        self.windows().current(tenant, as_of, days, now).await
    }
    async fn figures(
        &self,
        tenant: &str,
        asks: &[crate::store::hours::HourAsk<'_>],
        now: DateTime<Utc>,
        retention: &Retention,
    ) -> Result<Vec<Rollup>, StoreError> {
        // A live hour read from its start is made from its deltas where they
        // can say (`store::deltas`): what that costs does not grow with its
        // events. The others, and those the deltas cannot answer, raw.
        let from_deltas = asks.iter().map(|a| async move {
            if a.from != a.hour || a.stored.is_some_and(|d| d.freezes_any(a.hour, now, retention)) {
                return Ok(None);
            }
            // Whatever goes wrong with the deltas, the raw read still answers.
            Ok::<_, StoreError>(match self.deltas().figures(tenant, a.hour, a.to, now).await {
                Ok(made) => made.map(|(r, _)| r),
                Err(e) => {
                    tracing::warn!(hour = %a.hour, error = %e, "hour deltas unreadable: the hour is read raw");
                    None
                }
            })
        });
        let mut made = futures::future::try_join_all(from_deltas).await?;
        let raw: Vec<crate::store::hours::HourAsk<'_>> = asks.iter().zip(&made).filter(|(_, m)| m.is_none()).map(|(a, _)| *a).collect();
        let mut raw = self.rollups().hours_figures(tenant, &raw, now, retention, false).await?.into_iter().map(|(d, _)| d.rollup);
        Ok(made.iter_mut().map(|m| m.take().or_else(|| raw.next()).unwrap_or_default()).collect())
    }
    async fn recent(
        &self,
        tenant: &str,
        hour: DateTime<Utc>,
        five: u8,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Rollup>, StoreError> {
        // Whatever goes wrong with the deltas, the raw read still answers.
        match self.deltas().recent_figures(tenant, hour, five, to, now).await {
            Ok(made) => Ok(made.map(|(r, _)| r)),
            Err(e) => {
                tracing::warn!(hour = %hour, error = %e, "hour deltas unreadable: read raw");
                Ok(None)
            }
        }
    }
}
