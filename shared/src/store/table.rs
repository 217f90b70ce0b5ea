//! The table's definition, once, in code: local tables are created from it
//! and a test checks that `infra/template.yaml` declares the same.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use chrono::{DateTime, Utc};

use super::{Item, StoreError, n, s};
use crate::config::StoreConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
    TimeToLiveSpecification,
};

/// The TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
pub const PK: &str = "pk";
pub const SK: &str = "sk";
/// Events by user.
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
/// Events by kind and name (action, auth event type, service) per month.
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";

/// A key of the table or of an index: (partition attribute, sort attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDef {
    pub name: &'static str,
    pub hash: &'static str,
    pub range: &'static str,
}

/// The table key and both indexes. The indexes reuse `sk` as their sort key,
/// so no event carries a second copy of it. Both project every attribute:
/// their reads return whole events without a second fetch.
pub const TABLE_KEY: KeyDef = KeyDef { name: "table", hash: PK, range: SK };
pub const INDEXES: [KeyDef; 2] = [KeyDef { name: GSI1, hash: GSI1_PK, range: SK }, KeyDef { name: GSI2, hash: GSI2_PK, range: SK }];

fn key_schema(k: &KeyDef) -> Vec<KeySchemaElement> {
    vec![
        KeySchemaElement::builder().attribute_name(k.hash).key_type(KeyType::Hash).build().expect("static key"),
        KeySchemaElement::builder().attribute_name(k.range).key_type(KeyType::Range).build().expect("static key"),
    ]
}

/// Creates the table (on-demand, both indexes) and turns TTL on. Used for
/// local tables and tests; in AWS the SAM template creates it.
pub async fn create_table(client: &Client, name: &str) -> Result<(), aws_sdk_dynamodb::Error> {
    let attrs = [PK, SK, GSI1_PK, GSI2_PK]
        .map(|a| AttributeDefinition::builder().attribute_name(a).attribute_type(ScalarAttributeType::S).build().expect("static attr"));
    let gsis = INDEXES.iter().map(|k| {
        GlobalSecondaryIndex::builder()
            .index_name(k.name)
            .set_key_schema(Some(key_schema(k)))
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .expect("static index")
    });
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attrs.to_vec()))
        .set_key_schema(Some(key_schema(&TABLE_KEY)))
        .set_global_secondary_indexes(Some(gsis.collect()))
        .send()
        .await?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(TimeToLiveSpecification::builder().enabled(true).attribute_name(TTL_ATTRIBUTE).build()?)
        .send()
        .await?;
    // Every write into this table keeps hour deltas (`store::deltas`).
    let [(pk, pv), (sk, sv), (t, tv)] = super::deltas::since_item(0);
    client.put_item().table_name(name).item(pk, pv).item(sk, sv).item(t, tv).send().await?;
    Ok(())
}

/// Creates the table unless it exists.
pub async fn ensure_table(client: &Client, name: &str) -> Result<bool, aws_sdk_dynamodb::Error> {
    match client.describe_table().table_name(name).send().await {
        Ok(_) => Ok(false),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
            create_table(client, name).await?;
            Ok(true)
        }
        Err(e) => Err(e.into()),
    }
}

/// The table: the client, its settings and what the reads cost, with the
/// generic operations every repository uses. The repositories
/// (`events()`, `feed()`, `markers()`, `rollups()`, `documents()`,
/// `alerts()`, `sweeps()`, `tenants()`) borrow it, each for one aggregate.
#[derive(Debug, Clone)]
pub struct Table {
    client: Client,
    cfg: StoreConfig,
    /// Items returned by queries so far: what a request cost to read, for
    /// the logs and the benchmarks.
    items_read: Arc<AtomicU64>,
}

/// The filter every read that answers adds (with `:now` and `#ttl`):
/// DynamoDB removes expired items days late.
pub const UNEXPIRED: &str = "#ttl > :now";

impl Table {
    pub fn new(client: Client, cfg: StoreConfig) -> Self {
        Self { client, cfg, items_read: Arc::default() }
    }

    /// Items returned by the queries of this store (and its clones) so far.
    pub fn items_read(&self) -> u64 {
        self.items_read.load(Ordering::Relaxed)
    }

    pub(crate) fn count_read(&self, items: usize) {
        self.items_read.fetch_add(items as u64, Ordering::Relaxed);
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// A query of this store's table, to be completed by the caller.
    pub(crate) fn query(&self) -> QueryFluentBuilder {
        self.client.query().table_name(&self.cfg.table)
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// One item by key, strongly consistent (expired or not: callers that
    /// answer reads check `expires_at`).
    pub(crate) async fn get_item(&self, pk: impl Into<String>, sk: impl Into<String>) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.cfg.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(out.item)
    }

    /// Runs a query page after page, handing each page's items to `f` until
    /// it returns `false` or the pages run out.
    pub(crate) async fn for_each_page(
        &self,
        query: QueryFluentBuilder,
        mut f: impl FnMut(Vec<Item>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut start = None;
        loop {
            let page = query.clone().set_exclusive_start_key(start).send().await.map_err(StoreError::sdk)?;
            let items = page.items.unwrap_or_default();
            self.items_read.fetch_add(items.len() as u64, Ordering::Relaxed);
            if !f(items)? {
                return Ok(());
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(());
            }
        }
    }

    /// Every page of a query, each item mapped by `f` (`None` skips it).
    pub(crate) async fn collect<T>(
        &self,
        query: QueryFluentBuilder,
        mut f: impl FnMut(Item) -> Result<Option<T>, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.for_each_page(query, |items| {
            for item in items {
                out.extend(f(item)?);
            }
            Ok(true)
        })
        .await?;
        Ok(out)
    }

    /// Every page of a query, each item read as a `T`.
    pub(crate) async fn collect_items<T: serde::de::DeserializeOwned>(&self, query: QueryFluentBuilder) -> Result<Vec<T>, StoreError> {
        self.collect(query, |item| Ok(Some(serde_dynamo::from_item(item)?))).await
    }

    /// A query of the table that skips expired items (`UNEXPIRED`).
    pub(crate) fn query_unexpired(&self, now: DateTime<Utc>) -> QueryFluentBuilder {
        self.query()
            .filter_expression(UNEXPIRED)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now.timestamp()))
    }

    /// Writes (replaces) an item.
    pub(crate) async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client.put_item().table_name(&self.cfg.table).set_item(Some(item)).send().await.map_err(StoreError::sdk)?;
        Ok(())
    }

    /// Deletes an item by key.
    pub(crate) async fn delete(&self, pk: impl Into<String>, sk: impl Into<String>) -> Result<(), StoreError> {
        self.client.delete_item().table_name(&self.cfg.table).key(PK, s(pk)).key(SK, s(sk)).send().await.map_err(StoreError::sdk)?;
        Ok(())
    }

    pub fn events(&self) -> super::events::Events<'_> {
        super::events::Events { t: self }
    }
    pub fn explorer(&self) -> super::explorer::Explorer<'_> {
        super::explorer::Explorer { t: self }
    }
    pub fn feed(&self) -> super::feed::Feed<'_> {
        super::feed::Feed { t: self }
    }
    pub fn markers(&self) -> super::markers::Markers<'_> {
        super::markers::Markers { t: self }
    }
    pub fn rollups(&self) -> super::rollups::Rollups<'_> {
        super::rollups::Rollups { t: self }
    }
    pub fn documents(&self) -> super::documents::Documents<'_> {
        super::documents::Documents { t: self }
    }
    pub fn alerts(&self) -> super::alerts::AlertClaims<'_> {
        super::alerts::AlertClaims { t: self }
    }
    pub fn sweeps(&self) -> super::sweep::Sweeps<'_> {
        super::sweep::Sweeps { t: self }
    }
    pub fn tenants(&self) -> super::tenants::Tenants<'_> {
        super::tenants::Tenants { t: self }
    }
    pub fn deltas(&self) -> super::deltas::HourDeltas<'_> {
        super::deltas::HourDeltas { t: self }
    }
    pub fn windows(&self) -> super::windows::Windows<'_> {
        super::windows::Windows { t: self }
    }
}

/// Whether a conditional write was held back by its condition (`Ok(false)`)
/// rather than failing: for writes where "someone else got there" is fine.
pub(crate) fn condition_held<T, E, R>(res: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match res {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(StoreError::sdk(e)),
    }
}
