//! Everything the analytics functions share: the event model, the rules that
//! validate and sanitize what callers send, identity, the error contract, the
//! configuration, and the DynamoDB adapter. Handlers stay thin: they parse a
//! request, call into this crate and shape the response.

pub mod alloc;
pub mod auth;
pub mod backoff;
#[cfg(feature = "bus")]
pub mod bus;
pub mod config;
pub mod cursor;
pub mod emf;
pub mod error;
pub mod hash;
#[cfg(feature = "http")]
pub mod http;
pub mod ingest;
#[cfg(feature = "jobs")]
pub mod jobs;
pub mod model;
pub mod query;
pub mod report;
pub mod rollup;
pub mod store;
pub mod telemetry;
pub mod tenant;
pub mod time;
pub mod validate;

pub use auth::Caller;
pub use config::Config;
pub use error::ApiError;
