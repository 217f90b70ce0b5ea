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
    let listed: std::collections::BTreeSet<String> = VARIABLES.iter().map(|v| v.name.to_string()).collect();
    assert_eq!(asked.into_inner(), listed);
}

#[test]
fn the_secret_never_shows_in_debug_output() {
    let c = cfg(&[("ANALYTICS_LOCAL_JWT_SECRET", "hunter2"), ("ANALYTICS_CURSOR_SECRET", "hunter3")]).unwrap();
    assert!(!format!("{c:?}").contains("hunter3"));
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn the_table_is_sound_and_its_defaults_are_the_defaults() {
    check_table(VARIABLES).unwrap();
    assert_eq!(Config::default(), cfg(&[]).unwrap());
    // Every bound of every numeric rule fits the field it is read into.
    let mut at_max: Vec<(String, String)> = Vec::new();
    for v in VARIABLES {
        if let Rule::Whole { max, .. } = v.rule {
            at_max.push((v.name.to_string(), max.to_string()));
        }
    }
    Config::from_lookup(|k| at_max.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap();
}

#[test]
fn a_refusal_says_what_the_rule_expects() {
    let e = cfg(&[("ANALYTICS_RETENTION_DAYS", "0")]).unwrap_err();
    assert_eq!(e.expected, "a whole number of days from 1 to 36500");
    let e = cfg(&[("ANALYTICS_ALERT_ERROR_RATE", "NaN")]).unwrap_err();
    assert_eq!(e.expected, "a number from 0 to 100");
    assert_eq!(cfg(&[("ANALYTICS_SHARDS", "1e3")]).unwrap_err().expected, "a whole number from 1 to 1000");
    assert!(check_table(&[TABLE, TABLE]).is_err(), "a name listed twice is caught");
    let bad = Var { default: Some("0"), ..SHARDS };
    assert!(check_table(&[bad]).unwrap_err().contains("fails its own rule"));
}

#[test]
fn a_secret_is_kept_but_never_shown() {
    let c = cfg(&[("ANALYTICS_CURSOR_SECRET", "  k3y  ")]).unwrap();
    let s = c.query.cursor_secret.unwrap();
    assert_eq!(s.expose(), "k3y");
    assert_eq!((format!("{s:?}"), s.to_string()), ("[redacted]".to_string(), "[redacted]".to_string()));
}
