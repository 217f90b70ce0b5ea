//! Alert claims: one record per tenant, condition and subject, holding the
//! window of the last alert raised, so an alert goes out once per window
//! however often or concurrently the health job runs.

use chrono::{DateTime, Utc};

use super::keys;
use super::table::{PK, SK, TTL_ATTRIBUTE, Table, condition_held};
use super::{Item, Put, StoreError, n, put_once, s};

/// The attribute of an alert record naming the claim that wrote it.
const CLAIM: &str = "claim";

/// The alert claims of every tenant.
#[derive(Clone, Copy)]
pub struct AlertClaims<'t> {
    pub(super) t: &'t Table,
}

impl AlertClaims<'_> {
    /// Claims the alert of a condition for a window: true when no alert of
    /// the same condition and subject covers any of `[start, end)` (the
    /// caller then publishes it), false when one does (a rerun, or a run
    /// whose window overlaps the last alert's). Each claim carries an id of
    /// its own, so a retried attempt that finds the claim its lost-answer
    /// attempt wrote still knows the claim is its own.
    pub async fn claim(self, tenant: &str, key: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<bool, StoreError> {
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
            .t
            .client()
            .put_item()
            .table_name(&self.t.config().table)
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
    pub async fn release(self, tenant: &str, key: &str, end: DateTime<Utc>) -> Result<(), StoreError> {
        let res = self
            .t
            .client()
            .delete_item()
            .table_name(&self.t.config().table)
            .key(PK, s(keys::alert_pk(tenant)))
            .key(SK, s(key))
            .condition_expression("window_end = :e")
            .expression_attribute_values(":e", n(end.timestamp()))
            .send()
            .await;
        // Rewritten by a later claim meanwhile: that one stands.
        condition_held(res).map(|_| ())
    }
}
