//! The sending side of the analytics backend, for Rust services on Lambda
//! or on a long-running server.
//!
//! - [`AnalyticsLayer`]: a `tower::Layer` that records every request of an
//!   axum or lambda_http service as an `api_request` event (route template,
//!   method, status, time, sizes, client IP, user agent, user, sanitized
//!   query, 5xx message), with exclusions and sampling; and, with an
//!   [`ActivityTable`], each 2xx answer to a signed-in user on one of its
//!   routes as an `activity` (`POST /reports` is `generate_report`, with
//!   the client and report ids taken from the path).
//! - [`Analytics::auth`], [`Analytics::external_call`],
//!   [`Analytics::activity`]: one-line helpers for the other kinds.
//! - Recording never waits on the network: events go into a bounded buffer
//!   (oldest dropped and counted when full) and are sent in batches by
//!   count, by time or both, or at the end of each Lambda invocation; the
//!   sender honours the contract's limits, retries with full-jitter backoff
//!   and resends only what was not stored.
//!
//! ```no_run
//! use analytics_client::{Analytics, AnalyticsLayer, ClientConfig, StaticToken};
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let analytics = Analytics::builder(ClientConfig::from_env()?).token(StaticToken::new("jwt")).build()?;
//! let app: axum::Router = axum::Router::new().route("/", axum::routing::get(|| async { "hi" })).layer(AnalyticsLayer::new(analytics.clone()));
//! # let _ = app; Ok(()) }
//! ```

mod activity;
pub mod batch;
mod client;
pub mod config;
pub mod event;
mod layer;
mod record;
pub mod transport;

pub use activity::{ActivityRoute, ActivityTable, IdField};
pub use analytics_contract::event::{AuthEventType, ReportOutcome, ReportStatus};
pub use client::{Analytics, Builder, ClientError, FlushReport, Stats};
pub use config::{ClientConfig, ConfigError, FlushStrategy};
pub use layer::{AnalyticsLayer, AnalyticsUser, ErrorMessage, Tracked, client_ip, keep};
pub use record::{CallGuard, CallOutcome, Record};
pub use transport::{BoxError, BoxFuture, HttpTransport, Reply, SendError, StaticToken, TokenSource, Transport};
