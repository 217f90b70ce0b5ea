//! Plain data: what is stored and returned. The events are the contract's
//! ([`analytics_contract::event`]); the health snapshot is the backend's.

pub use analytics_contract::event;
pub mod snapshot;

pub use event::{
    Activity, ApiRequest, AuthEvent, AuthEventType, CUSTOM_ACTIONS, Event, EventBody, EventKind, ExternalCall, Impact, KNOWN_ACTIONS,
    ReportOutcome, ReportStatus,
};
pub use snapshot::HealthSnapshot;
