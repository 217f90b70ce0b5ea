//! The client's settings, read from the same variable names as the
//! contract where one exists, so one environment configures a service the
//! way it configured the middleware this replaces.
//!
//! A value that does not parse is an error naming the variable at start-up,
//! not a surprise later on the request path.

use std::time::Duration;

pub use analytics_contract::config::ConfigError;
use analytics_contract::config::{Env, Rule, Var, var, whole};

/// When buffered events are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushStrategy {
    /// Every `flush_interval`.
    Time,
    /// Whenever `flush_count_threshold` events are waiting.
    Count,
    /// Whichever comes first.
    Hybrid,
}

impl FlushStrategy {
    pub fn by_time(self) -> bool {
        matches!(self, FlushStrategy::Time | FlushStrategy::Hybrid)
    }

    pub fn by_count(self) -> bool {
        matches!(self, FlushStrategy::Count | FlushStrategy::Hybrid)
    }
}

pub const ENABLED: Var =
    var("ANALYTICS_ENABLED", Some("true"), Rule::Flag, "`false`: nothing is recorded, the layer only passes requests on");
pub const API_URL: Var = var(
    "ANALYTICS_API_URL",
    Some("http://localhost:9000"),
    Rule::Text,
    "the backend's base URL; batches go to `{url}/api/v1/analytics/events`",
);
pub const FLUSH_STRATEGY: Var = var(
    "ANALYTICS_FLUSH_STRATEGY",
    Some("hybrid"),
    Rule::OneOf(&["time", "count", "hybrid"]),
    "`time` (every interval), `count` (at the threshold) or `hybrid` (whichever first)",
);
pub const FLUSH_INTERVAL_SECONDS: Var =
    var("ANALYTICS_FLUSH_INTERVAL_SECONDS", Some("10"), whole(1, 86_400, "seconds"), "the time strategy's period");
pub const FLUSH_COUNT_THRESHOLD: Var =
    var("ANALYTICS_FLUSH_COUNT_THRESHOLD", Some("100"), whole(1, 1_000_000, ""), "the count strategy's threshold");
pub const FLUSH_PER_INVOCATION: Var = var(
    "ANALYTICS_FLUSH_PER_INVOCATION",
    None,
    Rule::Flag,
    "flush at the end of each request instead of in the background; unset: `true` on Lambda, `false` elsewhere",
);
pub const ENABLE_SAMPLING: Var = var("ANALYTICS_ENABLE_SAMPLING", Some("false"), Rule::Flag, "sample API requests");
pub const SAMPLING_RATE: Var = var(
    "ANALYTICS_SAMPLING_RATE",
    Some("0.1"),
    Rule::Decimal { min: 0.0, max: 1.0, above_min: true },
    "share kept (0 < r <= 1), sent as `sample_rate` so counts are weighted by 1/r; a 5xx is always kept, at rate 1",
);
pub const EXCLUDED_PATHS: Var = var(
    "ANALYTICS_EXCLUDED_PATHS",
    Some("/health,/favicon.ico"),
    Rule::Text,
    "comma-separated path prefixes never recorded (whole segments: `/health` excludes `/health/db`, not `/healthy`)",
);
pub const BUFFER_CAPACITY: Var = var(
    "ANALYTICS_BUFFER_CAPACITY",
    Some("10000"),
    whole(1, 10_000_000, ""),
    "events held while the backend is unreachable; beyond it the oldest are dropped and counted",
);
pub const MAX_RETRIES: Var = var(
    "ANALYTICS_MAX_RETRIES",
    Some("5"),
    whole(0, 20, ""),
    "retries of a batch (on a 503, another 5xx, a 429 or a network error) before its events wait for the next flush",
);
pub const TRUSTED_PROXIES: Var = var(
    "ANALYTICS_TRUSTED_PROXIES",
    Some("1"),
    whole(0, 32, ""),
    "proxies in front of the service that append to `X-Forwarded-For` (API Gateway, a load balancer): the client IP is \
     that many hops from the right; `0` trusts none and uses the socket's peer address",
);
pub const REQUEST_TIMEOUT_SECONDS: Var = var("ANALYTICS_REQUEST_TIMEOUT_SECONDS", Some("10"), whole(1, 600, "seconds"), "one send attempt");
pub const LAMBDA_FUNCTION_NAME: Var =
    var("AWS_LAMBDA_FUNCTION_NAME", None, Rule::Text, "set by Lambda itself; its presence is how the client knows it runs on Lambda");

/// Every variable [`ClientConfig::from_lookup`] reads, in the README's order.
pub const VARIABLES: &[Var] = &[
    ENABLED,
    API_URL,
    FLUSH_STRATEGY,
    FLUSH_INTERVAL_SECONDS,
    FLUSH_COUNT_THRESHOLD,
    FLUSH_PER_INVOCATION,
    ENABLE_SAMPLING,
    SAMPLING_RATE,
    EXCLUDED_PATHS,
    BUFFER_CAPACITY,
    MAX_RETRIES,
    TRUSTED_PROXIES,
    REQUEST_TIMEOUT_SECONDS,
    LAMBDA_FUNCTION_NAME,
];

/// Every setting of the client. Build it with [`ClientConfig::from_env`] or
/// start from [`ClientConfig::default`] and change fields; each field's
/// variable is named in its doc and described in [`VARIABLES`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// [`ENABLED`].
    pub enabled: bool,
    /// [`API_URL`], without a trailing `/`.
    pub api_url: String,
    /// [`FLUSH_STRATEGY`].
    pub flush_strategy: FlushStrategy,
    /// [`FLUSH_INTERVAL_SECONDS`].
    pub flush_interval: Duration,
    /// [`FLUSH_COUNT_THRESHOLD`].
    pub flush_count_threshold: usize,
    /// [`FLUSH_PER_INVOCATION`]: on Lambda a frozen environment never runs
    /// a timer and may be recycled with events still buffered.
    pub flush_per_invocation: bool,
    /// [`ENABLE_SAMPLING`].
    pub sampling_enabled: bool,
    /// [`SAMPLING_RATE`]: responses of 500 or more are always kept (and
    /// sent with a rate of 1, so the counts stay exact).
    pub sampling_rate: f64,
    /// [`EXCLUDED_PATHS`].
    pub excluded_paths: Vec<String>,
    /// [`BUFFER_CAPACITY`].
    pub buffer_capacity: usize,
    /// [`MAX_RETRIES`].
    pub max_retries: u32,
    /// [`TRUSTED_PROXIES`].
    pub trusted_proxies: usize,
    /// [`REQUEST_TIMEOUT_SECONDS`].
    pub request_timeout: Duration,
    /// First backoff ceiling (full jitter: a delay is drawn from 0 to it).
    pub backoff_base: Duration,
    /// Highest backoff ceiling, also the cap on a server's `Retry-After`.
    pub backoff_cap: Duration,
}

impl Default for ClientConfig {
    /// The table's defaults, off Lambda (a test checks they pass their rules).
    fn default() -> Self {
        Self::read(&Env::defaults()).expect("the variable table's defaults pass its rules")
    }
}

impl ClientConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(&Env::process())
    }

    /// Reads from any lookup (a map in tests); an empty value counts as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(&Env::new(get))
    }

    pub fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let on_lambda = env.is_set(&LAMBDA_FUNCTION_NAME);
        Ok(ClientConfig {
            enabled: env.flag(&ENABLED)?,
            api_url: env.text(&API_URL)?.trim_end_matches('/').to_owned(),
            flush_strategy: env.parsed(&FLUSH_STRATEGY, |s| match s.to_ascii_lowercase().as_str() {
                "time" => Some(FlushStrategy::Time),
                "count" => Some(FlushStrategy::Count),
                "hybrid" => Some(FlushStrategy::Hybrid),
                _ => None,
            })?,
            flush_interval: Duration::from_secs(env.number(&FLUSH_INTERVAL_SECONDS)?),
            flush_count_threshold: env.number(&FLUSH_COUNT_THRESHOLD)?,
            flush_per_invocation: if env.is_set(&FLUSH_PER_INVOCATION) { env.flag(&FLUSH_PER_INVOCATION)? } else { on_lambda },
            sampling_enabled: env.flag(&ENABLE_SAMPLING)?,
            sampling_rate: env.number(&SAMPLING_RATE)?,
            excluded_paths: env
                .text(&EXCLUDED_PATHS)?
                .split(',')
                .map(|p| p.trim().trim_end_matches('/'))
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            buffer_capacity: env.number(&BUFFER_CAPACITY)?,
            max_retries: env.number(&MAX_RETRIES)?,
            trusted_proxies: env.number(&TRUSTED_PROXIES)?,
            request_timeout: Duration::from_secs(env.number(&REQUEST_TIMEOUT_SECONDS)?),
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(20),
        })
    }

    /// True when `path` falls under an excluded prefix (whole segments).
    pub fn is_excluded(&self, path: &str) -> bool {
        self.excluded_paths.iter().any(|p| path.strip_prefix(p.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
    }

    /// The sampling rate applied to API requests (1 when sampling is off).
    pub fn effective_sampling_rate(&self) -> f64 {
        if self.sampling_enabled { self.sampling_rate } else { 1.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<ClientConfig, ConfigError> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ClientConfig::from_lookup(|k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_match_the_issue() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c, ClientConfig::default());
        assert_eq!((c.flush_interval, c.flush_count_threshold), (Duration::from_secs(10), 100));
        assert!(c.enabled && !c.sampling_enabled && !c.flush_per_invocation);
        assert_eq!(c.effective_sampling_rate(), 1.0);
        analytics_contract::config::check_table(VARIABLES).unwrap();
    }

    #[test]
    fn variables_lists_exactly_what_is_read() {
        let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
        ClientConfig::from_lookup(|k| {
            asked.borrow_mut().insert(k.to_string());
            None
        })
        .unwrap();
        let listed: std::collections::BTreeSet<String> = VARIABLES.iter().map(|v| v.name.to_string()).collect();
        assert_eq!(asked.into_inner(), listed);
    }

    #[test]
    fn variables_are_read() {
        let c = cfg(&[
            ("ANALYTICS_ENABLED", "false"),
            ("ANALYTICS_API_URL", "https://api.example.com/"),
            ("ANALYTICS_FLUSH_STRATEGY", "COUNT"),
            ("ANALYTICS_FLUSH_INTERVAL_SECONDS", "3"),
            ("ANALYTICS_FLUSH_COUNT_THRESHOLD", "7"),
            ("ANALYTICS_ENABLE_SAMPLING", "1"),
            ("ANALYTICS_SAMPLING_RATE", "0.25"),
            ("ANALYTICS_EXCLUDED_PATHS", " /internal/ , /static,,"),
            ("ANALYTICS_BUFFER_CAPACITY", "50"),
            ("ANALYTICS_MAX_RETRIES", "0"),
            ("ANALYTICS_TRUSTED_PROXIES", "2"),
        ])
        .unwrap();
        assert!(!c.enabled);
        assert_eq!(c.api_url, "https://api.example.com");
        assert_eq!(c.flush_strategy, FlushStrategy::Count);
        assert_eq!((c.flush_interval, c.flush_count_threshold), (Duration::from_secs(3), 7));
        assert_eq!(c.effective_sampling_rate(), 0.25);
        assert_eq!(c.excluded_paths, vec!["/internal", "/static"]);
        assert_eq!((c.buffer_capacity, c.max_retries, c.trusted_proxies), (50, 0, 2));
    }

    #[test]
    fn lambda_defaults_to_flushing_per_invocation() {
        assert!(cfg(&[("AWS_LAMBDA_FUNCTION_NAME", "fn")]).unwrap().flush_per_invocation);
        assert!(!cfg(&[("AWS_LAMBDA_FUNCTION_NAME", "fn"), ("ANALYTICS_FLUSH_PER_INVOCATION", "false")]).unwrap().flush_per_invocation);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("ANALYTICS_FLUSH_STRATEGY", "sometimes"),
            ("ANALYTICS_SAMPLING_RATE", "0"),
            ("ANALYTICS_SAMPLING_RATE", "1.5"),
            ("ANALYTICS_FLUSH_COUNT_THRESHOLD", "0"),
            ("ANALYTICS_ENABLED", "maybe"),
            ("ANALYTICS_TRUSTED_PROXIES", "-1"),
        ] {
            let e = cfg(&[(var, value)]).unwrap_err();
            assert_eq!((e.var, e.value.as_str()), (var, value));
        }
    }

    #[test]
    fn exclusions_match_whole_segments() {
        let c = ClientConfig { excluded_paths: vec!["/health".into(), "/static".into()], ..ClientConfig::default() };
        assert!(c.is_excluded("/health"));
        assert!(c.is_excluded("/health/db"));
        assert!(c.is_excluded("/static/app.js"));
        assert!(!c.is_excluded("/healthy"));
        assert!(!c.is_excluded("/api/health"));
    }
}
