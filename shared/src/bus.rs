//! The EventBridge publisher: entries go out in calls of at most 10 (the
//! `PutEvents` limit), and entries EventBridge reports as failed are sent
//! again with full-jitter backoff, a bounded number of times. What still
//! fails is an error, so the job fails and its schedule retries it: nothing
//! is dropped silently.

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde::Serialize;
use tokio::time::Instant;

use crate::backoff::Backoff;

/// The `source` of every event this system publishes.
pub const SOURCE: &str = "analytics";

/// Most entries in one `PutEvents` call.
pub const ENTRIES_PER_CALL: usize = 10;

/// The largest entry EventBridge accepts (source, detail type and detail).
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;

/// One event for the bus.
#[derive(Debug, Clone, PartialEq)]
pub struct BusEvent {
    pub detail_type: &'static str,
    pub detail: String,
}

impl BusEvent {
    /// Serializes `detail`; refuses an entry EventBridge would reject.
    pub fn new(detail_type: &'static str, detail: &impl Serialize) -> Result<Self, BusError> {
        let detail = serde_json::to_string(detail).map_err(|e| BusError::Entry(e.to_string()))?;
        let size = SOURCE.len() + detail_type.len() + detail.len();
        if size > MAX_ENTRY_BYTES {
            return Err(BusError::Entry(format!("{detail_type} is {size} bytes; an entry holds at most {MAX_ENTRY_BYTES}")));
        }
        Ok(Self { detail_type, detail })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("event bus entry refused: {0}")]
    Entry(String),
    /// Entries still failing after the bounded retries.
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
}

/// The client and the bus every event goes to (`ANALYTICS_EVENT_BUS`).
#[derive(Clone, Debug)]
pub struct Bus {
    client: aws_sdk_eventbridge::Client,
    name: String,
    max_attempts: u32,
}

impl Bus {
    pub fn new(client: aws_sdk_eventbridge::Client, name: impl Into<String>) -> Self {
        Self { client, name: name.into(), max_attempts: 5 }
    }

    /// Builds the client once per process from the shared SDK settings
    /// (`AWS_ENDPOINT_URL_EVENTBRIDGE` locally).
    pub async fn from_env(name: impl Into<String>) -> Self {
        let shared = aws_config::defaults(crate::store::behavior_version()).load().await;
        Self::from_shared(&shared, name)
    }

    /// A publisher from SDK settings already loaded (a function loads them
    /// once for all its clients).
    pub fn from_shared(shared: &aws_config::SdkConfig, name: impl Into<String>) -> Self {
        Self::new(aws_sdk_eventbridge::Client::new(shared), name)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates the bus unless it exists (local stacks; in AWS the template
    /// creates it). True when it was created.
    pub async fn create_if_missing(&self) -> Result<bool, BusError> {
        match self.client.create_event_bus().name(&self.name).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_already_exists_exception()) => Ok(false),
            Err(e) => Err(BusError::Unavailable(aws_smithy_types::error::display::DisplayErrorContext(&e).to_string())),
        }
    }

    /// Publishes every event or fails. Returns how many were published.
    pub async fn publish(&self, events: &[BusEvent]) -> Result<usize, BusError> {
        for chunk in events.chunks(ENTRIES_PER_CALL) {
            self.publish_chunk(chunk).await?;
        }
        Ok(events.len())
    }

    async fn publish_chunk(&self, chunk: &[BusEvent]) -> Result<(), BusError> {
        let mut pending: Vec<PutEventsRequestEntry> = chunk
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.name)
                    .source(SOURCE)
                    .detail_type(e.detail_type)
                    .detail(&e.detail)
                    .build()
            })
            .collect();
        let mut backoff = Backoff::new(self.max_attempts, Instant::now() + Duration::from_secs(20));
        loop {
            let last_error = match self.client.put_events().set_entries(Some(pending.clone())).send().await {
                Ok(out) if out.failed_entry_count == 0 => return Ok(()),
                Ok(out) => {
                    // Results are in the order of the entries; a failed one has an error code.
                    let results = out.entries.unwrap_or_default();
                    let mut why = String::new();
                    pending = pending
                        .into_iter()
                        .zip(results.iter().map(Some).chain(std::iter::repeat(None)))
                        .filter(|(_, r)| r.is_none_or(|r| r.error_code.is_some()))
                        .map(|(entry, r)| {
                            if let Some(r) = r {
                                why = format!("{}: {}", r.error_code().unwrap_or_default(), r.error_message().unwrap_or_default());
                            }
                            entry
                        })
                        .collect();
                    why
                }
                Err(e) => aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
            };
            tracing::warn!(bus = %self.name, pending = pending.len(), error = %last_error, "publishing failed; retrying");
            if !crate::backoff::wait(&mut backoff).await {
                return Err(BusError::Unavailable(format!("{} entries not accepted by bus {}: {last_error}", pending.len(), self.name)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_entries_are_refused_before_sending() {
        let big = "x".repeat(MAX_ENTRY_BYTES);
        let err = BusEvent::new("WeeklyReportGenerated", &serde_json::json!({ "s": big })).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
        assert!(BusEvent::new("AnalyticsHealthAlert", &serde_json::json!({ "a": 1 })).is_ok());
    }
}
