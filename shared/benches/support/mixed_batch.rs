//! The realistic mixed batch the ingest benches share: in every ten events,
//! one report outcome with categories and impact, one other activity, one
//! auth event, one external call and six API request logs with query
//! parameters (about 500 bytes an event on the wire).

use serde_json::{Value, json};

/// The events numbered `range` of the mix (event `i` has kind `i % 10`, so
/// batches of one or ten taken in turn keep the same proportions), all at
/// `at`, ids `{prefix}-{i}`.
pub fn events(at: chrono::DateTime<chrono::Utc>, prefix: &str, range: std::ops::Range<usize>) -> Vec<Value> {
    let ts = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    range
        .map(|i| {
            let id = format!("{prefix}-{i}");
            match i % 10 {
                0 => json!({"event_id": id, "kind": "activity", "occurred_at": ts, "user_id": "u-42", "action": "generate_report",
                    "client_id": "c-7", "report_id": "r-9", "description": "Generated cost report", "ip_address": "203.0.113.7",
                    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "metadata": {"source": "web", "session_token": "abc"},
                    "report": {"status": "completed", "processing_time_ms": 8421,
                        "categories": {"cost": 12, "security": 3, "reliability": 1, "operational_excellence": 0, "performance": 4},
                        "impact": {"high": 2, "medium": 9, "low": 9}, "estimated_monthly_savings": 1830.5}}),
                1 => json!({"event_id": id, "kind": "activity", "occurred_at": ts, "user_id": "u-7", "action": "view_dashboard", "metadata": {"source": "web"}}),
                2 => json!({"event_id": id, "kind": "auth", "occurred_at": ts, "user_id": "u-7", "event_type": "login", "success": true, "ip_address": "198.51.100.4"}),
                3 => json!({"event_id": id, "kind": "external_call", "occurred_at": ts, "service": "gemini", "endpoint": "/v1/generate",
                    "method": "POST", "status_code": 200, "response_time_ms": 912.0, "cost_estimate": 0.0125}),
                _ => json!({"event_id": id, "kind": "api_request", "occurred_at": ts, "user_id": "u-7", "endpoint": "/api/clients/{id}",
                    "method": "GET", "status_code": 200, "response_time_ms": 35.2, "response_size": 5120, "query_params": {"page": "2", "api_key": "k"},
                    "ip_address": "203.0.113.9", "user_agent": "backend/1.0"}),
            }
        })
        .collect()
}
