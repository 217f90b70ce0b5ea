//! Plain data: what is stored and returned.

pub mod event;
pub mod snapshot;

pub use event::{
    Activity, ApiRequest, AuthEvent, AuthEventType, CUSTOM_ACTIONS, Event, EventBody, EventKind, ExternalCall, Impact, KNOWN_ACTIONS,
    ReportOutcome, ReportStatus,
};
pub use snapshot::HealthSnapshot;
