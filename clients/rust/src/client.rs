//! The client: a bounded buffer the caller's path pushes into, and the
//! flusher that sends it (from a background task, or at the end of each
//! invocation on Lambda); a flush itself is in `flush`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::ClientConfig;
use crate::event::PendingEvent;
use crate::transport::{HttpTransport, SendError, StaticToken, TokenSource, Transport, TransportError};

/// The client could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the background flusher needs a Tokio runtime: build the client inside one, or set flush_per_invocation")]
    NoRuntime,
}

/// What the client has done since it started. `recorded` = `sent` +
/// `duplicates` + `rejected` + `dropped` + `buffered` (+ events in flight),
/// except that records after shutdown count only as dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events put in the buffer.
    pub recorded: u64,
    /// API requests left out by sampling (never buffered).
    pub sampled_out: u64,
    /// Events the backend stored.
    pub sent: u64,
    /// Events the backend recognised as already stored (a resend after a
    /// lost answer).
    pub duplicates: u64,
    /// Events the backend refused as invalid (or too large alone).
    pub rejected: u64,
    /// Event sends repeated after a failed attempt.
    pub retried: u64,
    /// Events lost: the oldest, pushed out of a full buffer, and any left
    /// at shutdown.
    pub dropped: u64,
    /// Events waiting now.
    pub buffered: u64,
}

/// What one flush did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub sent: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Events put back in the buffer because the backend stayed
    /// unreachable through every retry.
    pub requeued: u64,
    /// Events lost by this flush (requeued into a full buffer, or left at
    /// shutdown).
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    recorded: AtomicU64,
    sampled_out: AtomicU64,
    sent: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    retried: AtomicU64,
    dropped: AtomicU64,
}

struct Inner {
    cfg: ClientConfig,
    buffer: Mutex<VecDeque<PendingEvent>>,
    counters: Counters,
    /// Woken when the count threshold is reached.
    wake: Notify,
    /// Tells the background task to stop.
    stop: Notify,
    closed: AtomicBool,
    /// One flush at a time: a timer flush and a count flush never send the
    /// same events twice, and batches leave in order.
    flushing: tokio::sync::Mutex<()>,
    transport: Arc<dyn Transport>,
    token: Arc<dyn TokenSource>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// The handle every part of a service shares (cheap to clone). Recording
/// never waits on the network: it pushes into a bounded buffer and returns.
/// Call [`Analytics::shutdown`] before the process exits: the background
/// flusher keeps the client alive until then, and only shutdown sends what
/// is left.
#[derive(Clone)]
pub struct Analytics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Analytics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analytics").field("cfg", &self.inner.cfg).field("stats", &self.stats()).finish()
    }
}

/// Builds an [`Analytics`] client.
pub struct Builder {
    cfg: ClientConfig,
    token: Option<Arc<dyn TokenSource>>,
    transport: Option<Arc<dyn Transport>>,
}

impl Builder {
    /// Where the bearer token comes from, asked before every send (so it
    /// may rotate): a closure returning a future of `Result<String, E>`, or
    /// a [`StaticToken`].
    pub fn token(mut self, source: impl TokenSource) -> Self {
        self.token = Some(Arc::new(source));
        self
    }

    /// Replaces the HTTP transport (an in-process sink in tests).
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// Starts the client; unless it flushes per invocation (or is
    /// disabled), this spawns the background flusher on the current Tokio
    /// runtime.
    pub fn build(self) -> Result<Analytics, ClientError> {
        let transport: Arc<dyn Transport> = match self.transport {
            Some(t) => t,
            // Disabled: nothing is ever sent, so a missing URL or missing
            // certificates must not stop the service from starting.
            None if !self.cfg.enabled => Arc::new(Disabled),
            None => Arc::new(HttpTransport::new(&self.cfg.api_url, self.cfg.request_timeout)?),
        };
        let background = self.cfg.enabled && !self.cfg.flush_per_invocation;
        let runtime = if background { Some(tokio::runtime::Handle::try_current().map_err(|_| ClientError::NoRuntime)?) } else { None };
        let inner = Arc::new(Inner {
            buffer: Mutex::new(VecDeque::with_capacity(self.cfg.buffer_capacity.min(4096))),
            cfg: self.cfg,
            counters: Counters::default(),
            wake: Notify::new(),
            stop: Notify::new(),
            closed: AtomicBool::new(false),
            flushing: tokio::sync::Mutex::new(()),
            transport,
            token: self.token.unwrap_or_else(|| Arc::new(StaticToken::new(""))),
            task: Mutex::new(None),
        });
        if let Some(rt) = runtime {
            let task = rt.spawn(run(inner.clone()));
            *lock(&inner.task) = Some(task);
        }
        Ok(Analytics { inner })
    }
}

/// The transport of a disabled client: never called.
struct Disabled;

impl Transport for Disabled {
    fn post(&self, _: String, _: bytes::Bytes) -> crate::transport::BoxFuture<'_, Result<crate::transport::Reply, SendError>> {
        Box::pin(async { Err(SendError::Network("analytics is disabled".into())) })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The background flusher: flushes on the timer, on the count threshold,
/// or both, until told to stop.
async fn run(inner: Arc<Inner>) {
    let strategy = inner.cfg.flush_strategy;
    let period = inner.cfg.flush_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = inner.stop.notified() => break,
            _ = tick.tick(), if strategy.by_time() => {}
            _ = inner.wake.notified(), if strategy.by_count() => {}
        }
        flush(&inner, far_future()).await;
    }
}

/// No deadline: a flush is then bounded by the retries alone.
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(365 * 86_400)
}

impl Analytics {
    /// A builder with these settings.
    pub fn builder(cfg: ClientConfig) -> Builder {
        Builder { cfg, token: None, transport: None }
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// True when recording does anything.
    pub fn enabled(&self) -> bool {
        self.inner.cfg.enabled
    }

    /// Puts an event in the buffer and returns at once; when the buffer is
    /// full the oldest event is dropped (and counted) to make room.
    pub fn record(&self, event: PendingEvent) {
        let inner = &*self.inner;
        if !inner.cfg.enabled {
            return;
        }
        if inner.closed.load(Relaxed) {
            inner.counters.dropped.fetch_add(1, Relaxed);
            return;
        }
        let len = {
            let mut buf = lock(&inner.buffer);
            if buf.len() >= inner.cfg.buffer_capacity {
                buf.pop_front();
                inner.counters.dropped.fetch_add(1, Relaxed);
            }
            buf.push_back(event);
            buf.len()
        };
        inner.counters.recorded.fetch_add(1, Relaxed);
        if inner.cfg.flush_strategy.by_count() && len % inner.cfg.flush_count_threshold == 0 {
            inner.wake.notify_one();
        }
    }

    /// Counts an API request that sampling left out.
    pub(crate) fn count_sampled_out(&self) {
        self.inner.counters.sampled_out.fetch_add(1, Relaxed);
    }

    /// Sends what is buffered now, and returns when the backend has
    /// answered for it (or every retry failed and the rest went back into
    /// the buffer). On Lambda, await this at the end of each invocation
    /// (the layer does it when `flush_per_invocation` is set).
    pub async fn flush(&self) -> FlushReport {
        flush(&self.inner, far_future()).await
    }

    /// [`Analytics::flush`] bounded in time: retries stop, and a pending
    /// attempt is abandoned, when `limit` has passed; what is not delivered
    /// by then goes back to the buffer for the next flush. The layer uses
    /// it per invocation (with `request_timeout`), so a backend that is
    /// down cannot hold a Lambda invocation until its own timeout.
    pub async fn flush_within(&self, limit: Duration) -> FlushReport {
        flush(&self.inner, tokio::time::Instant::now() + limit).await
    }

    /// Stops the background flusher, sends what is left, and counts as
    /// dropped whatever still could not be sent. Records after this are
    /// dropped (and counted).
    pub async fn shutdown(&self) -> FlushReport {
        let inner = &*self.inner;
        inner.closed.store(true, Relaxed);
        inner.stop.notify_one();
        let task = lock(&inner.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let mut report = flush(inner, far_future()).await;
        let left = {
            let mut buf = lock(&inner.buffer);
            let n = buf.len() as u64;
            buf.clear();
            n
        };
        if left > 0 {
            tracing::warn!(events = left, "analytics events not delivered before shutdown are lost");
            inner.counters.dropped.fetch_add(left, Relaxed);
            report.dropped += left;
        }
        report
    }

    /// The counters since start.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            recorded: c.recorded.load(Relaxed),
            sampled_out: c.sampled_out.load(Relaxed),
            sent: c.sent.load(Relaxed),
            duplicates: c.duplicates.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
            retried: c.retried.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            buffered: lock(&self.inner.buffer).len() as u64,
        }
    }
}

mod flush;
#[cfg(test)]
mod tests;

use flush::flush;
