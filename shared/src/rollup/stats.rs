//! The figures a rollup keeps per user, client, endpoint, auth event type
//! and external service; each merges by adding, saturating.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Histogram, add_counts, sat};
use crate::model::{ExternalCall, ReportStatus};

/// A user's activity in the span: counts per action, and (on hours) which
/// quarter hours the user was active in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserActivity {
    pub actions: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "is_zero_u8")]
    pub slots: u8,
}

impl UserActivity {
    pub fn total(&self) -> u64 {
        self.actions.values().fold(0, |a, b| a.saturating_add(*b))
    }
}

fn is_zero_u8(v: &u8) -> bool {
    *v == 0
}

/// Generated reports and their outcomes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportStats {
    /// Every `generate_report` event, with an outcome or not.
    pub generated: u64,
    pub completed: u64,
    pub failed: u64,
    /// Sum and count of `processing_time_ms`, for the average.
    pub processing_ms: u64,
    pub processing_count: u64,
    pub categories: BTreeMap<String, u64>,
    pub impact_high: u64,
    pub impact_medium: u64,
    pub impact_low: u64,
    pub savings: f64,
}

impl ReportStats {
    pub(super) fn add(&mut self, e: &crate::model::Activity) {
        sat(&mut self.generated, 1);
        let Some(r) = &e.report else { return };
        match r.status {
            ReportStatus::Completed => sat(&mut self.completed, 1),
            ReportStatus::Failed => sat(&mut self.failed, 1),
        }
        if let Some(ms) = r.processing_time_ms {
            sat(&mut self.processing_ms, ms);
            sat(&mut self.processing_count, 1);
        }
        for (k, v) in &r.categories {
            sat(self.categories.entry(k.clone()).or_default(), *v);
        }
        if let Some(i) = &r.impact {
            sat(&mut self.impact_high, i.high);
            sat(&mut self.impact_medium, i.medium);
            sat(&mut self.impact_low, i.low);
        }
        self.savings += r.estimated_monthly_savings.unwrap_or(0.0);
    }

    pub fn merge(&mut self, o: &ReportStats) {
        sat(&mut self.generated, o.generated);
        sat(&mut self.completed, o.completed);
        sat(&mut self.failed, o.failed);
        sat(&mut self.processing_ms, o.processing_ms);
        sat(&mut self.processing_count, o.processing_count);
        add_counts(&mut self.categories, &o.categories);
        sat(&mut self.impact_high, o.impact_high);
        sat(&mut self.impact_medium, o.impact_medium);
        sat(&mut self.impact_low, o.impact_low);
        self.savings += o.savings;
    }

    /// Completed out of reports with an outcome, in percent.
    pub fn success_rate(&self) -> Option<f64> {
        let decided = self.completed as f64 + self.failed as f64;
        (decided > 0.0).then(|| (100.0 * self.completed as f64 / decided).clamp(0.0, 100.0))
    }

    pub fn avg_processing_seconds(&self) -> Option<f64> {
        (self.processing_count > 0).then(|| self.processing_ms as f64 / self.processing_count as f64 / 1000.0)
    }
}

/// A client's activity and reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientStats {
    pub activities: u64,
    pub reports: ReportStats,
}

/// Requests of one endpoint, method and status class. Counts are weighted
/// by `1 / sample_rate`, so sampled traffic still adds up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiStats {
    pub count: f64,
    /// Requests actually received (unweighted).
    pub received: u64,
    pub time_ms: f64,
    pub latency: Histogram,
}

impl ApiStats {
    pub fn merge(&mut self, o: &ApiStats) {
        self.count += o.count;
        sat(&mut self.received, o.received);
        self.time_ms += o.time_ms;
        self.latency.merge(&o.latency);
    }
}

/// The key of [`crate::rollup::Rollup::api`]: `"{class digit} {METHOD} {endpoint}"`.
pub fn api_key(status_code: u16, method: &str, endpoint: &str) -> String {
    format!("{} {} {}", status_code / 100, method, endpoint)
}

/// Splits an [`api_key`] into (status class digit, method, endpoint).
pub fn split_api_key(key: &str) -> (u16, &str, &str) {
    let mut parts = key.splitn(3, ' ');
    let class = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    (class, parts.next().unwrap_or(""), parts.next().unwrap_or(""))
}

/// Outcomes of one auth event type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    pub success: u64,
    pub failure: u64,
}

/// Calls to one external service (or one model, user or endpoint of it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExternalStats {
    pub calls: u64,
    pub errors: u64,
    pub time_ms: f64,
    pub cost: f64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub input_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub output_tokens: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl ExternalStats {
    /// Counts one call; an error is a status >= 400 or an error message.
    pub fn add(&mut self, c: &ExternalCall) {
        sat(&mut self.calls, 1);
        if c.status_code.is_some_and(|code| code >= 400) || c.error_message.is_some() {
            sat(&mut self.errors, 1);
        }
        self.time_ms += c.response_time_ms;
        self.cost += c.cost_estimate.unwrap_or(0.0);
        sat(&mut self.input_tokens, c.input_tokens.unwrap_or(0));
        sat(&mut self.output_tokens, c.output_tokens.unwrap_or(0));
    }

    pub fn merge(&mut self, o: &ExternalStats) {
        sat(&mut self.calls, o.calls);
        sat(&mut self.errors, o.errors);
        self.time_ms += o.time_ms;
        self.cost += o.cost;
        sat(&mut self.input_tokens, o.input_tokens);
        sat(&mut self.output_tokens, o.output_tokens);
    }
}

/// What external calls are grouped by, within their service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKey {
    Service,
    Model,
    User,
    Endpoint,
}

impl CallKey {
    pub const ALL: [(&str, CallKey); 4] =
        [("service", CallKey::Service), ("model", CallKey::Model), ("user", CallKey::User), ("endpoint", CallKey::Endpoint)];

    pub fn as_str(self) -> &'static str {
        CallKey::ALL.iter().find(|(_, k)| *k == self).map_or("service", |(name, _)| name)
    }
}

/// The key of a call without a model (or a user): a control character no
/// model, user id or endpoint may hold.
pub const NONE: &str = "\u{1f}none";

/// The key of [`crate::rollup::Rollup::external_models`] (and of users and
/// endpoints): `"{service} {key}"`; a service holds no space.
pub fn external_key(service: &str, key: Option<&str>) -> String {
    format!("{service} {}", key.unwrap_or(NONE))
}

/// Splits an [`external_key`] into the service and the key (`None` for a
/// call without one). The entry merged by `compact` is [`super::OTHER`] in
/// both parts.
pub fn split_external_key(k: &str) -> (&str, Option<&str>) {
    if k == super::OTHER {
        return (super::OTHER, Some(super::OTHER));
    }
    let (service, key) = k.split_once(' ').unwrap_or((k, NONE));
    (service, (key != NONE).then_some(key))
}

/// Counters per quarter hour, for cutting an hour at a local boundary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlotCounters {
    pub activities: u64,
    pub reports: u64,
    pub api_requests: f64,
    pub errors: f64,
}
