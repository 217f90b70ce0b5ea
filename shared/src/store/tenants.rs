//! The tenant registry: the jobs that visit every tenant (metrics, health,
//! cleanup, weekly report) read it instead of scanning the table. The
//! roll-up keeps it: every tenant with events has dirty hours first.

use crate::store::ItemExt;
use crate::time;
use chrono::{DateTime, Duration, Utc};

use super::keys::TENANTS_PK;
use super::table::{PK, SK, TTL_ATTRIBUTE, Table, condition_held};
use super::{StoreError, n, s};

/// A registered tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantEntry {
    pub tenant: String,
    /// The earliest hour (`yyyy-mm-ddThh`) the roll-up saw for it: where a
    /// cleanup sweep starts.
    pub first_hour: String,
    /// The last roll-up run that found work for it.
    pub active_at: DateTime<Utc>,
}

/// The tenant registry.
#[derive(Clone, Copy)]
pub struct Tenants<'t> {
    pub(super) t: &'t Table,
}

impl Tenants<'_> {
    /// Records that the tenant has events from `first_hour` on (keeping an
    /// earlier first hour) and was active at `now`. The entry outlives the
    /// tenant's last rollup.
    pub async fn register(self, tenant: &str, first_hour: &str, now: DateTime<Utc>, keep_days: u32) -> Result<(), StoreError> {
        let expires = now + Duration::days(i64::from(keep_days));
        self.t
            .client()
            .update_item()
            .table_name(&self.t.config().table)
            .key(PK, s(TENANTS_PK))
            .key(SK, s(tenant))
            .update_expression("SET active_at = :a, #ttl = :e, first_hour = if_not_exists(first_hour, :h)")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":a", n(now.timestamp()))
            .expression_attribute_values(":e", n(expires.timestamp()))
            .expression_attribute_values(":h", s(first_hour))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        // A late event older than the recorded first hour moves it back.
        let earlier = self
            .t
            .client()
            .update_item()
            .table_name(&self.t.config().table)
            .key(PK, s(TENANTS_PK))
            .key(SK, s(tenant))
            .update_expression("SET first_hour = :h")
            .condition_expression("first_hour > :h")
            .expression_attribute_values(":h", s(first_hour))
            .send()
            .await;
        condition_held(earlier).map(|_| ())
    }

    /// The start of the tenant's registered first hour, if it is registered.
    pub async fn first_hour(self, tenant: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let item = self.t.get_item(TENANTS_PK, tenant).await?;
        Ok(item.as_ref().and_then(|i| i.str("first_hour")).and_then(time::parse_hour))
    }

    /// Every registered tenant, or one when `only` names it (registered or
    /// not: a manual run may name a tenant the registry has not seen yet).
    pub async fn list(self, only: Option<&str>, now: DateTime<Utc>) -> Result<Vec<TenantEntry>, StoreError> {
        let query = self.t.query_unexpired(now).key_condition_expression("pk = :p").expression_attribute_values(":p", s(TENANTS_PK));
        let mut out = self
            .t
            .collect(query, |item| {
                let get = |k: &str| item.str(k).map(str::to_owned).unwrap_or_default();
                let active = item.num("active_at").unwrap_or(0);
                Ok(Some(TenantEntry {
                    tenant: get(SK),
                    first_hour: get("first_hour"),
                    active_at: DateTime::from_timestamp(active, 0).unwrap_or_default(),
                }))
            })
            .await?;
        if let Some(t) = only {
            out.retain(|e| e.tenant == t);
            if out.is_empty() {
                out.push(TenantEntry { tenant: t.to_owned(), first_hour: time::hour_label(now), active_at: now });
            }
        }
        Ok(out)
    }
}
