//! A plausible fortnight of a reporting product: users generating reports
//! for clients, API traffic with a few errors, logins (some failing) and
//! paid external calls. Deterministic for a given day.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

const USERS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];
const CLIENTS: [&str; 5] = ["c-acme", "c-globex", "c-initech", "c-umbrella", "c-hooli"];
const ACTIONS: [&str; 8] =
    ["login", "view_dashboard", "create_client", "update_client", "upload_csv", "download_report", "share_report", "logout"];
const ENDPOINTS: [(&str, &str); 6] = [
    ("/api/clients", "GET"),
    ("/api/clients/{id}", "GET"),
    ("/api/reports", "POST"),
    ("/api/reports/{id}", "GET"),
    ("/api/upload", "POST"),
    ("/api/auth/login", "POST"),
];

/// A small deterministic generator (xorshift), so demo data is the same on
/// every run of the same day.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Events for the last `days` days up to `now`, in batches of at most 500.
pub fn batches(now: DateTime<Utc>, days: u32) -> Vec<Value> {
    let today = analytics_shared::time::day_start(now);
    let mut events = Vec::new();
    for d in 0..i64::from(days) {
        let day = today - Duration::days(d);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ day.timestamp() as u64);
        let label = day.format("%Y%m%d");
        let per_day = 120 + rng.below(60);
        for n in 0..per_day {
            let at = day + Duration::seconds(rng.below(86_400) as i64);
            if at >= now {
                continue;
            }
            let id = format!("demo-{label}-{n}");
            let user = *rng.pick(&USERS);
            let ev = match rng.below(10) {
                0..=1 => {
                    let ok = rng.below(10) != 0;
                    let cost = rng.below(15);
                    json!({"event_id": id, "kind": "activity", "occurred_at": ts(at), "user_id": user, "action": "generate_report",
                        "client_id": rng.pick(&CLIENTS), "report_id": format!("r-{label}-{n}"), "description": "Generated a cost review",
                        "ip_address": format!("203.0.113.{}", 1 + rng.below(200)), "user_agent": "Mozilla/5.0 (demo)",
                        "metadata": {"source": "web"},
                        "report": {"status": if ok { "completed" } else { "failed" }, "processing_time_ms": 2000 + rng.below(9000),
                            "categories": {"cost": cost, "security": rng.below(6), "reliability": rng.below(4), "operational_excellence": rng.below(3), "performance": rng.below(5)},
                            "impact": {"high": rng.below(4), "medium": rng.below(10), "low": rng.below(10)},
                            "estimated_monthly_savings": (cost * 125 + rng.below(100)) as f64 + 0.5}})
                }
                2..=3 => json!({"event_id": id, "kind": "activity", "occurred_at": ts(at), "user_id": user, "action": rng.pick(&ACTIONS),
                    "client_id": rng.pick(&CLIENTS), "metadata": {"source": "web"}}),
                4..=7 => {
                    let (endpoint, method) = *rng.pick(&ENDPOINTS);
                    let status = match rng.below(40) {
                        0 => 500,
                        1 => 503,
                        2..=4 => 404,
                        5 => 401,
                        _ => 200,
                    };
                    json!({"event_id": id, "kind": "api_request", "occurred_at": ts(at), "user_id": user, "endpoint": endpoint, "method": method,
                        "status_code": status, "response_time_ms": 20 + rng.below(400), "response_size": 500 + rng.below(20_000),
                        "query_params": {"page": "1", "api_key": "demo-secret"}})
                }
                8 => {
                    let failed = rng.below(4) == 0;
                    json!({"event_id": id, "kind": "auth", "occurred_at": ts(at), "user_id": user,
                        "event_type": if failed { "login_failed" } else { "login" }, "success": !failed,
                        "ip_address": format!("198.51.100.{}", 1 + rng.below(20))})
                }
                _ if rng.below(3) == 0 => json!({"event_id": id, "kind": "external_call", "occurred_at": ts(at), "user_id": user,
                    "service": "brightdata", "endpoint": "/datasets/v3/scrape", "method": "POST",
                    "status_code": if rng.below(25) == 0 { 429 } else { 200 }, "response_time_ms": 300 + rng.below(2500),
                    "cost_estimate": (1 + rng.below(40)) as f64 / 1000.0}),
                _ => {
                    // An LLM call: the model, its tokens, and a cost from Gemini-like per-token prices.
                    let (model, per_in, per_out) =
                        if rng.below(3) == 0 { ("gemini-1.5-pro", 1.25e-6, 5e-6) } else { ("gemini-1.5-flash", 0.075e-6, 0.3e-6) };
                    let (input, output) = (200 + rng.below(4000), 50 + rng.below(800));
                    let cost = ((input as f64 * per_in + output as f64 * per_out) * 1e6).round() / 1e6;
                    json!({"event_id": id, "kind": "external_call", "occurred_at": ts(at), "user_id": user, "service": "gemini",
                        "model": model, "endpoint": format!("/v1beta/models/{model}:generateContent"), "method": "POST",
                        "status_code": if rng.below(25) == 0 { 429 } else { 200 }, "response_time_ms": 300 + rng.below(2500),
                        "input_tokens": input, "output_tokens": output, "cost_estimate": cost})
                }
            };
            events.push(ev);
        }
    }
    events.chunks(500).map(|c| json!({"events": c})).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    /// The seeder stops at the first rejected event, so every demo event
    /// must pass the real pipeline, on any day, without repeated ids.
    fn demo_data_is_deterministic_and_valid() {
        for now in ["2026-11-21T12:00:00Z", "2026-01-01T00:30:00Z", "2026-12-31T23:59:00Z"] {
            let now = chrono::DateTime::parse_from_rfc3339(now).unwrap().to_utc();
            let a = batches(now, 14);
            assert_eq!(a, batches(now, 14));
            let mut kinds = std::collections::BTreeSet::new();
            let mut stored = 0;
            for b in &a {
                let body = serde_json::to_vec(b).unwrap();
                let p = analytics_shared::ingest::prepare(&body, "demo", now, &analytics_shared::config::Retention::default(), 8).unwrap();
                assert!(p.rejected.is_empty(), "a demo event is rejected: {:?}", p.rejected.first().map(|r| &r.message));
                assert_eq!(p.repeated, 0, "demo event ids repeat");
                kinds.extend(b["events"].as_array().unwrap().iter().map(|e| e["kind"].to_string()));
                stored += p.writes.len();
            }
            assert_eq!(kinds.len(), 4, "every kind is in the demo");
            assert!(stored > 1000, "a fortnight of demo data is more than {stored} events");
        }
    }
}
