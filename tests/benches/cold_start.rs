//! Start-up time of a function binary: from process spawn to its first
//! request for work (`GET /2018-06-01/runtime/invocation/next`) on a stand-in
//! Lambda Runtime API on loopback. That span is what Lambda reports as Init
//! Duration, minus the sandbox's own set-up.
//!
//! cargo lambda build --release --x86-64 --bin ingest
//! cargo bench -p integration-tests --bench cold_start [-- BINARY...]
//!
//! Without arguments it measures target/lambda/*/bootstrap.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn start_once(binary: &std::path::Path) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t0 = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "cold-start")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "local")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_SESSION_TOKEN", "local")
        .env("ANALYTICS_TABLE", "analytics")
        .env("ANALYTICS_CURSOR_SECRET", "cold-start")
        .env("ANALYTICS_EVENT_BUS", "analytics")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let (stream, _) = listener.accept().expect("the runtime connects");
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    let elapsed = t0.elapsed();
    assert!(line.contains("/runtime/invocation/next"), "unexpected first request: {line}");
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let binaries: Vec<std::path::PathBuf> = if args.is_empty() {
        let dir = integration_tests::root().join("target/lambda");
        std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| Some(e.ok()?.path().join("bootstrap"))).filter(|p| p.exists()).collect())
            .unwrap_or_default()
    } else {
        args.into_iter().map(Into::into).collect()
    };
    if binaries.is_empty() || !std::env::args().any(|a| a == "--bench") {
        println!("cold_start: nothing measured (build with `cargo lambda build --release`, then run with cargo bench)");
        return;
    }
    for bin in binaries {
        start_once(&bin); // page cache warm, as on a reused Lambda host
        let mut runs: Vec<Duration> = (0..30).map(|_| start_once(&bin)).collect();
        runs.sort();
        let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
        println!(
            "{}: {:.1} MB, start to ready: median {:.1} ms, p90 {:.1} ms, min {:.1} ms (30 runs)",
            bin.display(),
            size as f64 / 1e6,
            runs[15].as_secs_f64() * 1e3,
            runs[27].as_secs_f64() * 1e3,
            runs[0].as_secs_f64() * 1e3
        );
    }
}
