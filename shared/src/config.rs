//! Every environment variable the functions read, parsed once at start-up.
//!
//! Each variable is one entry of [`VARIABLES`] (name, default, rule,
//! meaning); parsing reads those entries, the template check and the
//! README's table follow from the same list. A value that does not parse
//! stops the function at start-up with a message naming the variable,
//! instead of surfacing later as a confusing runtime error.

use std::time::Duration;

use crate::tenant::TenantId;

/// The table machinery and the retention settings are the contract's: the
/// sending client reads its variables with the same code.
pub use analytics_contract::config::{
    API_LOG_RETENTION_DAYS, ConfigError, Env, METRICS_RETENTION_DAYS, RETENTION_DAYS, ROLLUP_RETENTION_DAYS, Retention, Rule, Secret, Var,
    check_table, var, whole,
};

const MILLIS: Rule = whole(1, 600_000, "milliseconds");

pub const TABLE: Var = var("ANALYTICS_TABLE", Some("analytics"), Rule::Text, "the table");
pub const SHARDS: Var = var("ANALYTICS_SHARDS", Some("8"), whole(1, 1000, ""), "partitions per hour of events");
pub const WRITE_CONCURRENCY: Var = var("ANALYTICS_WRITE_CONCURRENCY", Some("32"), whole(1, 500, ""), "writes in flight per batch");
pub const DDB_MAX_ATTEMPTS: Var =
    var("ANALYTICS_DDB_MAX_ATTEMPTS", Some("5"), whole(1, 20, ""), "attempts per DynamoDB request, the first included");
pub const DDB_DEADLINE_MS: Var =
    var("ANALYTICS_DDB_DEADLINE_MS", Some("20000"), MILLIS, "a batch's storage budget, well inside API Gateway's 30 s integration timeout");
pub const DDB_ATTEMPT_TIMEOUT_MS: Var = var("ANALYTICS_DDB_ATTEMPT_TIMEOUT_MS", Some("3000"), MILLIS, "one attempt's budget");
pub const ROLES_CLAIM: Var = var("ANALYTICS_ROLES_CLAIM", Some("cognito:groups"), Rule::Text, "claim holding the roles");
pub const TENANT_CLAIM: Var = var("ANALYTICS_TENANT_CLAIM", Some("custom:tenant"), Rule::Text, "claim holding the tenant");
pub const DEFAULT_TENANT: Var = var(
    "ANALYTICS_DEFAULT_TENANT",
    Some("default"),
    Rule::Custom { expected: crate::tenant::TENANT_ID_RULE, accepts: |s| TenantId::parse(s).is_some() },
    "tenant of tokens without one",
);
pub const REQUIRE_TENANT: Var = var(
    "ANALYTICS_REQUIRE_TENANT",
    Some("false"),
    Rule::Flag,
    "`true` (the template sets it): refuse (403) tokens without the tenant claim instead of putting them in the default \
     tenant; a claim present but not a tenant id (empty, an array, an object, a boolean, a bad character) is a 403 either way",
);
pub const ROLLUP_MAX_KEYS: Var = var(
    "ANALYTICS_ROLLUP_MAX_KEYS",
    Some("1000"),
    whole(2, 1_000_000, ""),
    "distinct keys (endpoints, users, clients, IPs, services) an hour's or a day's rollup keeps per breakdown before \
     merging the least active into `other`",
);
pub const LOCAL_JWT_SECRET: Var =
    var("ANALYTICS_LOCAL_JWT_SECRET", None, Rule::Secret, "local HS256 verification of bearer tokens (never in AWS)");
pub const LOCAL_JWT_ISSUER: Var = var("ANALYTICS_LOCAL_JWT_ISSUER", Some("analytics-local"), Rule::Text, "issuer of local tokens");
pub const CACHE_TTL: Var =
    var("ANALYTICS_CACHE_TTL", Some("900"), whole(1, 86_400, "seconds"), "seconds a query answer is cached (system health: at most 300)");
pub const CURSOR_SECRET: Var = var(
    "ANALYTICS_CURSOR_SECRET",
    None,
    Rule::Secret,
    "key that signs page cursors (the template generates one; locally the JWT secret stands in)",
);
pub const EVENT_BUS: Var = var("ANALYTICS_EVENT_BUS", Some("analytics"), Rule::Text, "the bus alerts and reports are published on");
pub const METRICS_NAMESPACE: Var = var(
    "ANALYTICS_METRICS_NAMESPACE",
    Some("Analytics"),
    Rule::Text,
    "CloudWatch namespace of the functions' metrics (the template sets `Analytics/<stack name>`)",
);
pub const ALERT_ERROR_RATE: Var = var(
    "ANALYTICS_ALERT_ERROR_RATE",
    Some("5.0"),
    Rule::Decimal { min: 0.0, max: 100.0, above_min: false },
    "percent of 5xx responses within 15 minutes that raises an alert",
);
pub const ALERT_MIN_REQUESTS: Var = var(
    "ANALYTICS_ALERT_MIN_REQUESTS",
    Some("20"),
    whole(1, 1_000_000_000, "requests"),
    "fewer requests in the window (to the endpoint, for latency) never raise an error-rate or latency alert (1 failure \
     out of 2 requests is not an outage)",
);
pub const ALERT_FAILED_LOGINS: Var = var(
    "ANALYTICS_ALERT_FAILED_LOGINS",
    Some("20"),
    whole(1, 1_000_000_000, "failed logins"),
    "failed logins from one IP or for one user within 15 minutes over which an alert goes out",
);
pub const ALERT_SILENCE_HOURS: Var = var(
    "ANALYTICS_ALERT_SILENCE_HOURS",
    Some("24"),
    whole(1, 720, "hours"),
    "hours without an activity event after which `no_activity` is raised for a tenant with activity on at least 3 of the \
     previous 7 UTC days; raised again every as many hours while the silence lasts, never twice within 24 hours",
);
pub const ALERT_P95_MS: Var = var(
    "ANALYTICS_ALERT_P95_MS",
    Some("2000"),
    MILLIS,
    "p95 response time of one endpoint and method (all status codes) within 15 minutes over which a `latency_p95` alert \
     goes out, given at least `ANALYTICS_ALERT_MIN_REQUESTS` requests to it",
);
pub const ALERT_DAILY_COST: Var = var(
    "ANALYTICS_ALERT_DAILY_COST",
    None,
    Rule::Decimal { min: 0.0, max: 1_000_000_000.0, above_min: false },
    "USD of external API cost (every service) in one UTC day over which an `external_cost` alert goes out, once that \
     day; unset: no such alert",
);

/// Every variable the functions read, in the README's order (a test keeps
/// this list exact, another the README's table equal to it).
pub const VARIABLES: &[Var] = &[
    TABLE,
    RETENTION_DAYS,
    API_LOG_RETENTION_DAYS,
    METRICS_RETENTION_DAYS,
    ROLLUP_RETENTION_DAYS,
    SHARDS,
    WRITE_CONCURRENCY,
    DDB_MAX_ATTEMPTS,
    DDB_DEADLINE_MS,
    DDB_ATTEMPT_TIMEOUT_MS,
    ROLES_CLAIM,
    TENANT_CLAIM,
    DEFAULT_TENANT,
    REQUIRE_TENANT,
    ROLLUP_MAX_KEYS,
    LOCAL_JWT_SECRET,
    LOCAL_JWT_ISSUER,
    CACHE_TTL,
    CURSOR_SECRET,
    EVENT_BUS,
    METRICS_NAMESPACE,
    ALERT_ERROR_RATE,
    ALERT_MIN_REQUESTS,
    ALERT_FAILED_LOGINS,
    ALERT_SILENCE_HOURS,
    ALERT_P95_MS,
    ALERT_DAILY_COST,
];

/// Whether a function reads this variable (the template check).
pub fn is_variable(name: &str) -> bool {
    VARIABLES.iter().any(|v| v.name == name)
}

/// Identity settings: where roles and tenants come from, and the local verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// [`LOCAL_JWT_SECRET`]: when set, the function verifies HS256 bearer
    /// tokens itself (local development only; never set in AWS).
    pub local_jwt_secret: Option<Secret>,
    /// [`LOCAL_JWT_ISSUER`].
    pub local_jwt_issuer: String,
    /// [`ROLES_CLAIM`].
    pub roles_claim: String,
    /// [`TENANT_CLAIM`].
    pub tenant_claim: String,
    /// [`DEFAULT_TENANT`].
    pub default_tenant: TenantId,
    /// [`REQUIRE_TENANT`].
    pub require_tenant: bool,
}

impl AuthConfig {
    pub fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            local_jwt_secret: env.secret(&LOCAL_JWT_SECRET)?,
            local_jwt_issuer: env.text(&LOCAL_JWT_ISSUER)?,
            roles_claim: env.text(&ROLES_CLAIM)?,
            tenant_claim: env.text(&TENANT_CLAIM)?,
            default_tenant: env.parsed(&DEFAULT_TENANT, TenantId::parse)?,
            require_tenant: env.flag(&REQUIRE_TENANT)?,
        })
    }
}

/// How the DynamoDB adapter writes: table, spreading and retry bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// [`TABLE`].
    pub table: String,
    /// [`SHARDS`]: partitions an hour of events is spread over.
    pub shards: u16,
    /// [`WRITE_CONCURRENCY`].
    pub write_concurrency: usize,
    /// [`DDB_MAX_ATTEMPTS`].
    pub max_attempts: u32,
    /// [`DDB_DEADLINE_MS`].
    pub deadline: Duration,
    /// [`DDB_ATTEMPT_TIMEOUT_MS`].
    pub attempt_timeout: Duration,
    /// [`ROLLUP_MAX_KEYS`].
    pub rollup_max_keys: usize,
}

impl StoreConfig {
    pub fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            table: env.text(&TABLE)?,
            shards: env.number(&SHARDS)?,
            write_concurrency: env.number(&WRITE_CONCURRENCY)?,
            max_attempts: env.number(&DDB_MAX_ATTEMPTS)?,
            deadline: Duration::from_millis(env.number(&DDB_DEADLINE_MS)?),
            attempt_timeout: Duration::from_millis(env.number(&DDB_ATTEMPT_TIMEOUT_MS)?),
            rollup_max_keys: env.number(&ROLLUP_MAX_KEYS)?,
        })
    }
}

/// Read-side settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryConfig {
    /// [`CACHE_TTL`].
    pub cache_ttl: u32,
    /// [`CURSOR_SECRET`].
    pub cursor_secret: Option<Secret>,
}

impl QueryConfig {
    pub fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self { cache_ttl: env.number(&CACHE_TTL)?, cursor_secret: env.secret(&CURSOR_SECRET)? })
    }
}

/// Settings of the scheduled jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct JobsConfig {
    /// [`EVENT_BUS`].
    pub event_bus: String,
    /// [`ALERT_ERROR_RATE`].
    pub alert_error_rate: f64,
    /// [`ALERT_MIN_REQUESTS`].
    pub alert_min_requests: u64,
    /// [`ALERT_FAILED_LOGINS`].
    pub alert_failed_logins: u64,
    /// [`ALERT_SILENCE_HOURS`].
    pub alert_silence_hours: u32,
    /// [`ALERT_P95_MS`].
    pub alert_p95_ms: u64,
    /// [`ALERT_DAILY_COST`] in USD; `None` (unset) turns the alert off.
    pub alert_daily_cost: Option<f64>,
}

impl JobsConfig {
    pub fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            event_bus: env.text(&EVENT_BUS)?,
            alert_error_rate: env.number(&ALERT_ERROR_RATE)?,
            alert_min_requests: env.number(&ALERT_MIN_REQUESTS)?,
            alert_failed_logins: env.number(&ALERT_FAILED_LOGINS)?,
            alert_silence_hours: env.number(&ALERT_SILENCE_HOURS)?,
            alert_p95_ms: env.number(&ALERT_P95_MS)?,
            // Unset reads as "": off; a set value has passed the rule.
            alert_daily_cost: env.parsed(&ALERT_DAILY_COST, |s| if s.is_empty() { Some(None) } else { s.parse().ok().map(Some) })?,
        })
    }
}

/// Every section at its defaults (the table's defaults pass their rules:
/// a test checks it, so these never panic).
macro_rules! defaults_from_the_table {
    ($($t:ty),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                <$t>::read(&Env::defaults()).expect("the variable table's defaults pass its rules")
            }
        }
    )*};
}
defaults_from_the_table!(AuthConfig, StoreConfig, QueryConfig, JobsConfig, Config);

/// The whole configuration of a function.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub retention: Retention,
    pub auth: AuthConfig,
    pub store: StoreConfig,
    pub query: QueryConfig,
    pub jobs: JobsConfig,
    /// [`METRICS_NAMESPACE`].
    pub metrics_namespace: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(&Env::process())
    }

    /// Reads from any lookup (a map in tests); an empty value counts as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(&Env::new(get))
    }

    pub fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Config {
            retention: Retention::read(env)?,
            auth: AuthConfig::read(env)?,
            store: StoreConfig::read(env)?,
            query: QueryConfig::read(env)?,
            jobs: JobsConfig::read(env)?,
            metrics_namespace: env.text(&METRICS_NAMESPACE)?,
        })
    }
}

#[cfg(test)]
mod tests;
