//! Logging set-up shared by every function.

/// Installs the tracing subscriber once per process: JSON lines when Lambda
/// asks for JSON logs (`AWS_LAMBDA_LOG_FORMAT=JSON`, which the template sets),
/// compact text otherwise; the level comes from `RUST_LOG` (default `info`).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).without_time();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let _ = if json { builder.json().with_current_span(false).try_init() } else { builder.try_init() };
}
