//! The DynamoDB adapter: one table, keys in [`keys`], the definition in
//! [`table`], events in [`events`], generic batched writes in [`batch`].

pub mod alerts;
mod attrs;
pub use attrs::Attrs;
pub mod batch;
pub mod deltas;
pub mod documents;
pub mod events;
pub mod explorer;
pub mod feed;
pub mod hours;
mod item;
pub use item::read_event;
pub mod keys;
pub mod markers;
pub mod rollups;
pub mod sweep;
pub mod table;
pub mod tenants;
pub mod windows;

pub use table::Table;

use std::collections::HashMap;

use aws_config::{BehaviorVersion, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use crate::config::StoreConfig;
use crate::error::ApiError;

/// The SDK client, re-exported so functions need not depend on the SDK.
pub use aws_sdk_dynamodb::Client as DynamoDbClient;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// The SDK behaviour version every client pins, so an SDK upgrade never
/// changes retry or timeout defaults unnoticed.
pub fn behavior_version() -> BehaviorVersion {
    BehaviorVersion::v2026_01_12()
}

/// Builds the DynamoDB client once per process. The SDK retries throttling
/// and transient errors itself (standard mode, full-jitter backoff), bounded
/// by `max_attempts` and the per-attempt timeout. Endpoints come from the
/// environment (`AWS_ENDPOINT_URL_DYNAMODB` locally), so no code path
/// differs between local and AWS.
pub async fn dynamodb_client(cfg: &StoreConfig) -> aws_sdk_dynamodb::Client {
    let shared = aws_config::defaults(behavior_version()).load().await;
    aws_sdk_dynamodb::Client::from_conf(client_config(&shared, cfg))
}

/// The client configuration for given shared settings (tests point it at a
/// dead endpoint to prove the 503 path).
pub fn client_config(shared: &aws_config::SdkConfig, cfg: &StoreConfig) -> aws_sdk_dynamodb::Config {
    aws_sdk_dynamodb::config::Builder::from(shared)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(cfg.max_attempts)
                .with_initial_backoff(std::time::Duration::from_millis(20))
                .with_max_backoff(std::time::Duration::from_secs(2)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_millis(1000))
                .operation_attempt_timeout(cfg.attempt_timeout)
                .operation_timeout(cfg.deadline)
                .build(),
        )
        .build()
}

/// Storage failures, as the adapter reports them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Still failing after the bounded retries, or out of time: the caller
    /// gets a 503 and may resend.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// An item that could not be mapped (a bug, never the caller's input).
    #[error("item mapping failed: {0}")]
    Mapping(#[from] serde_dynamo::Error),
    /// A stored document that does not parse, or a value that does not
    /// serialize: a bug or a damaged item, not a reason to resend.
    #[error("corrupt or unserializable data: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn unavailable(e: impl std::fmt::Display) -> Self {
        StoreError::Unavailable(e.to_string())
    }

    pub fn corrupt(e: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(e.to_string())
    }

    /// A failed SDK call, with its whole cause chain: the SDK's own `Display`
    /// often says no more than "service error" or "dispatch failure".
    pub fn sdk<E, R>(e: aws_sdk_dynamodb::error::SdkError<E, R>) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        StoreError::Unavailable(aws_smithy_types::error::display::DisplayErrorContext(&e).to_string())
    }
}

impl From<StoreError> for ApiError {
    /// Only a storage that is still failing after the retries is a 503
    /// (the caller may resend); data that does not map is a bug: a 500.
    /// Either keeps its cause for the log the handler writes
    /// ([`ApiError::log`]); the conversion itself logs nothing.
    fn from(e: StoreError) -> Self {
        let answer = match e {
            StoreError::Unavailable(_) => ApiError::unavailable(
                "storage is temporarily unavailable; nothing from this request was acknowledged, resend it later (resending is safe)",
            ),
            StoreError::Mapping(_) | StoreError::Corrupt(_) => ApiError::internal(),
        };
        answer.with_cause(e)
    }
}

/// What a conditional put found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Put {
    /// Written, by this attempt or by an earlier attempt of this very put.
    Written,
    /// Held back by the condition: the item that is there.
    Exists(Item),
    /// DynamoDB refused the item for what it holds (`ValidationException`:
    /// a value, a key, the item size): resending it fails the same way.
    Refused(String),
}

/// Whether a failed call is DynamoDB refusing the request's content rather
/// than failing to serve it: that is never worth a retry or a 503.
pub(crate) fn refused<E, R>(e: &SdkError<E, R>) -> Option<String>
where
    E: ProvideErrorMetadata,
{
    match e {
        SdkError::ServiceError(se) if se.err().code() == Some("ValidationException") => {
            Some(se.err().message().unwrap_or("DynamoDB refused the item").to_owned())
        }
        _ => None,
    }
}

/// Sends a conditional `PutItem` (item and condition set on `request`). A
/// retried attempt can fail the condition on the item its own earlier
/// attempt wrote (that write landed, its answer was lost or came after the
/// attempt timeout); so the failure returns the existing item (`ALL_OLD`, no
/// extra cost), and one whose `mark` attribute equals this item's is this
/// put's own: written. The mark must tell this put apart from any other.
pub(crate) async fn put_once(request: PutItemFluentBuilder, mark: &str) -> Result<Put, StoreError> {
    let ours = request.get_item().as_ref().and_then(|i| i.get(mark)).cloned();
    let res = request.return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld).send().await;
    match res {
        Ok(_) => Ok(Put::Written),
        Err(e) => {
            if let Some(why) = refused(&e) {
                return Ok(Put::Refused(why));
            }
            match e {
                SdkError::ServiceError(se) => match se.err() {
                    PutItemError::ConditionalCheckFailedException(held) => {
                        let old = held.item().cloned().unwrap_or_default();
                        if ours.is_some() && old.get(mark) == ours.as_ref() { Ok(Put::Written) } else { Ok(Put::Exists(old)) }
                    }
                    _ => Err(StoreError::sdk(SdkError::ServiceError(se))),
                },
                e => Err(StoreError::sdk(e)),
            }
        }
    }
}

/// Reading an item's attributes by name and type: a missing attribute or
/// one of another type is `None`.
pub trait ItemExt {
    fn attr(&self, name: &str) -> Option<&AttributeValue>;
    fn str(&self, name: &str) -> Option<&str> {
        self.attr(name).and_then(|v| v.as_s().ok()).map(String::as_str)
    }
    /// A number attribute parsed as `T`.
    fn num<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.attr(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
    }
    fn flag(&self, name: &str) -> Option<bool> {
        self.attr(name).and_then(|v| v.as_bool().ok()).copied()
    }
    fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.attr(name).and_then(|v| v.as_b().ok()).map(|b| b.as_ref())
    }
    /// Whether its TTL (`expires_at`) is still ahead of `now`: every read
    /// that answers skips expired items, which DynamoDB removes days late.
    fn unexpired(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.num::<i64>(table::TTL_ATTRIBUTE).is_some_and(|t| t > now.timestamp())
    }
}

impl ItemExt for Item {
    fn attr(&self, name: &str) -> Option<&AttributeValue> {
        self.get(name)
    }
}

/// Shorthand for a number attribute.
pub fn n(v: impl Number) -> AttributeValue {
    AttributeValue::N(v.digits())
}

/// A number as DynamoDB's text: integers through `itoa` (a third of what
/// `Display` costs, on every number of every item ingest builds), floats
/// as `Display` writes them.
pub trait Number {
    fn digits(self) -> String;
}

macro_rules! integer_numbers {
    ($($t:ty),*) => {$(
        impl Number for $t {
            fn digits(self) -> String {
                itoa::Buffer::new().format(self).to_owned()
            }
        }
    )*};
}
integer_numbers!(u8, u16, u32, u64, usize, i32, i64);

impl Number for f64 {
    /// `Display`'s text (the shortest decimal that reads back as the
    /// same float), at a fraction of its cost for the common numbers: a
    /// whole number below 10^15 (a sample rate of 1, a time of 912 ms)
    /// through `itoa`, and one of a billion or less with at most six
    /// decimals (35.2 ms, 0.0125 USD) from its digits as an integer. Such
    /// a decimal, with the fewest decimals that read back as the float, is
    /// the shortest: decimals of as many places lie 10^-k apart, far more
    /// than the float's spacing there, so no other reads back the same.
    fn digits(self) -> String {
        if self.fract() == 0.0 && self.abs() < 1e15 && !(self == 0.0 && self.is_sign_negative()) {
            return (self as i64).digits();
        }
        if self.is_finite() && self != 0.0 && self.abs() < 1e9 {
            let (magnitude, mut scale) = (self.abs(), 1u64);
            for places in 1..=6 {
                scale *= 10;
                // The nearest integer (a cast, where `round` is a call).
                let digits = (magnitude * scale as f64 + 0.5) as u64;
                if digits as f64 / scale as f64 == magnitude {
                    let (mut whole, mut fraction) = (itoa::Buffer::new(), itoa::Buffer::new());
                    let (whole, fraction) = (whole.format(digits / scale), fraction.format(digits % scale));
                    let mut out = String::with_capacity(whole.len() + places + 2);
                    if self < 0.0 {
                        out.push('-');
                    }
                    out.push_str(whole);
                    out.push('.');
                    out.extend(std::iter::repeat_n('0', places - fraction.len()));
                    out.push_str(fraction);
                    return out;
                }
            }
        }
        self.to_string()
    }
}

/// Shorthand for a string attribute.
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    proptest::proptest! {
        /// Numbers read as `Display` writes them, as before `itoa`.
        #[test]
        fn numbers_are_written_as_display_writes_them(i in proptest::num::i64::ANY, u in proptest::num::u64::ANY, f in proptest::num::f64::ANY) {
            proptest::prop_assert_eq!(n(i), AttributeValue::N(i.to_string()));
            proptest::prop_assert_eq!(n(u), AttributeValue::N(u.to_string()));
            proptest::prop_assert_eq!(n(u as u32), AttributeValue::N((u as u32).to_string()));
            proptest::prop_assert_eq!(n(f), AttributeValue::N(f.to_string()));
        }

        /// Whole floats (written through `itoa`) as `Display` writes them,
        /// at and around the bound, negative and signed zeros included.
        #[test]
        fn short_floats_are_written_as_display_writes_them(k in -2_000_000_000_000_000i64..2_000_000_000_000_000i64, places in 0i32..9, bits in proptest::num::u64::ANY) {
            let f = k as f64 / 10f64.powi(places);
            let small = (k % 2_000_000_000) as f64 / 10f64.powi(places);
            let near = 1e9 - (k.rem_euclid(1000) as f64) / 10f64.powi(places);
            for x in [f, small, -small, near, f.trunc(), f64::from_bits(bits), 1e15 - 1.0, 1e15, -1e15, 1e9, 1e9 - 1e-6, 999_999_999.999_999, 0.1 + 0.2, 1e-7, 5e-324, 0.0, -0.0, 1.0] {
                proptest::prop_assert_eq!(n(x), AttributeValue::N(x.to_string()), "{:?}", x);
            }
        }
    }

    #[test]
    fn a_storage_failure_keeps_its_cause_for_the_log_and_never_sends_it() {
        let outage = ApiError::from(StoreError::unavailable("throttled: table acme"));
        assert_eq!((outage.code, outage.retry_after.is_some()), (ErrorCode::Unavailable, true));
        assert!(outage.cause.as_deref().is_some_and(|c| c.contains("throttled")));
        let bug = ApiError::from(StoreError::corrupt("rollup part 3 missing"));
        assert_eq!((bug.code, bug.retry_after), (ErrorCode::Internal, None), "a bug is a 500 without Retry-After");
        for e in [outage, bug] {
            let body = e.body().to_string();
            assert!(!body.contains("throttled") && !body.contains("part 3"), "the cause stays in the log: {body}");
        }
    }
}
