use super::*;
use std::collections::HashMap;

fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn defaults_match_the_contract() {
    let c = cfg(&[]).unwrap();
    assert_eq!(c.retention, Retention { events_days: 90, api_log_days: 30, metrics_days: 30, rollup_days: 800 });
    assert_eq!(c.auth.local_jwt_issuer, "analytics-local");
    assert_eq!(c.auth.roles_claim, "cognito:groups");
    assert_eq!(c.auth.tenant_claim, "custom:tenant");
    assert_eq!(c.auth.default_tenant, "default");
    assert!(c.auth.local_jwt_secret.is_none());
    assert_eq!(c.store.shards, 8);
    assert_eq!((c.jobs.alert_error_rate, c.jobs.alert_failed_logins, c.jobs.event_bus.as_str()), (5.0, 20, "analytics"));
}

#[test]
fn values_are_read_and_empty_means_unset() {
    let c = cfg(&[("ANALYTICS_RETENTION_DAYS", "120"), ("ANALYTICS_API_LOG_RETENTION_DAYS", " 7 "), ("ANALYTICS_TABLE", "")]).unwrap();
    assert_eq!(c.retention.events_days, 120);
    assert_eq!(c.retention.api_log_days, 7);
    assert_eq!(c.store.table, "analytics");
}

#[test]
fn bad_values_name_the_variable() {
    let e = cfg(&[("ANALYTICS_RETENTION_DAYS", "ninety")]).unwrap_err();
    assert_eq!(e.var, "ANALYTICS_RETENTION_DAYS");
    assert!(e.to_string().contains("ANALYTICS_RETENTION_DAYS=\"ninety\""));
    assert_eq!(cfg(&[("ANALYTICS_SHARDS", "0")]).unwrap_err().var, "ANALYTICS_SHARDS");
    assert_eq!(cfg(&[("ANALYTICS_ALERT_ERROR_RATE", "150")]).unwrap_err().var, "ANALYTICS_ALERT_ERROR_RATE");
    assert_eq!(cfg(&[("ANALYTICS_DEFAULT_TENANT", "a#b")]).unwrap_err().var, "ANALYTICS_DEFAULT_TENANT");
    assert_eq!(cfg(&[("ANALYTICS_REQUIRE_TENANT", "maybe")]).unwrap_err().var, "ANALYTICS_REQUIRE_TENANT");
    assert!(cfg(&[("ANALYTICS_REQUIRE_TENANT", "TRUE")]).unwrap().auth.require_tenant);
    assert!(!cfg(&[]).unwrap().auth.require_tenant);
}

#[test]
fn variables_lists_exactly_what_is_read() {
    let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
    Config::from_lookup(|k| {
        asked.borrow_mut().insert(k.to_string());
        None
    })
    .unwrap();
    let listed: std::collections::BTreeSet<String> = VARIABLES.iter().map(|v| v.to_string()).collect();
    assert_eq!(asked.into_inner(), listed);
}

#[test]
fn the_secret_never_shows_in_debug_output() {
    let c = cfg(&[("ANALYTICS_LOCAL_JWT_SECRET", "hunter2"), ("ANALYTICS_CURSOR_SECRET", "hunter3")]).unwrap();
    assert!(!format!("{c:?}").contains("hunter3"));
    assert!(!format!("{c:?}").contains("hunter2"));
}
