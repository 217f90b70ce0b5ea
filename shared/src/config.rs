//! Every environment variable the functions read, parsed once at start-up.
//!
//! A value that does not parse stops the function at start-up with a message
//! naming the variable, instead of surfacing later as a confusing runtime error.

use std::time::Duration;

use crate::tenant::TenantId;

/// How long each kind of item is kept (the TTL written on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `ANALYTICS_RETENTION_DAYS`: activity, auth and external_call events.
    pub events_days: u32,
    /// `ANALYTICS_API_LOG_RETENTION_DAYS`: api_request events.
    pub api_log_days: u32,
    /// `ANALYTICS_METRICS_RETENTION_DAYS`: health snapshots.
    pub metrics_days: u32,
    /// `ANALYTICS_ROLLUP_RETENTION_DAYS`: rollups and reports.
    pub rollup_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self { events_days: 90, api_log_days: 30, metrics_days: 30, rollup_days: 800 }
    }
}

/// Identity settings: where roles and tenants come from, and the local verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// `ANALYTICS_LOCAL_JWT_SECRET`: when set, the function verifies HS256
    /// bearer tokens itself (local development only; never set in AWS).
    pub local_jwt_secret: Option<String>,
    /// `ANALYTICS_LOCAL_JWT_ISSUER` (default `analytics-local`).
    pub local_jwt_issuer: String,
    /// `ANALYTICS_ROLES_CLAIM` (default `cognito:groups`).
    pub roles_claim: String,
    /// `ANALYTICS_TENANT_CLAIM` (default `custom:tenant`).
    pub tenant_claim: String,
    /// `ANALYTICS_DEFAULT_TENANT` (default `default`).
    pub default_tenant: TenantId,
    /// `ANALYTICS_REQUIRE_TENANT` (default false; the SAM template sets
    /// true): a token without the tenant claim is refused (403) instead of
    /// belonging to the default tenant.
    pub require_tenant: bool,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("local_jwt_secret", &self.local_jwt_secret.as_ref().map(|_| "[set]"))
            .field("local_jwt_issuer", &self.local_jwt_issuer)
            .field("roles_claim", &self.roles_claim)
            .field("tenant_claim", &self.tenant_claim)
            .field("default_tenant", &self.default_tenant)
            .field("require_tenant", &self.require_tenant)
            .finish()
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            local_jwt_secret: None,
            local_jwt_issuer: "analytics-local".into(),
            roles_claim: "cognito:groups".into(),
            tenant_claim: "custom:tenant".into(),
            default_tenant: TenantId::parse("default").expect("a valid tenant id"),
            require_tenant: false,
        }
    }
}

/// How the DynamoDB adapter writes: table, spreading and retry bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `ANALYTICS_TABLE` (default `analytics`).
    pub table: String,
    /// `ANALYTICS_SHARDS` (default 8): partitions an hour of events is spread over.
    pub shards: u16,
    /// `ANALYTICS_WRITE_CONCURRENCY` (default 32): writes in flight per batch.
    pub write_concurrency: usize,
    /// `ANALYTICS_DDB_MAX_ATTEMPTS` (default 5): attempts per request, first included.
    pub max_attempts: u32,
    /// `ANALYTICS_DDB_DEADLINE_MS` (default 20000): the whole batch's budget,
    /// well inside API Gateway's 30 s integration timeout.
    pub deadline: Duration,
    /// `ANALYTICS_DDB_ATTEMPT_TIMEOUT_MS` (default 3000): one request attempt.
    pub attempt_timeout: Duration,
    /// `ANALYTICS_ROLLUP_MAX_KEYS` (default 1000): distinct endpoints,
    /// users, clients, IPs, services (each kind of breakdown) an hour's or a
    /// day's rollup keeps; the least active are merged into `other`.
    pub rollup_max_keys: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            table: "analytics".into(),
            shards: 8,
            write_concurrency: 32,
            max_attempts: 5,
            deadline: Duration::from_millis(20_000),
            attempt_timeout: Duration::from_millis(3_000),
            rollup_max_keys: 1000,
        }
    }
}

/// Read-side settings.
#[derive(Clone, PartialEq, Eq)]
pub struct QueryConfig {
    /// `ANALYTICS_CACHE_TTL` (default 900): seconds a cached answer lives
    /// (system health: at most 300).
    pub cache_ttl: u32,
    /// `ANALYTICS_CURSOR_SECRET`: the key that signs page cursors. Locally
    /// the JWT secret stands in when it is unset.
    pub cursor_secret: Option<String>,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self { cache_ttl: 900, cursor_secret: None }
    }
}

impl std::fmt::Debug for QueryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryConfig")
            .field("cache_ttl", &self.cache_ttl)
            .field("cursor_secret", &self.cursor_secret.as_ref().map(|_| "[set]"))
            .finish()
    }
}

/// Settings of the scheduled jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct JobsConfig {
    /// `ANALYTICS_EVENT_BUS` (default `analytics`): where alerts and reports go.
    pub event_bus: String,
    /// `ANALYTICS_ALERT_ERROR_RATE` (default 5.0): percent of API requests
    /// failing with a 5xx within 15 minutes above which an alert goes out.
    pub alert_error_rate: f64,
    /// `ANALYTICS_ALERT_MIN_REQUESTS` (default 20): fewer requests than this
    /// in the window never raise an error-rate alert (1 failure out of 2
    /// requests is not an outage).
    pub alert_min_requests: u64,
    /// `ANALYTICS_ALERT_FAILED_LOGINS` (default 20): failed logins from one
    /// IP or for one user within 15 minutes above which an alert goes out.
    pub alert_failed_logins: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { event_bus: "analytics".into(), alert_error_rate: 5.0, alert_min_requests: 20, alert_failed_logins: 20 }
    }
}

/// The whole configuration of a function.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub retention: Retention,
    pub auth: AuthConfig,
    pub store: StoreConfig,
    pub query: QueryConfig,
    pub jobs: JobsConfig,
}

/// A variable that is set but does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}={value:?} is invalid: expected {expected}")]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// Every variable [`Config::from_lookup`] reads (a test keeps this list
/// exact); the template check uses it to catch misspelt variables.
pub const VARIABLES: [&str; 23] = [
    "ANALYTICS_RETENTION_DAYS",
    "ANALYTICS_API_LOG_RETENTION_DAYS",
    "ANALYTICS_METRICS_RETENTION_DAYS",
    "ANALYTICS_ROLLUP_RETENTION_DAYS",
    "ANALYTICS_LOCAL_JWT_SECRET",
    "ANALYTICS_LOCAL_JWT_ISSUER",
    "ANALYTICS_ROLES_CLAIM",
    "ANALYTICS_TENANT_CLAIM",
    "ANALYTICS_DEFAULT_TENANT",
    "ANALYTICS_REQUIRE_TENANT",
    "ANALYTICS_TABLE",
    "ANALYTICS_SHARDS",
    "ANALYTICS_WRITE_CONCURRENCY",
    "ANALYTICS_DDB_MAX_ATTEMPTS",
    "ANALYTICS_DDB_DEADLINE_MS",
    "ANALYTICS_DDB_ATTEMPT_TIMEOUT_MS",
    "ANALYTICS_ROLLUP_MAX_KEYS",
    "ANALYTICS_CACHE_TTL",
    "ANALYTICS_CURSOR_SECRET",
    "ANALYTICS_EVENT_BUS",
    "ANALYTICS_ALERT_ERROR_RATE",
    "ANALYTICS_ALERT_MIN_REQUESTS",
    "ANALYTICS_ALERT_FAILED_LOGINS",
];

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads from any lookup (a map in tests); an empty value counts as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let d = Config::default();
        let days = |var: &'static str, default: u32| parse_num(var, get(var), default, 1, 36_500, "a whole number of days from 1 to 36500");
        let retention = Retention {
            events_days: days("ANALYTICS_RETENTION_DAYS", d.retention.events_days)?,
            api_log_days: days("ANALYTICS_API_LOG_RETENTION_DAYS", d.retention.api_log_days)?,
            metrics_days: days("ANALYTICS_METRICS_RETENTION_DAYS", d.retention.metrics_days)?,
            rollup_days: days("ANALYTICS_ROLLUP_RETENTION_DAYS", d.retention.rollup_days)?,
        };
        let auth = AuthConfig {
            local_jwt_secret: get("ANALYTICS_LOCAL_JWT_SECRET"),
            local_jwt_issuer: get("ANALYTICS_LOCAL_JWT_ISSUER").unwrap_or(d.auth.local_jwt_issuer),
            roles_claim: get("ANALYTICS_ROLES_CLAIM").unwrap_or(d.auth.roles_claim),
            tenant_claim: get("ANALYTICS_TENANT_CLAIM").unwrap_or(d.auth.tenant_claim),
            default_tenant: match get("ANALYTICS_DEFAULT_TENANT") {
                Some(t) => match TenantId::parse(&t) {
                    Some(id) => id,
                    None => return Err(ConfigError { var: "ANALYTICS_DEFAULT_TENANT", value: t, expected: crate::tenant::TENANT_ID_RULE }),
                },
                None => d.auth.default_tenant,
            },
            require_tenant: parse_bool("ANALYTICS_REQUIRE_TENANT", get("ANALYTICS_REQUIRE_TENANT"), d.auth.require_tenant)?,
        };
        let ms = |var: &'static str, default: Duration| {
            parse_num(var, get(var), default.as_millis() as u64, 1, 600_000, "milliseconds from 1 to 600000").map(Duration::from_millis)
        };
        let store = StoreConfig {
            table: get("ANALYTICS_TABLE").unwrap_or(d.store.table),
            shards: parse_num("ANALYTICS_SHARDS", get("ANALYTICS_SHARDS"), d.store.shards, 1, 1000, "a number from 1 to 1000")?,
            write_concurrency: parse_num(
                "ANALYTICS_WRITE_CONCURRENCY",
                get("ANALYTICS_WRITE_CONCURRENCY"),
                d.store.write_concurrency,
                1,
                500,
                "a number from 1 to 500",
            )?,
            max_attempts: parse_num(
                "ANALYTICS_DDB_MAX_ATTEMPTS",
                get("ANALYTICS_DDB_MAX_ATTEMPTS"),
                d.store.max_attempts,
                1,
                20,
                "a number from 1 to 20",
            )?,
            deadline: ms("ANALYTICS_DDB_DEADLINE_MS", d.store.deadline)?,
            attempt_timeout: ms("ANALYTICS_DDB_ATTEMPT_TIMEOUT_MS", d.store.attempt_timeout)?,
            rollup_max_keys: parse_num(
                "ANALYTICS_ROLLUP_MAX_KEYS",
                get("ANALYTICS_ROLLUP_MAX_KEYS"),
                d.store.rollup_max_keys,
                2,
                1_000_000,
                "a number from 2 to 1000000",
            )?,
        };
        let query = QueryConfig {
            cache_ttl: parse_num(
                "ANALYTICS_CACHE_TTL",
                get("ANALYTICS_CACHE_TTL"),
                d.query.cache_ttl,
                1,
                86_400,
                "seconds from 1 to 86400",
            )?,
            cursor_secret: get("ANALYTICS_CURSOR_SECRET"),
        };
        let jobs = JobsConfig {
            event_bus: get("ANALYTICS_EVENT_BUS").unwrap_or(d.jobs.event_bus),
            alert_error_rate: parse_num(
                "ANALYTICS_ALERT_ERROR_RATE",
                get("ANALYTICS_ALERT_ERROR_RATE"),
                d.jobs.alert_error_rate,
                0.0,
                100.0,
                "a percentage from 0 to 100",
            )?,
            alert_min_requests: parse_num(
                "ANALYTICS_ALERT_MIN_REQUESTS",
                get("ANALYTICS_ALERT_MIN_REQUESTS"),
                d.jobs.alert_min_requests,
                1,
                1_000_000_000,
                "a whole number of requests, at least 1",
            )?,
            alert_failed_logins: parse_num(
                "ANALYTICS_ALERT_FAILED_LOGINS",
                get("ANALYTICS_ALERT_FAILED_LOGINS"),
                d.jobs.alert_failed_logins,
                1,
                1_000_000_000,
                "a whole number of failed logins, at least 1",
            )?,
        };
        Ok(Config { retention, auth, store, query, jobs })
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, any case), or the error
/// naming the variable.
pub fn parse_bool(var: &'static str, raw: Option<String>, default: bool) -> Result<bool, ConfigError> {
    match raw.as_deref().map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => Ok(true),
        Some(v) if matches!(v.as_str(), "false" | "0" | "no") => Ok(false),
        Some(_) => Err(ConfigError { var, value: raw.unwrap_or_default(), expected: "true or false" }),
    }
}

/// A number within bounds, or the error naming the variable (the sending
/// client, `analytics-client`, reads its variables by the same rule).
pub fn parse_num<T>(var: &'static str, raw: Option<String>, default: T, min: T, max: T, expected: &'static str) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + Copy,
{
    match raw {
        None => Ok(default),
        Some(v) => match v.trim().parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(n),
            _ => Err(ConfigError { var, value: v, expected }),
        },
    }
}

#[cfg(test)]
mod tests;
