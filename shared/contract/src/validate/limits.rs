//! Every limit of the contract, in one place: what an event and a batch
//! may hold, and the ranges of its numbers (each one what a DynamoDB item
//! can store, with room to spare).

/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most events in one batch.
pub const MAX_EVENTS: usize = 500;
/// Largest single event, serialized.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
pub const MAX_EVENT_ID_CHARS: usize = 100;
/// Longer user agents are cut to this and flagged.
pub const MAX_USER_AGENT_CHARS: usize = 512;
pub const MAX_METADATA_KEYS: usize = 50;
pub const MAX_METADATA_KEY_CHARS: usize = 64;
pub const MAX_METADATA_STRING_CHARS: usize = 1000;
pub const MAX_METADATA_DEPTH: usize = 3;
pub const MAX_ENDPOINT_CHARS: usize = 2048;
/// user_id, client_id, report_id, service.
pub const MAX_ID_CHARS: usize = 128;
/// description, error_message.
pub const MAX_TEXT_CHARS: usize = 2000;
pub const MAX_QUERY_PARAMS: usize = 50;
/// How far in the future (after skew correction) an event may be.
pub const MAX_FUTURE_HOURS: i64 = 23;
/// Counts and sizes: report categories and impact, request and
/// response sizes, token counts, processing time.
pub const MAX_COUNT: u64 = 1_000_000_000_000;
/// `response_time_ms`: a day.
pub const MAX_RESPONSE_TIME_MS: f64 = 86_400_000.0;
/// `cost_estimate` and `estimated_monthly_savings` (USD).
pub const MAX_AMOUNT: f64 = 1e9;
pub const MIN_SAMPLE_RATE: f64 = 0.0001;
/// Numbers inside metadata: 0, or a magnitude within these (what a
/// DynamoDB number holds, with room to spare).
pub const MIN_METADATA_MAGNITUDE: f64 = 1e-120;
pub const MAX_METADATA_MAGNITUDE: f64 = 1e120;
/// Typed decimal fields below this are stored as 0: a DynamoDB number
/// holds at most 38 digits, and no duration or amount is finer.
pub const FINEST_DECIMAL: f64 = 1e-9;
/// Report categories of one report.
pub const MAX_REPORT_CATEGORIES: usize = 20;
/// Actions, report categories and external services.
pub const MAX_NAME_CHARS: usize = 64;
/// An external call's `model`.
pub const MAX_MODEL_CHARS: usize = 128;
