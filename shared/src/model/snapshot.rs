//! A health snapshot: host and process figures plus the application figures
//! of the system-health route.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};

/// Weighted counts and averages are written with 2 decimals, and as
/// integers when whole.
pub fn ser_num<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    let r = (x * 100.0).round() / 100.0;
    if r.fract() == 0.0 && r.abs() < 9.0e15 { s.serialize_i64(r as i64) } else { s.serialize_f64(r) }
}

pub fn ser_opt<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match x {
        Some(v) => ser_num(v, s),
        None => s.serialize_none(),
    }
}

/// What `/system-health` returns, and what the health job stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSnapshot {
    /// Host CPU use, percent; absent when no health job has measured it yet.
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub memory_used_mb: Option<f64>,
    /// Resident memory of the health job's own process.
    #[serde(default)]
    pub process_memory_mb: Option<f64>,
    /// Percent of API requests with a status of 500 or more over 24 hours.
    #[serde(serialize_with = "ser_num")]
    pub error_rate: f64,
    #[serde(serialize_with = "ser_num")]
    pub requests_24h: f64,
    pub avg_response_time_ms: Option<f64>,
    pub p95_response_time_ms: Option<f64>,
    pub active_users_today: u64,
    pub failed_logins_24h: u64,
    pub captured_at: DateTime<Utc>,
}
