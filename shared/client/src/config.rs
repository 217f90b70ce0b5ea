//! The client's settings, read from the same variable names as the
//! contract where one exists, so one environment configures a service the
//! way it configured the middleware this replaces.
//!
//! A value that does not parse is an error naming the variable at start-up,
//! not a surprise later on the request path.

use std::time::Duration;

pub use analytics_shared::config::ConfigError;
use analytics_shared::config::parse_num as num;

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

/// Every setting of the client. Build it with [`ClientConfig::from_env`] or
/// start from [`ClientConfig::default`] and change fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// `ANALYTICS_ENABLED` (default true): when false nothing is recorded
    /// and the layer only passes requests through.
    pub enabled: bool,
    /// `ANALYTICS_API_URL`: the backend's base URL (the client posts to
    /// `{base}/api/v1/analytics/events`).
    pub api_url: String,
    /// `ANALYTICS_FLUSH_STRATEGY`: `time`, `count` or `hybrid` (default).
    pub flush_strategy: FlushStrategy,
    /// `ANALYTICS_FLUSH_INTERVAL_SECONDS` (default 10).
    pub flush_interval: Duration,
    /// `ANALYTICS_FLUSH_COUNT_THRESHOLD` (default 100).
    pub flush_count_threshold: usize,
    /// `ANALYTICS_FLUSH_PER_INVOCATION`: flush at the end of every request
    /// instead of from a background task. Default: true on Lambda
    /// (`AWS_LAMBDA_FUNCTION_NAME` is set), where a frozen environment never
    /// runs a timer and may be recycled with events still buffered.
    pub flush_per_invocation: bool,
    /// `ANALYTICS_ENABLE_SAMPLING` (default false).
    pub sampling_enabled: bool,
    /// `ANALYTICS_SAMPLING_RATE` (0 < r <= 1, default 0.1): the share of
    /// API requests kept when sampling is on. Responses of 500 or more are
    /// always kept (and sent with a rate of 1, so the counts stay exact).
    pub sampling_rate: f64,
    /// `ANALYTICS_EXCLUDED_PATHS`: comma-separated path prefixes never
    /// recorded (default `/health,/favicon.ico`); a prefix matches whole
    /// segments, so `/health` excludes `/health/db` but not `/healthy`.
    pub excluded_paths: Vec<String>,
    /// `ANALYTICS_BUFFER_CAPACITY` (default 10000): events held while the
    /// backend is unreachable; beyond it the oldest are dropped and counted.
    pub buffer_capacity: usize,
    /// `ANALYTICS_MAX_RETRIES` (default 5): retries of one batch on a 503,
    /// another 5xx, a 429 or a network error before its events go back to
    /// the buffer for the next flush.
    pub max_retries: u32,
    /// `ANALYTICS_TRUSTED_PROXIES` (default 1): how many proxies in front of
    /// the service append to `X-Forwarded-For` (API Gateway or one load
    /// balancer: 1). The client IP is that many hops from the right; 0
    /// ignores the header and uses the socket's peer address.
    pub trusted_proxies: usize,
    /// `ANALYTICS_REQUEST_TIMEOUT_SECONDS` (default 10): one send attempt.
    pub request_timeout: Duration,
    /// First backoff ceiling (full jitter: a delay is drawn from 0 to it).
    pub backoff_base: Duration,
    /// Highest backoff ceiling, also the cap on a server's `Retry-After`.
    pub backoff_cap: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            api_url: "http://localhost:9000".into(),
            flush_strategy: FlushStrategy::Hybrid,
            flush_interval: Duration::from_secs(10),
            flush_count_threshold: 100,
            flush_per_invocation: false,
            sampling_enabled: false,
            sampling_rate: 0.1,
            excluded_paths: vec!["/health".into(), "/favicon.ico".into()],
            buffer_capacity: 10_000,
            max_retries: 5,
            trusted_proxies: 1,
            request_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(20),
        }
    }
}

/// Every variable [`ClientConfig::from_lookup`] reads.
pub const VARIABLES: [&str; 14] = [
    "ANALYTICS_ENABLED",
    "ANALYTICS_API_URL",
    "ANALYTICS_FLUSH_STRATEGY",
    "ANALYTICS_FLUSH_INTERVAL_SECONDS",
    "ANALYTICS_FLUSH_COUNT_THRESHOLD",
    "ANALYTICS_FLUSH_PER_INVOCATION",
    "ANALYTICS_ENABLE_SAMPLING",
    "ANALYTICS_SAMPLING_RATE",
    "ANALYTICS_EXCLUDED_PATHS",
    "ANALYTICS_BUFFER_CAPACITY",
    "ANALYTICS_MAX_RETRIES",
    "ANALYTICS_TRUSTED_PROXIES",
    "ANALYTICS_REQUEST_TIMEOUT_SECONDS",
    "AWS_LAMBDA_FUNCTION_NAME",
];

impl ClientConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads from any lookup (a map in tests); an empty value counts as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let d = ClientConfig::default();
        let flag = |var: &'static str, default: bool| match get(var) {
            None => Ok(default),
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError { var, value: v, expected: "true or false" }),
            },
        };
        let flush_strategy = match get("ANALYTICS_FLUSH_STRATEGY") {
            None => d.flush_strategy,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "time" => FlushStrategy::Time,
                "count" => FlushStrategy::Count,
                "hybrid" => FlushStrategy::Hybrid,
                _ => return Err(ConfigError { var: "ANALYTICS_FLUSH_STRATEGY", value: v, expected: "time, count or hybrid" }),
            },
        };
        let sampling_rate = match get("ANALYTICS_SAMPLING_RATE") {
            None => d.sampling_rate,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(r) if r > 0.0 && r <= 1.0 => r,
                _ => {
                    return Err(ConfigError {
                        var: "ANALYTICS_SAMPLING_RATE",
                        value: v,
                        expected: "a number greater than 0 and at most 1",
                    });
                }
            },
        };
        let excluded_paths = match get("ANALYTICS_EXCLUDED_PATHS") {
            None => d.excluded_paths,
            Some(v) => v.split(',').map(|p| p.trim().trim_end_matches('/')).filter(|p| !p.is_empty()).map(str::to_owned).collect(),
        };
        let on_lambda = get("AWS_LAMBDA_FUNCTION_NAME").is_some();
        Ok(ClientConfig {
            enabled: flag("ANALYTICS_ENABLED", d.enabled)?,
            api_url: get("ANALYTICS_API_URL").map(|u| u.trim().trim_end_matches('/').to_owned()).unwrap_or(d.api_url),
            flush_strategy,
            flush_interval: Duration::from_secs(num(
                "ANALYTICS_FLUSH_INTERVAL_SECONDS",
                get("ANALYTICS_FLUSH_INTERVAL_SECONDS"),
                d.flush_interval.as_secs(),
                1,
                86_400,
                "seconds from 1 to 86400",
            )?),
            flush_count_threshold: num(
                "ANALYTICS_FLUSH_COUNT_THRESHOLD",
                get("ANALYTICS_FLUSH_COUNT_THRESHOLD"),
                d.flush_count_threshold,
                1,
                1_000_000,
                "a number from 1 to 1000000",
            )?,
            flush_per_invocation: flag("ANALYTICS_FLUSH_PER_INVOCATION", on_lambda)?,
            sampling_enabled: flag("ANALYTICS_ENABLE_SAMPLING", d.sampling_enabled)?,
            sampling_rate,
            excluded_paths,
            buffer_capacity: num(
                "ANALYTICS_BUFFER_CAPACITY",
                get("ANALYTICS_BUFFER_CAPACITY"),
                d.buffer_capacity,
                1,
                10_000_000,
                "a number from 1 to 10000000",
            )?,
            max_retries: num("ANALYTICS_MAX_RETRIES", get("ANALYTICS_MAX_RETRIES"), d.max_retries, 0, 20, "a number from 0 to 20")?,
            trusted_proxies: num(
                "ANALYTICS_TRUSTED_PROXIES",
                get("ANALYTICS_TRUSTED_PROXIES"),
                d.trusted_proxies,
                0,
                32,
                "a number from 0 to 32",
            )?,
            request_timeout: Duration::from_secs(num(
                "ANALYTICS_REQUEST_TIMEOUT_SECONDS",
                get("ANALYTICS_REQUEST_TIMEOUT_SECONDS"),
                d.request_timeout.as_secs(),
                1,
                600,
                "seconds from 1 to 600",
            )?),
            backoff_base: d.backoff_base,
            backoff_cap: d.backoff_cap,
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
