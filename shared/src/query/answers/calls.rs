//! External calls and their cost: per service, or per service and model,
//! user or endpoint ([`CallKey`]); the costliest `limit` rows first, the
//! rest (and whatever the rollups merged away) summed in one `other` row.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::round2;
use crate::model::snapshot::ser_opt;
use crate::query::period::Piece;
use crate::rollup::{CallKey, ExternalStats, OTHER, Rollup, split_external_key};
use crate::time::day_label;

/// One group of external calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRow {
    pub service: String,
    /// The model, user or endpoint: absent when grouped by service, null
    /// for calls that named none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Option<String>>,
    pub calls: u64,
    /// Calls answered with a status of 400 or more, or with an error message.
    pub errors: u64,
    #[serde(serialize_with = "ser_opt")]
    pub avg_response_time_ms: Option<f64>,
    pub total_cost: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A row of the per-service grouping.
pub type ServiceStats = CallRow;

/// A cost in USD as answered: rounded to a millionth.
pub fn usd(v: f64) -> f64 {
    // `+ 0.0` turns a negative zero (an empty `sum()` of floats) into 0.
    (v * 1e6).round() / 1e6 + 0.0
}

impl CallRow {
    fn new(service: &str, key: Option<Option<&str>>, s: &ExternalStats) -> Self {
        CallRow {
            service: service.to_owned(),
            key: key.map(|k| k.map(str::to_owned)),
            calls: s.calls,
            errors: s.errors,
            avg_response_time_ms: (s.calls > 0).then(|| round2(s.time_ms / s.calls as f64)),
            total_cost: usd(s.cost),
            input_tokens: s.input_tokens,
            output_tokens: s.output_tokens,
        }
    }
}

/// The calls of `r` grouped `by`: the `limit` costliest rows (ties: more
/// calls first, then by name), then one `other` row when more exist.
pub fn call_rows(r: &Rollup, by: CallKey, limit: usize) -> Vec<CallRow> {
    let mut rows: Vec<(&str, Option<&str>, &ExternalStats)> = Vec::new();
    let mut other: Option<ExternalStats> = None;
    for (k, s) in r.external_by(by) {
        let (service, key) = if by == CallKey::Service { (k.as_str(), None) } else { split_external_key(k) };
        if service == OTHER {
            other.get_or_insert_default().merge(s);
        } else {
            rows.push((service, key, s));
        }
    }
    rows.sort_by(|a, b| b.2.cost.total_cmp(&a.2.cost).then(b.2.calls.cmp(&a.2.calls)).then_with(|| (a.0, a.1).cmp(&(b.0, b.1))));
    for (_, _, s) in rows.iter().skip(limit) {
        other.get_or_insert_default().merge(s);
    }
    fn keyed(by: CallKey, k: Option<&str>) -> Option<Option<&str>> {
        (by != CallKey::Service).then_some(k)
    }
    let mut out: Vec<CallRow> = rows.iter().take(limit).map(|(service, key, s)| CallRow::new(service, keyed(by, *key), s)).collect();
    if let Some(s) = other {
        out.push(CallRow::new("other", keyed(by, Some("other")), &s));
    }
    out
}

/// Per service, costliest first, every service listed.
pub fn external_calls(r: &Rollup) -> Vec<ServiceStats> {
    call_rows(r, CallKey::Service, usize::MAX)
}

/// The cost of every call of `r`, summed exactly, then rounded.
pub fn external_cost(r: &Rollup) -> f64 {
    usd(r.external.values().map(|s| s.cost).sum())
}

/// Rows of one grouping, under the name the contract gives them: the
/// per-service grouping keeps its `services` list, the others are `rows`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Grouped {
    #[serde(rename = "services")]
    Services(Vec<CallRow>),
    #[serde(rename = "rows")]
    Rows(Vec<CallRow>),
}

impl Grouped {
    pub fn of(r: &Rollup, by: CallKey, limit: usize) -> Self {
        let rows = call_rows(r, by, limit);
        if by == CallKey::Service { Grouped::Services(rows) } else { Grouped::Rows(rows) }
    }
}

/// One UTC day's calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayCalls {
    pub day: String,
    #[serde(flatten)]
    pub calls: Grouped,
    pub total_cost: f64,
}

/// External calls per UTC day, every day of the range listed.
pub fn calls_by_day(pieces: &[Piece], days: &[DateTime<Utc>], by: CallKey, limit: usize) -> Vec<DayCalls> {
    let mut per_day: BTreeMap<String, Rollup> = days.iter().map(|d| (day_label(*d), Rollup::default())).collect();
    for p in pieces {
        per_day.entry(day_label(p.start)).or_default().merge(&p.rollup);
    }
    per_day.into_iter().map(|(day, r)| DayCalls { day, calls: Grouped::of(&r, by, limit), total_cost: external_cost(&r) }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ExternalCall;
    use crate::rollup::external_key;

    #[test]
    fn costs_round_to_a_millionth_and_zero_is_never_negative() {
        let empty: f64 = std::iter::empty::<f64>().sum();
        assert!(usd(empty).is_sign_positive(), "an empty sum answers 0, not -0");
        assert!(usd(-1e-9).is_sign_positive());
        assert_eq!(usd(0.123_456_789), 0.123_457);
        assert_eq!(serde_json::to_string(&usd(empty)).unwrap(), "0.0");
    }

    fn call(service: &str, model: Option<&str>, cost: f64, tokens: (u64, u64)) -> ExternalCall {
        ExternalCall {
            service: service.into(),
            endpoint: "/v1".into(),
            method: None,
            status_code: Some(200),
            response_time_ms: 10.0,
            cost_estimate: Some(cost),
            request_size: None,
            response_size: None,
            error_message: None,
            model: model.map(str::to_owned),
            input_tokens: Some(tokens.0),
            output_tokens: Some(tokens.1),
        }
    }

    #[test]
    fn rows_are_the_costliest_first_and_the_rest_is_one_other_row() {
        let mut r = Rollup::default();
        for (i, (service, model, cost)) in
            [("gemini", Some("pro"), 3.0), ("gemini", Some("flash"), 1.0), ("openai", Some("gpt"), 2.0), ("gemini", None, 0.5)]
                .into_iter()
                .enumerate()
        {
            let c = call(service, model, cost, (10 * i as u64, 1));
            r.external.entry(service.into()).or_default().add(&c);
            r.external_models.entry(external_key(service, model)).or_default().add(&c);
        }
        let rows = call_rows(&r, CallKey::Model, 2);
        let shown: Vec<(&str, Option<Option<&str>>, f64)> =
            rows.iter().map(|r| (r.service.as_str(), r.key.as_ref().map(|k| k.as_deref()), r.total_cost)).collect();
        assert_eq!(shown, [("gemini", Some(Some("pro")), 3.0), ("openai", Some(Some("gpt")), 2.0), ("other", Some(Some("other")), 1.5)]);
        assert_eq!((rows[2].calls, rows[2].input_tokens, rows[2].output_tokens), (2, 10 + 30, 2));
        let all = call_rows(&r, CallKey::Model, 50);
        assert_eq!(all.len(), 4, "no other row when every row fits");
        assert_eq!(all[3].key, Some(None), "a call without a model is keyed null");
        let v = serde_json::to_value(&all[3]).unwrap();
        assert!(v["key"].is_null() && v.get("key").is_some());
        let services = serde_json::to_value(Grouped::of(&r, CallKey::Service, 50)).unwrap();
        assert_eq!(services["services"][0]["service"], "gemini");
        assert!(services["services"][0].get("key").is_none(), "per service rows carry no key");
        assert_eq!(external_cost(&r), 6.5);
    }
}
