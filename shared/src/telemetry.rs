//! Logging set-up shared by every function.

use std::str::FromStr;

use tracing_subscriber::filter::LevelFilter;

/// Installs the tracing subscriber once per process: JSON lines when Lambda
/// asks for JSON logs (`AWS_LAMBDA_LOG_FORMAT=JSON`, which the template sets),
/// compact text otherwise. `RUST_LOG` is one level (error, warn, info, debug,
/// trace; default info): per-module filters would pull a regex engine into
/// every binary for no use here.
pub fn init() {
    let level = std::env::var("RUST_LOG").ok().and_then(|v| LevelFilter::from_str(v.trim()).ok()).unwrap_or(LevelFilter::INFO);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_max_level(level).with_target(false).without_time();
    let _ = if json { builder.json().with_current_span(false).try_init() } else { builder.with_ansi(false).try_init() };
}
