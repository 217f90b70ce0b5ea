//! The ingest pipeline: a request body in, verdicts out. The HTTP function,
//! the demo seeder and the benchmarks all go through [`prepare`] and
//! [`ingest`], so there is one implementation of the contract's rules.

use crate::time;
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::config::Retention;
use crate::error::ApiError;
use crate::model::Event;
use crate::store::Table;
use crate::store::events::{EventWrite, PutOutcome, Received, event_write_received, writer_id};
use crate::time::hour_start;
use crate::validate::{self, Context, Problem, limits};

/// The request body as sent; events stay raw until each is validated alone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBatch<'a> {
    sent_at: Option<String>,
    #[serde(borrow)]
    events: Option<Vec<&'a RawValue>>,
}

/// An event that could not be stored, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub code: &'static str,
    pub message: String,
    /// Each problem with its JSON path in the request.
    pub problems: Vec<ProblemAt>,
}

/// A problem with its path in the whole request (`events[3].status_code`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProblemAt {
    pub path: String,
    pub message: String,
}

/// The answer to a batch with at least one valid event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: Vec<Rejection>,
    pub received_at: DateTime<Utc>,
}

/// A validated batch: what can be written, what was rejected.
#[derive(Debug)]
pub struct PreparedBatch {
    /// (index in the request, write).
    pub writes: Vec<(usize, EventWrite)>,
    pub rejected: Vec<Rejection>,
    /// Events repeated inside this very batch (same key as an earlier one).
    pub repeated: usize,
    pub received_at: DateTime<Utc>,
}

/// Parses, validates, sanitizes and maps a body into writes. Pure: no I/O.
pub fn prepare(
    body: &[u8],
    tenant: &str,
    received_at: DateTime<Utc>,
    retention: &Retention,
    shards: u16,
) -> Result<PreparedBatch, ApiError> {
    prepare_with(body, tenant, received_at, retention, shards, true)
}

/// [`prepare`] the usual way alone: the body split into raw events and
/// each read on its own, without the one-pass read. Its answers are the
/// rule: the property tests hold [`prepare`] to them.
pub fn prepare_each_alone(
    body: &[u8],
    tenant: &str,
    received_at: DateTime<Utc>,
    retention: &Retention,
    shards: u16,
) -> Result<PreparedBatch, ApiError> {
    prepare_with(body, tenant, received_at, retention, shards, false)
}

fn prepare_with(
    body: &[u8],
    tenant: &str,
    received_at: DateTime<Utc>,
    retention: &Retention,
    shards: u16,
    one_pass: bool,
) -> Result<PreparedBatch, ApiError> {
    if body.len() > limits::MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(format!(
            "the body is {} bytes; at most {} bytes (1 MiB) are accepted: split the batch",
            body.len(),
            limits::MAX_BODY_BYTES
        )));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(r#"the body is empty; send {"events": [...]}"#));
    }
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the body is not UTF-8 text"))?;
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::bad_request(r#"the body must be a JSON object: {"sent_at": "...", "events": [...]}"#));
    }
    let received = Received::new(received_at);
    let build = |event| event_write_received(tenant, event, shards, retention, Some(&received));
    // The fast path: the batch read in one pass. Given up (an event
    // refused, or one it cannot vouch for), the batch is read the usual way
    // from the first event that does not stand, for each event's problems
    // and id, or the batch's own.
    let mut writes = Vec::new();
    if !one_pass {
        return prepare_each(text, received_at, retention, build, writes);
    }
    match validate::read_once(text, received_at, *retention, &mut |event| writes.push((writes.len(), build(event)))) {
        Ok(()) => {
            let repeated = drop_repeats(&mut writes);
            Ok(PreparedBatch { writes, rejected: Vec::new(), repeated, received_at })
        }
        Err(stand) => {
            writes.truncate(stand);
            prepare_each(text, received_at, retention, build, writes)
        }
    }
}

/// The usual way: the body split into raw events, each read alone, so a
/// malformed one is rejected with its problems and sinks only itself;
/// `writes`, those of the first events, read already.
fn prepare_each(
    text: &str,
    received_at: DateTime<Utc>,
    retention: &Retention,
    build: impl Fn(Event) -> EventWrite,
    mut writes: Vec<(usize, EventWrite)>,
) -> Result<PreparedBatch, ApiError> {
    let batch: WireBatch<'_> = serde_json::from_str(text).map_err(|e| {
        let why = e.to_string().replace("struct WireBatch", "a batch object");
        ApiError::bad_request(format!("the body is not a valid batch: {why}"))
    })?;
    let sent_at = batch_sent_at(batch.sent_at.as_deref())?;
    batch_count(batch.events.as_ref().map(Vec::len))?;
    let events = batch.events.unwrap_or_default();
    let ctx = Context { received_at, sent_at, retention: *retention };
    writes.reserve_exact(events.len().saturating_sub(writes.len()));
    let mut rejected = Vec::new();
    for (index, raw) in events.iter().enumerate().skip(writes.len()) {
        match validate::validate_event(raw.get(), &ctx) {
            Ok(event) => writes.push((index, build(event))),
            Err(problems) => rejected.push(rejection(index, raw.get(), problems)),
        }
    }
    let repeated = drop_repeats(&mut writes);
    Ok(PreparedBatch { writes, rejected, repeated, received_at })
}

/// The batch's `sent_at`, parsed, or the problem with it.
fn batch_sent_at(sent_at: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    sent_at
        .map(|s| {
            time::parse_timestamp(s).ok_or_else(|| {
                ApiError::validation(
                    "sent_at is not a timestamp",
                    vec![serde_json::json!({"path": "sent_at", "message": "must be an RFC 3339 timestamp such as 2026-11-21T10:00:05Z"})],
                )
            })
        })
        .transpose()
}

/// The problem with the number of events (`None`: no `events` field)
/// unless it is 1 to [`limits::MAX_EVENTS`].
fn batch_count(count: Option<usize>) -> Result<(), ApiError> {
    match count {
        None => Err(ApiError::validation(
            "the batch has no events",
            vec![serde_json::json!({"path": "events", "message": "is required: an array of 1 to 500 events"})],
        )),
        Some(0) => Err(ApiError::validation(
            "the batch has no events",
            vec![serde_json::json!({"path": "events", "message": "must hold 1 to 500 events"})],
        )),
        Some(n) if n > limits::MAX_EVENTS => Err(ApiError::payload_too_large(format!(
            "the batch has {n} events; at most {} are accepted per request: split the batch",
            limits::MAX_EVENTS
        ))),
        Some(_) => Ok(()),
    }
}

/// Removes events repeated inside the batch (the same identity: event id
/// and the sender's time), keeping the first; returns how many went.
/// The identities are borrowed into a set seeded per process (`foldhash`,
/// a few dozen instructions a key where sorting compared long shared
/// prefixes again and again): a batch cannot be built to collide.
fn drop_repeats(writes: &mut Vec<(usize, EventWrite)>) -> usize {
    let mut seen = std::collections::HashSet::with_capacity_and_hasher(writes.len(), foldhash::fast::RandomState::default());
    let repeat: Vec<bool> = writes.iter().map(|(_, w)| !seen.insert(w.identity_parts())).collect();
    drop(seen);
    let before = writes.len();
    let mut i = 0;
    writes.retain(|_| {
        i += 1;
        !repeat[i - 1]
    });
    before - writes.len()
}

pub use crate::validate::{UNSTORABLE, VALIDATION_FAILED};

fn rejection(index: usize, raw: &str, problems: Vec<Problem>) -> Rejection {
    #[derive(Deserialize)]
    struct IdOnly {
        event_id: Option<serde_json::Value>,
    }
    let event_id = serde_json::from_str::<IdOnly>(raw).ok().and_then(|i| i.event_id).and_then(|v| v.as_str().map(str::to_owned));
    let message = problems.iter().map(Problem::to_string).collect::<Vec<_>>().join("; ");
    let problems = problems
        .into_iter()
        .map(|p| ProblemAt {
            path: if p.path.is_empty() { format!("events[{index}]") } else { format!("events[{index}].{}", p.path) },
            message: p.message,
        })
        .collect();
    Rejection { index, event_id, code: VALIDATION_FAILED, message, problems }
}

/// Runs a whole batch: validates, marks the touched hours dirty, writes each
/// event once, and reports. A `dry_run` reads which events exist already
/// but writes nothing. Every event counted `accepted` is durably written;
/// one DynamoDB refuses for what it holds is rejected alone (`unstorable`).
pub async fn ingest(
    store: &Table,
    tenant: &str,
    body: &[u8],
    dry_run: bool,
    received_at: DateTime<Utc>,
    retention: &Retention,
) -> Result<IngestOutcome, ApiError> {
    let batch = prepare(body, tenant, received_at, retention, store.config().shards)?;
    if batch.writes.is_empty() {
        return Err(none_stored(&batch.rejected));
    }
    let mut rejected = batch.rejected;
    let (stored, duplicates) = if dry_run {
        let writes: Vec<EventWrite> = batch.writes.into_iter().map(|(_, w)| w).collect();
        let existing = store.events().existing(&writes).await?;
        let dup = writes.iter().filter(|w| existing.contains(&w.identity_key())).count();
        (writes.len() - dup, dup)
    } else {
        let hours: BTreeSet<DateTime<Utc>> = batch.writes.iter().map(|(_, w)| hour_start(w.placed_at)).collect();
        let hours: BTreeSet<String> = hours.into_iter().map(time::hour_label).collect();
        store.markers().mark(tenant, &hours).await?;
        let (indices, writes): (Vec<usize>, Vec<EventWrite>) = batch.writes.into_iter().unzip();
        let raw_ids: Vec<Option<String>> = writes.iter().map(|w| w.event_id().map(str::to_owned)).collect();
        let outcomes = store.events().put(tenant, writes, &writer_id(), &hours, Some(received_at)).await?;
        // Again after writing: a roll-up that read these hours mid-write
        // sees the version move and leaves them dirty (store::rollups).
        store.markers().mark(tenant, &hours).await?;
        let (mut stored, mut dup) = (0, 0);
        for ((index, event_id), outcome) in indices.into_iter().zip(raw_ids).zip(outcomes) {
            match outcome {
                PutOutcome::Stored => stored += 1,
                PutOutcome::Duplicate => dup += 1,
                PutOutcome::Unstorable(why) => {
                    tracing::warn!(index, cause = %why, "event refused by storage");
                    let message = format!("storage refused this event: {why}; change what the message names and resend it");
                    rejected.push(Rejection {
                        index,
                        event_id,
                        code: UNSTORABLE,
                        problems: vec![ProblemAt { path: format!("events[{index}]"), message: message.clone() }],
                        message,
                    });
                }
            }
        }
        rejected.sort_by_key(|r| r.index);
        if stored + dup + batch.repeated == 0 {
            return Err(none_stored(&rejected));
        }
        (stored, dup)
    };
    Ok(IngestOutcome { accepted: stored, duplicates: duplicates + batch.repeated, rejected, received_at: batch.received_at })
}

/// The 400 of a batch none of whose events could be stored.
fn none_stored(rejected: &[Rejection]) -> ApiError {
    let details = rejected
        .iter()
        .flat_map(|r| {
            r.problems.iter().map(move |p| {
                serde_json::json!({"index": r.index, "event_id": r.event_id, "code": r.code, "path": p.path, "message": p.message})
            })
        })
        .collect();
    ApiError::validation(
        format!("none of the {} events could be stored; fix the problems listed in details and resend", rejected.len()),
        details,
    )
}

#[cfg(test)]
mod tests;
