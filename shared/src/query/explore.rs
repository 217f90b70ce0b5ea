//! `GET /events`: which stored events a request asks for. Every filter of
//! the contract, checked once: a filter of one kind needs `kind` to name
//! that kind (else a 400 that says which), values are parsed into the
//! conditions the explorer runs in DynamoDB.

use chrono::{DateTime, Duration, Utc};

use super::Params;
use super::period::DateRange;
use super::zone::Zone;
use crate::config::Retention;
use crate::error::ApiError;
use crate::model::{AuthEventType, EventKind};
use crate::store::explorer::{Cond, Kinds, Value};
use crate::validate::redact::split_endpoint;

/// The parameters `/events` accepts.
pub const EVENT_PARAMS: [&str; 17] = [
    "kind",
    "user_id",
    "date_from",
    "date_to",
    "limit",
    "cursor",
    "ip_address",
    "endpoint",
    "method",
    "status_code",
    "status_class",
    "min_response_time_ms",
    "event_type",
    "success",
    "service",
    "model",
    "action",
];

use EventKind::{Activity, ApiRequest, Auth, ExternalCall};

/// The filters that apply to some kinds only, and those kinds.
const PER_KIND: [(&str, &[EventKind]); 10] = [
    ("endpoint", &[ApiRequest, ExternalCall]),
    ("method", &[ApiRequest, ExternalCall]),
    ("status_code", &[ApiRequest, ExternalCall]),
    ("status_class", &[ApiRequest, ExternalCall]),
    ("min_response_time_ms", &[ApiRequest, ExternalCall]),
    ("event_type", &[Auth]),
    ("success", &[Auth]),
    ("service", &[ExternalCall]),
    ("model", &[ExternalCall]),
    ("action", &[Activity]),
];

/// What an `/events` request selects, the caller's scope aside.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter {
    pub kinds: Kinds,
    /// `action` (activity): chooses the partition rather than filtering.
    pub action: Option<String>,
    pub conds: Vec<Cond>,
    pub range: DateRange,
}

fn kinds_of(kind: Option<EventKind>) -> Kinds {
    let only =
        |k: EventKind| Kinds { activity: k == Activity, api_request: k == ApiRequest, auth: k == Auth, external_call: k == ExternalCall };
    kind.map_or(Kinds::ALL, only)
}

fn kind_list(kinds: &[EventKind]) -> String {
    kinds.iter().map(|k| format!("kind={}", k.as_str())).collect::<Vec<_>>().join(" or ")
}

/// Reads the filters of `/events`. The default range is everything the
/// asked kinds are kept for.
pub fn event_filter(p: &Params, now: DateTime<Utc>, retention: &Retention) -> Result<EventFilter, ApiError> {
    let kind = p.choice(
        "kind",
        &[("activity", Some(Activity)), ("api_request", Some(ApiRequest)), ("auth", Some(Auth)), ("external_call", Some(ExternalCall))],
        None,
    )?;
    for (name, applies) in PER_KIND {
        if p.get(name).is_some() && !kind.is_some_and(|k| applies.contains(&k)) {
            return Err(ApiError::bad_request(format!(
                "`{name}` filters {} events only: add {} to the query",
                applies.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" and "),
                kind_list(applies)
            )));
        }
    }
    let mut conds = Vec::new();
    // Endpoints are stored without their query string: a filter is read the same way.
    let text = |name: &'static str, max: usize| -> Result<Option<Value>, ApiError> {
        Ok(p.text(name, max)?.map(|v| Value::Text(if name == "endpoint" { split_endpoint(v).0 } else { v }.to_owned())))
    };
    for (name, max) in [("ip_address", 64), ("endpoint", 2048), ("service", 64), ("model", 128)] {
        if let Some(v) = text(name, max)? {
            conds.push(Cond::Eq(name, v));
        }
    }
    if let Some(m) = p.get("method") {
        let m = crate::validate::http_method(m)
            .ok_or_else(|| ApiError::bad_request(format!("`method` must be an HTTP method such as GET or POST, not `{m}`")))?;
        conds.push(Cond::Eq("method", Value::Text(m.to_owned())));
    }
    if let Some(code) = p.number::<u16>("status_code", 100..=599, "a whole number from 100 to 599")? {
        conds.push(Cond::Eq("status_code", Value::Number(f64::from(code))));
    }
    let class = p.choice("status_class", &[("1xx", 1), ("2xx", 2), ("3xx", 3), ("4xx", 4), ("5xx", 5)], 0)?;
    if class != 0 {
        let lo = f64::from(class * 100);
        conds.push(Cond::Between("status_code", Value::Number(lo), Value::Number(lo + 99.0)));
    }
    if let Some(ms) = p.number::<f64>("min_response_time_ms", 0.0..=1e12, "a number of milliseconds from 0 to 10^12")? {
        // Stored times finer than FINEST_DECIMAL are 0, and DynamoDB refuses
        // a number as small as 1e-320 in a filter: the bound is read the same way.
        let ms = if ms < crate::validate::limits::FINEST_DECIMAL { 0.0 } else { ms };
        conds.push(Cond::AtLeast("response_time_ms", Value::Number(ms)));
    }
    if let Some(v) = p.get("event_type") {
        let t = AuthEventType::parse(v).ok_or_else(|| {
            let names: Vec<&str> = AuthEventType::ALL.iter().map(|t| t.as_str()).collect();
            ApiError::bad_request(format!("`event_type` must be one of {}, not `{v}`", names.join(", ")))
        })?;
        conds.push(Cond::Eq("event_type", Value::Text(t.as_str().to_owned())));
    }
    if let Some(ok) = p.choice("success", &[("true", Some(true)), ("false", Some(false))], None)? {
        conds.push(Cond::Eq("success", Value::Flag(ok)));
    }
    let action = match p.get("action") {
        Some(a) if !crate::validate::valid_name(a) => {
            return Err(ApiError::bad_request(format!("`action` must be an action name such as generate_report, not `{a}`")));
        }
        a => a.map(str::to_owned),
    };
    let kinds = kinds_of(kind);
    // Everything the asked kinds are kept for, unless a range is given.
    let days = if kind == Some(ApiRequest) { retention.api_log_days } else { retention.events_days.max(retention.api_log_days) };
    let range = match (p.get("date_from"), p.get("date_to")) {
        (None, None) => DateRange { from: now - Duration::days(i64::from(days)), to: now + Duration::milliseconds(1) },
        _ => p.range(now, &Zone::UTC, i64::from(days))?,
    };
    Ok(EventFilter { kinds, action, conds, range })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(pairs: &[(&str, &str)]) -> Result<EventFilter, ApiError> {
        let p = Params::new(pairs.iter().copied(), &EVENT_PARAMS).unwrap();
        event_filter(&p, "2026-12-01T10:00:00Z".parse().unwrap(), &Retention::default())
    }

    #[test]
    fn a_filter_of_one_kind_needs_that_kind() {
        for (name, value, needs) in [
            ("endpoint", "/x", "kind=api_request or kind=external_call"),
            ("status_class", "5xx", "kind=api_request or kind=external_call"),
            ("event_type", "login_failed", "kind=auth"),
            ("success", "false", "kind=auth"),
            ("service", "gemini", "kind=external_call"),
            ("model", "m", "kind=external_call"),
            ("action", "login", "kind=activity"),
        ] {
            let e = filter(&[(name, value)]).unwrap_err();
            assert!(e.message.contains(&format!("`{name}`")) && e.message.contains(needs), "{name}: {}", e.message);
            let e = filter(&[("kind", "activity"), (name, value)]);
            assert_eq!(e.is_ok(), name == "action", "{name} with kind=activity");
        }
        assert!(filter(&[("ip_address", "10.0.0.1")]).is_ok(), "ip_address applies to every kind");
        assert!(filter(&[("kind", "external_call"), ("endpoint", "/v1/generate")]).is_ok());
    }

    #[test]
    fn values_become_conditions_or_a_400_naming_the_parameter() {
        let f = filter(&[("kind", "api_request"), ("method", "post"), ("status_class", "5xx"), ("min_response_time_ms", "250")]).unwrap();
        assert_eq!(f.kinds, Kinds { activity: false, api_request: true, auth: false, external_call: false });
        assert!(f.conds.contains(&Cond::Eq("method", Value::Text("POST".into()))));
        assert!(f.conds.contains(&Cond::Between("status_code", Value::Number(500.0), Value::Number(599.0))));
        assert!(f.conds.contains(&Cond::AtLeast("response_time_ms", Value::Number(250.0))));
        let tiny = filter(&[("kind", "api_request"), ("min_response_time_ms", "1e-320")]).unwrap();
        assert_eq!(tiny.conds, [Cond::AtLeast("response_time_ms", Value::Number(0.0))], "a bound DynamoDB can hold");
        let path = filter(&[("kind", "api_request"), ("endpoint", "/reset?token=x#y")]).unwrap();
        assert_eq!(path.conds, [Cond::Eq("endpoint", Value::Text("/reset".into()))], "endpoints are stored without their query");
        assert_eq!(f.range.to - f.range.from, Duration::days(30) + Duration::milliseconds(1), "api logs are kept 30 days");
        let f = filter(&[("kind", "auth"), ("event_type", "login_failed"), ("success", "false")]).unwrap();
        assert!(f.conds.contains(&Cond::Eq("success", Value::Flag(false))));
        for (kind, name, bad) in [
            ("api_request", "status_code", "99"),
            ("api_request", "status_code", "600"),
            ("api_request", "status_code", "2e2"),
            ("api_request", "status_class", "6xx"),
            ("api_request", "method", "FETCH"),
            ("api_request", "min_response_time_ms", "-1"),
            ("api_request", "min_response_time_ms", "NaN"),
            ("auth", "event_type", "signin"),
            ("auth", "success", "yes"),
            ("activity", "action", "Not An Action"),
            ("nonsense", "kind", "nonsense"),
        ] {
            let pairs: Vec<(&str, &str)> = if name == "kind" { vec![("kind", bad)] } else { vec![("kind", kind), (name, bad)] };
            let e = filter(&pairs).unwrap_err();
            assert!(e.message.contains(&format!("`{name}`")), "{name}={bad}: {}", e.message);
        }
    }
}
