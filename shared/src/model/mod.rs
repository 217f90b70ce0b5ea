//! Plain data: what is stored and returned.

pub mod event;

pub use event::{
    Activity, ApiRequest, AuthEvent, AuthEventType, Event, EventBody, EventKind, ExternalCall, Impact, ReportOutcome, ReportStatus,
};
