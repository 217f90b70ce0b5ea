//! The cleanup's storage side: finding items past the current retention
//! that TTL will not remove soon (written under an older, longer retention,
//! or in a table whose TTL is off), deleting them in batches, and
//! remembering how far each sweep got.

use crate::store::ItemExt;
use crate::time;
use aws_sdk_dynamodb::types::TimeToLiveStatus;
use chrono::{DateTime, Duration, Utc};
use tokio::time::Instant;

use super::events::{StoredEvent, expires_at};
use super::keys;
use super::table::{PK, SK, TTL_ATTRIBUTE, Table};
use super::{Item, StoreError, batch, n, s};
use crate::config::Retention;
use crate::model::EventKind;

/// Items whose TTL falls within this margin are left to TTL.
pub const TTL_MARGIN_HOURS: i64 = 24;

/// What one swept partition gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Hours (events) or days (snapshots) swept.
    pub units: usize,
    /// Items looked at (those TTL would not reach soon).
    pub examined: usize,
    pub removed: usize,
}

impl std::ops::AddAssign for Swept {
    fn add_assign(&mut self, o: Swept) {
        self.units += o.units;
        self.examined += o.examined;
        self.removed += o.removed;
    }
}

/// The circumstances of one sweep run.
#[derive(Debug, Clone, Copy)]
pub struct SweepRun {
    pub now: DateTime<Utc>,
    /// Whether TTL is on: when off, every item past retention is removed.
    pub ttl_on: bool,
    pub deadline: Instant,
}

/// The cleanup's storage side.
#[derive(Clone, Copy)]
pub struct Sweeps<'t> {
    pub(super) t: &'t Table,
}

impl Sweeps<'_> {
    /// Whether TTL is enabled on the table, on `expires_at`.
    pub async fn ttl_enabled(self) -> Result<bool, StoreError> {
        let out = self.t.client().describe_time_to_live().table_name(&self.t.config().table).send().await.map_err(StoreError::sdk)?;
        Ok(out.time_to_live_description.is_some_and(|d| {
            d.time_to_live_status == Some(TimeToLiveStatus::Enabled) && d.attribute_name.as_deref() == Some(TTL_ATTRIBUTE)
        }))
    }

    /// How far a sweep of the tenant got (an hour or day label, exclusive).
    pub async fn mark(self, tenant: &str, sweep: &str) -> Result<Option<String>, StoreError> {
        let item = self.t.get_item(keys::sweep_pk(tenant), sweep).await?;
        Ok(item.and_then(|i| i.str("through").map(str::to_owned)))
    }

    pub async fn set_mark(self, tenant: &str, sweep: &str, through: &str, expires_at: i64) -> Result<(), StoreError> {
        let item: Item = [
            (PK.to_owned(), s(keys::sweep_pk(tenant))),
            (SK.to_owned(), s(sweep)),
            ("through".to_owned(), s(through)),
            (TTL_ATTRIBUTE.to_owned(), n(expires_at)),
        ]
        .into();
        self.t.put(item).await?;
        Ok(())
    }

    /// Reads a partition page by page, keeping the items TTL will not
    /// reach within the margin (all of them when TTL is off), and deletes
    /// those `due` says are past retention.
    async fn sweep_partition(
        self,
        pk: String,
        range: Option<(String, String)>,
        run: SweepRun,
        due: impl Fn(&Item) -> Result<bool, StoreError>,
    ) -> Result<Swept, StoreError> {
        let SweepRun { now, ttl_on, deadline } = run;
        let mut query = self.t.query().expression_attribute_values(":p", s(pk));
        query = match range {
            Some((a, b)) => query
                .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
                .expression_attribute_values(":a", s(a))
                .expression_attribute_values(":b", s(b)),
            None => query.key_condition_expression("pk = :p"),
        };
        if ttl_on {
            query = query
                .filter_expression("#ttl > :soon")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":soon", n((now + Duration::hours(TTL_MARGIN_HOURS)).timestamp()));
        }
        let mut doomed: Vec<Item> = Vec::new();
        let mut examined = 0;
        self.t
            .for_each_page(query, |items| {
                examined += items.len();
                for item in items {
                    if due(&item)? {
                        doomed.push(item.into_iter().filter(|(k, _)| k == PK || k == SK).collect());
                    }
                }
                Ok(true)
            })
            .await?;
        let cfg = self.t.config();
        let removed = batch::batch_delete(self.t.client(), &cfg.table, doomed, cfg.write_concurrency, cfg.max_attempts, deadline).await?;
        Ok(Swept { units: 0, examined, removed })
    }

    /// Sweeps the events of `[from, to)` (whole hours) of the given kinds:
    /// an event is removed when its kind's current retention has passed.
    /// Each hour's shards are read on their own, the activity partitions
    /// once per month slice of the span.
    pub async fn events(
        self,
        tenant: &str,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        kinds: &[EventKind],
        retention: &Retention,
        run: SweepRun,
    ) -> Result<Swept, StoreError> {
        let shards = usize::from(self.t.config().shards.max(1));
        let mut parts: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        if kinds.iter().any(|k| *k != EventKind::Activity) {
            let mut h = time::hour_start(from);
            while h < to {
                for pk in keys::raw_partitions(tenant, h, self.t.config().shards).into_iter().take(shards) {
                    parts.push((pk, h, h + Duration::hours(1)));
                }
                h += Duration::hours(1);
            }
        }
        if kinds.contains(&EventKind::Activity) {
            let mut m = from;
            while m < to {
                let end = crate::time::next_month_start(m).min(to);
                for pk in keys::raw_partitions(tenant, m, self.t.config().shards).into_iter().skip(shards) {
                    parts.push((pk, m, end));
                }
                m = end;
            }
        }
        let sweeps = parts.into_iter().map(|(pk, a, b)| {
            self.sweep_partition(pk, Some((keys::sk_from(a), keys::sk_before(b))), run, |item| {
                let e: StoredEvent = serde_dynamo::from_item(item.clone())?;
                Ok(kinds.contains(&e.event.kind()) && expires_at(&e.event, retention) <= run.now.timestamp())
            })
        });
        let mut total = Swept::default();
        for s in futures::future::try_join_all(sweeps).await? {
            total += s;
        }
        Ok(total)
    }

    /// Sweeps one day of health snapshots, all of them past retention (the
    /// caller passes only such days).
    pub async fn snapshot_day(self, tenant: &str, day: &str, run: SweepRun) -> Result<Swept, StoreError> {
        self.sweep_partition(keys::health_pk(tenant, day), None, run, |_| Ok(true)).await
    }
}
