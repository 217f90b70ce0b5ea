//! Stored documents: period metrics, weekly reports, cached answers and
//! health snapshots, each a JSON body (or item) under its tenant's key,
//! read back only while unexpired. A report's digest tells a rerun that
//! produced the same figures apart from a changed one.

use crate::store::ItemExt;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::keys;
use super::table::{PK, SK, TTL_ATTRIBUTE, Table, condition_held};
use super::{Item, StoreError, n, s};
use crate::model::HealthSnapshot;
use crate::time;
use chrono::{Duration, SecondsFormat};
use futures::{StreamExt, TryStreamExt};

/// What storing a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportWrite {
    /// A new report, or one whose figures changed: it must be published.
    Written,
    /// The same figures were stored already; `published` says whether
    /// their publication went through.
    Unchanged { published: bool },
}

/// A page of stored reports, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportPage {
    pub bodies: Vec<String>,
    /// The last week returned, when more may follow.
    pub last: Option<String>,
}

fn body_of(item: &Item) -> Option<String> {
    item.str("body").map(str::to_owned)
}

/// The stored documents of every tenant.
#[derive(Clone, Copy)]
pub struct Documents<'t> {
    pub(super) t: &'t Table,
}

impl Documents<'_> {
    /// Stores period metrics (replacing the period's previous figures).
    pub async fn put_metrics(self, tenant: &str, period: &str, start: &str, body: &str, expires_at: i64) -> Result<(), StoreError> {
        let item: Item = [
            (PK.to_owned(), s(keys::metrics_pk(tenant, period))),
            (SK.to_owned(), s(start)),
            ("body".to_owned(), s(body)),
            (TTL_ATTRIBUTE.to_owned(), n(expires_at)),
        ]
        .into();
        self.t.put(item).await?;
        Ok(())
    }

    /// Stored metrics of a period starting on `start`.
    pub async fn metrics_of(self, tenant: &str, period: &str, start: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        self.document(keys::metrics_pk(tenant, period), start, now).await
    }

    /// Stored metrics of the periods starting from `first` to `last`
    /// (`yyyy-mm-dd`, both included), oldest first. The range is capped by
    /// the caller (at most 400 daily rows).
    pub async fn metrics_between(
        self,
        tenant: &str,
        period: &str,
        first: &str,
        last: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let query = self
            .t
            .query_unexpired(now)
            .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
            .expression_attribute_values(":p", s(keys::metrics_pk(tenant, period)))
            .expression_attribute_values(":a", s(first))
            .expression_attribute_values(":b", s(last));
        self.t.collect(query, |item| Ok(body_of(&item))).await
    }

    async fn document(self, pk: String, sk: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        Ok(self.t.get_item(pk, sk).await?.filter(|i| i.unexpired(now)).as_ref().and_then(body_of))
    }

    /// Stores a week's report unless the same figures are there already.
    pub async fn put_report(self, tenant: &str, week: &str, body: &str, digest: &str, expires_at: i64) -> Result<ReportWrite, StoreError> {
        let pk = keys::report_pk(tenant);
        if let Some(old) = self.t.get_item(&pk, week).await?
            && old.str("digest").is_some_and(|d| d == digest)
        {
            let published = old.flag("published").unwrap_or(false);
            return Ok(ReportWrite::Unchanged { published });
        }
        let item: Item = [
            (PK.to_owned(), s(&pk)),
            (SK.to_owned(), s(week)),
            ("body".to_owned(), s(body)),
            ("digest".to_owned(), s(digest)),
            ("published".to_owned(), AttributeValue::Bool(false)),
            (TTL_ATTRIBUTE.to_owned(), n(expires_at)),
        ]
        .into();
        self.t.put(item).await?;
        Ok(ReportWrite::Written)
    }

    /// Records that the report with these figures went out on the bus.
    pub async fn mark_report_published(self, tenant: &str, week: &str, digest: &str) -> Result<(), StoreError> {
        let res = self
            .t
            .client()
            .update_item()
            .table_name(&self.t.config().table)
            .key(PK, s(keys::report_pk(tenant)))
            .key(SK, s(week))
            .update_expression("SET published = :t")
            .condition_expression("digest = :d")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(":d", s(digest))
            .send()
            .await;
        // Rewritten meanwhile with other figures: that run publishes them.
        condition_held(res).map(|_| ())
    }

    /// One week's report.
    pub async fn report(self, tenant: &str, week: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        self.document(keys::report_pk(tenant), week, now).await
    }

    /// Reports newest first, after the week `before` when given.
    pub async fn reports(self, tenant: &str, before: Option<&str>, limit: usize, now: DateTime<Utc>) -> Result<ReportPage, StoreError> {
        let mut query = self.t.query_unexpired(now).expression_attribute_values(":p", s(keys::report_pk(tenant))).scan_index_forward(false);
        query = match before {
            Some(b) => query.key_condition_expression("pk = :p AND sk < :b").expression_attribute_values(":b", s(b)),
            None => query.key_condition_expression("pk = :p"),
        };
        let mut bodies = Vec::new();
        let mut last = None;
        let mut more = false;
        self.t
            .for_each_page(query, |items| {
                for item in items {
                    if bodies.len() == limit {
                        more = true;
                        return Ok(false);
                    }
                    if let Some(b) = body_of(&item) {
                        bodies.push(b);
                        last = item.str(SK).map(str::to_owned);
                    }
                }
                Ok(true)
            })
            .await?;
        Ok(ReportPage { bodies, last: if more { last } else { None } })
    }

    /// A cached body, unless absent or expired.
    pub async fn cached(self, tenant: &str, key: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        let out = self
            .t
            .client()
            .get_item()
            .table_name(&self.t.config().table)
            .key(PK, s(keys::cache_pk(tenant)))
            .key(SK, s(key))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let Some(item) = out.item else { return Ok(None) };
        let fresh = item.unexpired(now);
        Ok(if fresh { item.str("body").map(str::to_owned) } else { None })
    }

    /// Caches a body for `ttl_seconds`.
    pub async fn put_cached(self, tenant: &str, key: &str, body: &str, ttl_seconds: u32, now: DateTime<Utc>) -> Result<(), StoreError> {
        let item: Item = [
            (PK.to_owned(), s(keys::cache_pk(tenant))),
            (SK.to_owned(), s(key)),
            ("body".to_owned(), s(body)),
            (TTL_ATTRIBUTE.to_owned(), n(now.timestamp() + i64::from(ttl_seconds))),
        ]
        .into();
        self.t.put(item).await?;
        Ok(())
    }

    /// Drops every cached result of the tenant; returns how many.
    pub async fn invalidate_cache(self, tenant: &str) -> Result<usize, StoreError> {
        let pk = keys::cache_pk(tenant);
        let query =
            self.t.query().key_condition_expression("pk = :p").expression_attribute_values(":p", s(&pk)).projection_expression("sk");
        let sks = self.t.collect(query, |i| Ok(i.str(SK).map(str::to_owned))).await?;
        let count = sks.len();
        futures::stream::iter(sks.into_iter().map(|sk| self.t.delete(pk.clone(), sk)))
            .buffer_unordered(self.t.config().write_concurrency)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(count)
    }
    /// Stores a snapshot; it expires `retention_days` after its capture.
    pub async fn put_snapshot(self, tenant: &str, snap: &HealthSnapshot, retention_days: u32) -> Result<(), StoreError> {
        let mut item: super::Item = serde_dynamo::to_item(snap)?;
        item.insert(PK.into(), s(keys::health_pk(tenant, &time::day_label(snap.captured_at))));
        item.insert(SK.into(), s(snap.captured_at.to_rfc3339_opts(SecondsFormat::Millis, true)));
        item.insert(TTL_ATTRIBUTE.into(), n((snap.captured_at + Duration::days(i64::from(retention_days))).timestamp()));
        self.t.put(item).await?;
        Ok(())
    }

    /// Snapshots captured in `[from, to)`, newest first, below the capture
    /// time `before` when given: at most `limit` and whether more follow.
    /// Reads one partition per day, at most `limit + 1` items each.
    pub async fn snapshots(
        self,
        tenant: &str,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        before: Option<&str>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<(Vec<HealthSnapshot>, bool), StoreError> {
        let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let low = stamp(from);
        let high = match before {
            Some(b) if b < stamp(to).as_str() => b.to_owned(),
            _ => stamp(to),
        };
        let mut out: Vec<HealthSnapshot> = Vec::new();
        let mut day = time::day_start(to - Duration::milliseconds(1));
        while day + Duration::days(1) > from && out.len() <= limit {
            let want = limit + 1 - out.len();
            let page = self
                .t
                .query_unexpired(now)
                .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
                .expression_attribute_values(":p", s(keys::health_pk(tenant, &time::day_label(day))))
                .expression_attribute_values(":a", s(&low))
                .expression_attribute_values(":b", s(&high))
                .scan_index_forward(false)
                .limit(i32::try_from(want + 1).unwrap_or(i32::MAX));
            // Page on while expired items (filtered after `Limit`) leave
            // the day short; `high` is exclusive (the cursor's own
            // snapshot, or `to`).
            let mut got: Vec<HealthSnapshot> = Vec::new();
            self.t
                .for_each_page(page, |items| {
                    for item in items {
                        if item.str(SK) != Some(high.as_str()) && got.len() < want {
                            got.push(serde_dynamo::from_item(item)?);
                        }
                    }
                    Ok(got.len() < want)
                })
                .await?;
            out.extend(got);
            day -= Duration::days(1);
        }
        let more = out.len() > limit;
        out.truncate(limit);
        Ok((out, more))
    }

    /// The latest unexpired snapshot of today or yesterday (UTC).
    pub async fn latest_snapshot(self, tenant: &str, now: DateTime<Utc>) -> Result<Option<HealthSnapshot>, StoreError> {
        for day in [now, now - Duration::days(1)] {
            let out = self
                .t
                .query_unexpired(now)
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", s(keys::health_pk(tenant, &time::day_label(day))))
                .scan_index_forward(false)
                .limit(5)
                .send()
                .await
                .map_err(StoreError::sdk)?;
            if let Some(item) = out.items.unwrap_or_default().into_iter().next() {
                return Ok(Some(serde_dynamo::from_item(item)?));
            }
        }
        Ok(None)
    }
}
