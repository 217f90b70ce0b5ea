//! The contract between the senders and the backend, as code: the four
//! kinds of event ([`event`]), the limits, validation, sanitizing and
//! redaction rules ([`validate`]), the time range every stored timestamp
//! lies in ([`time`]), the declarative configuration table both sides read
//! their variables with ([`config`]) and the full-jitter retry schedule
//! ([`backoff`]).
//!
//! The backend (`analytics-shared`) re-exports these modules under the same
//! paths; the sending client (`analytics-client`) depends on this crate
//! alone, so a service that sends events compiles the rules the backend
//! applies without compiling the backend.

pub mod backoff;
pub mod config;
pub mod event;
pub mod time;
pub mod validate;
