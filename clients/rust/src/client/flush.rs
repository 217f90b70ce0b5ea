//! A flush: what is buffered now goes out in batches within the limits;
//! each batch is sent until the backend has answered for every event
//! (split on a 413, only the unstored resent, full-jitter backoff), and
//! what stays undelivered goes back to the front of the buffer.

use std::sync::atomic::Ordering::Relaxed;

use analytics_contract::backoff::Backoff;
use analytics_contract::validate::limits;
use chrono::Utc;

use super::{FlushReport, Inner, lock};
use crate::batch::{self, Verdict};
use crate::event::PendingEvent;
use crate::transport::SendError;

/// An event ready to send: its JSON, written once per flush.
struct Ready {
    event: PendingEvent,
    json: String,
}

pub(super) async fn flush(inner: &Inner, deadline: tokio::time::Instant) -> FlushReport {
    let _one_at_a_time = inner.flushing.lock().await;
    let mut report = FlushReport::default();
    // Only what is buffered now: under a steady stream a flush still ends.
    let mut todo = lock(&inner.buffer).len();
    while todo > 0 {
        let taken: Vec<PendingEvent> = {
            let mut buf = lock(&inner.buffer);
            let n = todo.min(limits::MAX_EVENTS).min(buf.len());
            buf.drain(..n).collect()
        };
        if taken.is_empty() {
            break;
        }
        todo -= taken.len();
        let mut ready = Vec::with_capacity(taken.len());
        for mut event in taken {
            event.normalize();
            let json = event.to_json();
            if json.len() > limits::MAX_EVENT_BYTES {
                tracing::warn!(event_id = %event.event_id, bytes = json.len(), "analytics event over the 32 KiB limit not sent");
                report.rejected += 1;
                inner.counters.rejected.fetch_add(1, Relaxed);
                continue;
            }
            ready.push(Ready { event, json });
        }
        let sizes: Vec<usize> = ready.iter().map(|r| r.json.len()).collect();
        let ranges = batch::split(&sizes);
        let mut rest = ready.into_iter();
        for range in ranges {
            let chunk: Vec<Ready> = rest.by_ref().take(range.len()).collect();
            if let Err(unsent) = send_batch(inner, chunk, &mut report, deadline).await {
                let back: Vec<PendingEvent> = unsent.into_iter().chain(rest).map(|r| r.event).collect();
                requeue(inner, back, &mut report);
                return report;
            }
        }
    }
    report
}

/// Puts events that could not be sent back at the front of the buffer (they
/// are the oldest), then drops the oldest beyond capacity.
fn requeue(inner: &Inner, events: Vec<PendingEvent>, report: &mut FlushReport) {
    report.requeued += events.len() as u64;
    let mut buf = lock(&inner.buffer);
    for e in events.into_iter().rev() {
        buf.push_front(e);
    }
    let mut dropped = 0;
    while buf.len() > inner.cfg.buffer_capacity {
        buf.pop_front();
        dropped += 1;
    }
    drop(buf);
    if dropped > 0 {
        tracing::warn!(dropped, "analytics buffer full while the backend is unreachable: oldest events dropped");
        inner.counters.dropped.fetch_add(dropped, Relaxed);
        report.dropped += dropped;
    }
}

/// Sends one batch until the backend has answered for each event: splits
/// it on a 413, resends only what was not stored, retries with full-jitter
/// backoff (at least the server's `Retry-After`). `Err` returns what is
/// still unsent when the retries are used up.
async fn send_batch(inner: &Inner, batch: Vec<Ready>, report: &mut FlushReport, deadline: tokio::time::Instant) -> Result<(), Vec<Ready>> {
    let cfg = &inner.cfg;
    let c = &inner.counters;
    let mut backoff = Backoff::with_schedule(cfg.backoff_base, cfg.backoff_cap, cfg.max_retries + 1, deadline);
    let mut stack = vec![batch];
    while let Some(mut batch) = stack.pop() {
        loop {
            // Abandoning an attempt is safe: the batch is owned here, and a
            // resend of what the backend did store is a duplicate.
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let answer = tokio::time::timeout(remaining, attempt(inner, &batch)).await.unwrap_or(Err(SendError::Timeout(remaining)));
            let verdict = match answer {
                Ok(reply) => batch::classify(&reply, batch.len()),
                Err(e) => Verdict::Retry { retry_after: None, reason: e.to_string() },
            };
            let retry_after = match verdict {
                Verdict::Stored { accepted, duplicates, invalid, again } => {
                    let (accepted, duplicates, refused) = (accepted as u64, duplicates as u64, invalid.len() as u64);
                    c.sent.fetch_add(accepted, Relaxed);
                    c.duplicates.fetch_add(duplicates, Relaxed);
                    c.rejected.fetch_add(refused, Relaxed);
                    (report.sent, report.duplicates, report.rejected) =
                        (report.sent + accepted, report.duplicates + duplicates, report.rejected + refused);
                    if let Some((index, message)) = invalid.first() {
                        tracing::warn!(refused, first_index = index, first_message = %message, "analytics events refused as invalid");
                    }
                    if again.is_empty() {
                        break;
                    }
                    let mut keep = vec![false; batch.len()];
                    again.iter().for_each(|&i| keep[i] = true);
                    let mut i = 0;
                    batch.retain(|_| {
                        i += 1;
                        keep[i - 1]
                    });
                    None
                }
                Verdict::Invalid(message) => {
                    tracing::error!(events = batch.len(), %message, "analytics batch refused as a whole");
                    c.rejected.fetch_add(batch.len() as u64, Relaxed);
                    report.rejected += batch.len() as u64;
                    break;
                }
                Verdict::TooLarge if batch.len() == 1 => {
                    tracing::warn!("analytics event refused as too large");
                    c.rejected.fetch_add(1, Relaxed);
                    report.rejected += 1;
                    break;
                }
                Verdict::TooLarge => {
                    let second = batch.split_off(batch.len() / 2);
                    stack.push(second);
                    stack.push(batch);
                    break;
                }
                Verdict::Retry { retry_after, reason } => {
                    tracing::debug!(%reason, events = batch.len(), "analytics batch not delivered; retrying");
                    retry_after
                }
            };
            match backoff.next_delay(tokio::time::Instant::now()) {
                Some(delay) => {
                    c.retried.fetch_add(batch.len() as u64, Relaxed);
                    let floor = retry_after.unwrap_or_default().min(cfg.backoff_cap);
                    tokio::time::sleep(delay.max(floor)).await;
                }
                None => {
                    tracing::warn!(events = batch.len(), "analytics backend unreachable after every retry; events kept for the next flush");
                    let mut unsent = batch;
                    while let Some(b) = stack.pop() {
                        unsent.extend(b);
                    }
                    return Err(unsent);
                }
            }
        }
    }
    Ok(())
}

async fn attempt(inner: &Inner, batch: &[Ready]) -> Result<crate::transport::Reply, SendError> {
    let token = inner.token.token().await.map_err(|e| SendError::Token(e.to_string()))?;
    let body = batch::body(batch.iter().map(|r| r.json.as_str()), Utc::now());
    inner.transport.post(token, body).await
}
