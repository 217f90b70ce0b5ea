//! Kind `activity`: something a user did in the product, with the outcome
//! of a generated report.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::checker::{At, Checker, clip};
use super::limits::*;
use super::valid_name;
use crate::event::KNOWN_ACTIONS;
use crate::event::{Activity, EventBody, Impact as ImpactCounts, ReportOutcome, ReportStatus};

/// The fields of kind activity, as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Fields {
    action: Option<String>,
    description: Option<String>,
    client_id: Option<String>,
    report_id: Option<String>,
    report: Option<Report>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    status: Option<String>,
    processing_time_ms: Option<i64>,
    categories: Option<BTreeMap<String, i64>>,
    impact: Option<Impact>,
    estimated_monthly_savings: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Impact {
    high: Option<i64>,
    medium: Option<i64>,
    low: Option<i64>,
}

/// An activity needs its user and an action; a report only comes with
/// `generate_report`.
pub(super) fn check(w: Fields, user_id: Option<&str>, c: &mut Checker) -> EventBody {
    if user_id.is_none() {
        c.fail("user_id", "is required for kind activity");
    }
    let action = c.required("action", w.action, "activity");
    if action.as_deref().is_some_and(|a| !valid_name(a)) {
        c.fail("action", "must match ^[a-z][a-z0-9_]{0,63}$ (e.g. generate_report)");
    }
    let action = action.unwrap_or_default();
    let report = match w.report {
        Some(_) if action != "generate_report" => {
            c.fail("report", "is only allowed with action generate_report");
            None
        }
        Some(r) => report(c, r),
        None => None,
    };
    EventBody::Activity(Activity {
        custom: !KNOWN_ACTIONS.contains(&action.as_str()),
        action,
        description: c.text("description", w.description, MAX_TEXT_CHARS),
        client_id: c.text("client_id", w.client_id, MAX_ID_CHARS),
        report_id: c.text("report_id", w.report_id, MAX_ID_CHARS),
        report,
    })
}

fn report(c: &mut Checker, r: Report) -> Option<ReportOutcome> {
    let status = match r.status.as_deref() {
        Some("completed") => Some(ReportStatus::Completed),
        Some("failed") => Some(ReportStatus::Failed),
        Some(other) => {
            c.fail("report.status", format!("`{}` is not completed or failed", clip(other)));
            None
        }
        None => {
            c.fail("report.status", "is required: completed or failed");
            None
        }
    };
    let processing_time_ms = c.count("report.processing_time_ms", r.processing_time_ms);
    let mut categories = BTreeMap::new();
    for (name, n) in r.categories.unwrap_or_default() {
        let path = At::Key(&At::Field("report.categories"), &name);
        if !valid_name(&name) {
            c.fail(path.to_string(), "category names must match ^[a-z][a-z0-9_]{0,63}$");
        }
        if let Some(n) = c.count(path, Some(n)) {
            categories.insert(name, n);
        }
    }
    if categories.len() > MAX_REPORT_CATEGORIES {
        c.fail("report.categories", format!("has more than {MAX_REPORT_CATEGORIES} categories"));
    }
    let impact = r.impact.map(|i| ImpactCounts {
        high: c.count("report.impact.high", i.high).unwrap_or(0),
        medium: c.count("report.impact.medium", i.medium).unwrap_or(0),
        low: c.count("report.impact.low", i.low).unwrap_or(0),
    });
    let estimated_monthly_savings = c.decimal("report.estimated_monthly_savings", r.estimated_monthly_savings, 0.0, MAX_AMOUNT);
    Some(ReportOutcome { status: status?, processing_time_ms, categories, impact, estimated_monthly_savings })
}
