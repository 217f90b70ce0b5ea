//! The table's definition, once, in code: local tables are created from it
//! and a test checks that `infra/template.yaml` declares the same.

use aws_sdk_dynamodb::Client;
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
