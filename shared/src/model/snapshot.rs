//! A health snapshot: host and process figures plus the application figures
//! of the system-health route.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What `/system-health` returns, and what the health job stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSnapshot {
    /// Host CPU use, percent; absent when no health job has measured it yet.
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub memory_used_mb: Option<f64>,
    /// Percent of API requests with a status of 500 or more over 24 hours.
    pub error_rate: f64,
    pub requests_24h: f64,
    pub avg_response_time_ms: Option<f64>,
    pub p95_response_time_ms: Option<f64>,
    pub active_users_today: u64,
    pub failed_logins_24h: u64,
    pub captured_at: DateTime<Utc>,
}
