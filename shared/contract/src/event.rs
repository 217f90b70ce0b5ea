//! The four kinds of event, as stored and as returned by the read API.
//!
//! An [`Event`] is always valid and sanitized: it is only built by
//! [`crate::validate`]. Times are UTC; `occurred_at` is the clock-skew
//! corrected time and `client_occurred_at` the caller's own value when the
//! correction changed it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `kind` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Activity,
    ApiRequest,
    Auth,
    ExternalCall,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [EventKind::Activity, EventKind::ApiRequest, EventKind::Auth, EventKind::ExternalCall];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Activity => "activity",
            EventKind::ApiRequest => "api_request",
            EventKind::Auth => "auth",
            EventKind::ExternalCall => "external_call",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One stored event: the common envelope and the kind's own fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: String,
    /// When it happened, corrected for the sender's clock skew.
    pub occurred_at: DateTime<Utc>,
    /// The sender's own `occurred_at`, kept when the correction changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_occurred_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Set when `user_agent` was longer than the limit and cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_agent_truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        self.body.kind()
    }

    /// The time the sender stated (before skew correction): with the
    /// `event_id`, what tells a resend apart, since a resend carries exactly
    /// this value again while the corrected time moves with each send's
    /// network delay. The event itself is placed at `occurred_at`.
    pub fn identity_time(&self) -> DateTime<Utc> {
        self.client_occurred_at.unwrap_or(self.occurred_at)
    }
}

/// The kind-specific part of an event, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    Activity(Activity),
    ApiRequest(ApiRequest),
    Auth(AuthEvent),
    ExternalCall(ExternalCall),
}

impl EventBody {
    pub fn kind(&self) -> EventKind {
        match self {
            EventBody::Activity(_) => EventKind::Activity,
            EventBody::ApiRequest(_) => EventKind::ApiRequest,
            EventBody::Auth(_) => EventKind::Auth,
            EventBody::ExternalCall(_) => EventKind::ExternalCall,
        }
    }

    /// The name an event is indexed under within its kind: the action (all
    /// custom actions share `custom`, so a feed of every action reads a fixed
    /// set of partitions), the auth event type or the external service. API
    /// request logs have none: they are the bulk of the traffic and are read
    /// by hour, not by name.
    pub fn index_name(&self) -> Option<&str> {
        match self {
            EventBody::Activity(a) if a.custom => Some(CUSTOM_ACTIONS),
            EventBody::Activity(a) => Some(&a.action),
            EventBody::Auth(a) => Some(a.event_type.as_str()),
            EventBody::ExternalCall(e) => Some(&e.service),
            EventBody::ApiRequest(_) => None,
        }
    }
}

/// The actions the product knows; any other well-formed action is custom.
pub const KNOWN_ACTIONS: [&str; 11] = [
    "generate_report",
    "download_report",
    "delete_report",
    "share_report",
    "create_client",
    "update_client",
    "delete_client",
    "upload_csv",
    "login",
    "logout",
    "view_dashboard",
];

/// The index name all custom actions share.
pub const CUSTOM_ACTIONS: &str = "custom";

/// Something a user did in the product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub action: String,
    /// True when `action` is not one of [`KNOWN_ACTIONS`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub custom: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_id: Option<String>,
    /// Only on `generate_report`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportOutcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    Completed,
    Failed,
}

/// The outcome of a generated report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportOutcome {
    pub status: ReportStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_time_ms: Option<u64>,
    /// Recommendation counts per category (cost, security, reliability,
    /// operational_excellence, performance, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub categories: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<Impact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_monthly_savings: Option<f64>,
}

/// Recommendation counts by impact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    #[serde(default)]
    pub high: u64,
    #[serde(default)]
    pub medium: u64,
    #[serde(default)]
    pub low: u64,
}

/// One request served by a caller's API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiRequest {
    pub endpoint: String,
    pub method: String,
    pub status_code: u16,
    pub response_time_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_params: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The sampling rate the sender applied; counts are weighted by 1/r.
    #[serde(default = "one")]
    pub sample_rate: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthEventType {
    Signup,
    Login,
    LoginFailed,
    Logout,
    ResetPassword,
    TokenRefresh,
}

impl AuthEventType {
    pub const ALL: [AuthEventType; 6] = [
        AuthEventType::Signup,
        AuthEventType::Login,
        AuthEventType::LoginFailed,
        AuthEventType::Logout,
        AuthEventType::ResetPassword,
        AuthEventType::TokenRefresh,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthEventType::Signup => "signup",
            AuthEventType::Login => "login",
            AuthEventType::LoginFailed => "login_failed",
            AuthEventType::Logout => "logout",
            AuthEventType::ResetPassword => "reset_password",
            AuthEventType::TokenRefresh => "token_refresh",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An authentication event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthEvent {
    pub event_type: AuthEventType,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// A call the caller's backend made to an external API, with its cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalCall {
    pub service: String,
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub response_time_ms: f64,
    /// USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_estimate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The model called, for an LLM (`gemini-1.5-pro`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
}
