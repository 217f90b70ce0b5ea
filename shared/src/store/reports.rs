//! What the jobs write besides rollups: stored period metrics, weekly
//! reports, and the record of the last alert per condition. Each body is
//! JSON; a digest of it tells a rerun that produced the same result apart
//! from a changed one.

use crate::store::ItemExt;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::events::EventStore;
use super::keys;
use super::table::{PK, SK, TTL_ATTRIBUTE};
use super::{Item, Put, StoreError, n, put_once, s};

/// The attribute of an alert record naming the claim that wrote it.
const CLAIM: &str = "claim";

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

impl EventStore {
    /// Stores period metrics (replacing the period's previous figures).
    pub async fn put_metrics(&self, tenant: &str, period: &str, start: &str, body: &str, expires_at: i64) -> Result<(), StoreError> {
        let item: Item = [
            (PK.to_owned(), s(keys::metrics_pk(tenant, period))),
            (SK.to_owned(), s(start)),
            ("body".to_owned(), s(body)),
            (TTL_ATTRIBUTE.to_owned(), n(expires_at)),
        ]
        .into();
        self.client().put_item().table_name(&self.config().table).set_item(Some(item)).send().await.map_err(StoreError::sdk)?;
        Ok(())
    }

    /// Stored metrics of a period starting on `start`.
    pub async fn metrics_of(&self, tenant: &str, period: &str, start: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        self.document(keys::metrics_pk(tenant, period), start, now).await
    }

    async fn document(&self, pk: String, sk: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        Ok(self.get_item(pk, sk).await?.filter(|i| i.unexpired(now)).as_ref().and_then(body_of))
    }

    /// Stores a week's report unless the same figures are there already.
    pub async fn put_report(&self, tenant: &str, week: &str, body: &str, digest: &str, expires_at: i64) -> Result<ReportWrite, StoreError> {
        let pk = keys::report_pk(tenant);
        if let Some(old) = self.get_item(&pk, week).await?
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
        self.client().put_item().table_name(&self.config().table).set_item(Some(item)).send().await.map_err(StoreError::sdk)?;
        Ok(ReportWrite::Written)
    }

    /// Records that the report with these figures went out on the bus.
    pub async fn mark_report_published(&self, tenant: &str, week: &str, digest: &str) -> Result<(), StoreError> {
        let res = self
            .client()
            .update_item()
            .table_name(&self.config().table)
            .key(PK, s(keys::report_pk(tenant)))
            .key(SK, s(week))
            .update_expression("SET published = :t")
            .condition_expression("digest = :d")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(":d", s(digest))
            .send()
            .await;
        match res {
            // Rewritten meanwhile with other figures: that run publishes them.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            r => r.map(|_| ()).map_err(StoreError::sdk),
        }
    }

    /// One week's report.
    pub async fn report(&self, tenant: &str, week: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        self.document(keys::report_pk(tenant), week, now).await
    }

    /// Reports newest first, after the week `before` when given.
    pub async fn reports(&self, tenant: &str, before: Option<&str>, limit: usize, now: DateTime<Utc>) -> Result<ReportPage, StoreError> {
        let mut query = self
            .query()
            .expression_attribute_values(":p", s(keys::report_pk(tenant)))
            .filter_expression("#ttl > :now")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now.timestamp()))
            .scan_index_forward(false);
        query = match before {
            Some(b) => query.key_condition_expression("pk = :p AND sk < :b").expression_attribute_values(":b", s(b)),
            None => query.key_condition_expression("pk = :p"),
        };
        let mut bodies = Vec::new();
        let mut last = None;
        let mut more = false;
        self.for_each_page(query, |items| {
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

    /// Claims the alert of a condition for a window: true when no alert of
    /// the same condition and subject covers any of `[start, end)` (the
    /// caller then publishes it), false when one does (a rerun, or a run
    /// whose window overlaps the last alert's). Each claim carries an id of
    /// its own, so a retried attempt that finds the claim its lost-answer
    /// attempt wrote still knows the claim is its own.
    pub async fn claim_alert(&self, tenant: &str, key: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<bool, StoreError> {
        let item: Item = [
            (PK.to_owned(), s(keys::alert_pk(tenant))),
            (SK.to_owned(), s(key)),
            ("window_start".to_owned(), n(start.timestamp())),
            ("window_end".to_owned(), n(end.timestamp())),
            (CLAIM.to_owned(), s(uuid::Uuid::now_v7().simple().to_string())),
            (TTL_ATTRIBUTE.to_owned(), n(end.timestamp() + 86_400)),
        ]
        .into();
        let request = self
            .client()
            .put_item()
            .table_name(&self.config().table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR window_end <= :start")
            .expression_attribute_values(":start", n(start.timestamp()));
        match put_once(request, CLAIM).await? {
            Put::Written => Ok(true),
            Put::Exists(_) => Ok(false),
            Put::Refused(why) => Err(StoreError::corrupt(format!("alert claim refused: {why}"))),
        }
    }

    /// Gives a claim back when its alert could not be published, so the
    /// retried run sends it.
    pub async fn release_alert(&self, tenant: &str, key: &str, end: DateTime<Utc>) -> Result<(), StoreError> {
        let res = self
            .client()
            .delete_item()
            .table_name(&self.config().table)
            .key(PK, s(keys::alert_pk(tenant)))
            .key(SK, s(key))
            .condition_expression("window_end = :e")
            .expression_attribute_values(":e", n(end.timestamp()))
            .send()
            .await;
        match res {
            Err(e) if !e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Err(StoreError::sdk(e)),
            _ => Ok(()),
        }
    }
}
