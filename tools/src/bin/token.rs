//! Prints a local HS256 token for `cargo lambda watch` (never for AWS).
//!
//! cargo run -q -p analytics-tools --bin token -- [--sub ID] [--tenant T]
//!     [--role admin|manager]... [--scope analytics/ingest]... [--ttl SECONDS]
//!
//! The secret and claim names come from the same environment variables the
//! functions read (`ANALYTICS_LOCAL_JWT_SECRET`, ...), so the token always
//! matches the local verifier.

use analytics_shared::Config;
use analytics_shared::auth::{LocalToken, mint_local_token};

fn main() {
    let cfg = Config::from_env().unwrap_or_else(|e| fail(&e.to_string()));
    let secret = cfg
        .auth
        .local_jwt_secret
        .as_ref()
        .map(|s| s.expose().to_owned())
        .unwrap_or_else(|| fail("ANALYTICS_LOCAL_JWT_SECRET is not set; `make token` sets the local one, or export it yourself"));
    let mut sub = "demo-admin".to_string();
    let mut tenant = None;
    let mut roles = Vec::new();
    let mut scopes = Vec::new();
    let mut ttl = 3600_i64;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--sub" => sub = value(),
            "--tenant" => tenant = Some(value()),
            "--role" => roles.push(value()),
            "--scope" => scopes.push(value()),
            "--ttl" => ttl = value().parse().unwrap_or_else(|_| fail("--ttl takes seconds")),
            "-h" | "--help" => {
                println!("token [--sub ID] [--tenant T] [--role R]... [--scope S]... [--ttl SECONDS]");
                return;
            }
            other => fail(&format!("unknown flag {other}; see --help")),
        }
    }
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let t = LocalToken { sub: &sub, tenant: tenant.as_deref(), roles: &roles, scopes: &scopes, ttl_seconds: ttl };
    println!("{}", mint_local_token(&t, &cfg.auth, &secret));
}

fn fail(msg: &str) -> ! {
    eprintln!("token: {msg}");
    std::process::exit(2)
}
