//! `local-api [PORT] [--exit-with-stdin]`: the ingest and query functions
//! behind one plain HTTP server on 127.0.0.1, over a fresh table of their
//! own on DynamoDB Local, for tests written in other languages (the Python
//! client's Django tests, `clients/python/tests/test_django_integration.py`).
//!
//! `POST /api/v1/analytics/events` goes to `ingest::App`, every other
//! request to `query::App` (which answers its own 404s and 405s). Each HTTP
//! request becomes the API Gateway (HTTP API, v2) event the Lambda runtime
//! would hand over, headers (the bearer token among them), query pairs and
//! body included, as `tests/tests/client.rs` does for the Rust client.
//!
//! Settings come from the environment the Makefile exports, as for the
//! functions themselves (`AWS_ENDPOINT_URL_DYNAMODB`, the AWS region and
//! dummy credentials, `ANALYTICS_LOCAL_JWT_SECRET` for the local token
//! verifier, ...); only the table is this process's own. The stack is
//! started when DynamoDB Local does not answer (`tests/stack/start.sh`).
//!
//! Once listening it prints one JSON line on stdout,
//! `{"url": "http://127.0.0.1:PORT", "table": "..."}`, and serves until it
//! is killed, or, with `--exit-with-stdin`, until its standard input closes
//! (so a test runner that dies does not leave it behind). PORT 0 (the
//! default) takes any free port.

use std::io::Write;
use std::sync::Arc;

use analytics_shared::Config;
use analytics_shared::store::table;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use integration_tests::{ApiEvent, body_bytes};

/// The route of the ingest function; everything else is the query function's.
const EVENTS: &str = "/api/v1/analytics/events";

/// Request bodies read before the function sees them: above its own 1 MiB
/// limit, so an oversized batch gets the function's 413, not ours.
const MAX_BODY: usize = 4 << 20;

struct Functions {
    ingest: ingest::App,
    query: query::App,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("local-api: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let mut port: u16 = 0;
    let mut exit_with_stdin = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--exit-with-stdin" => exit_with_stdin = true,
            "-h" | "--help" => {
                println!("usage: local-api [PORT] [--exit-with-stdin]   (PORT 0, the default, takes any free port)");
                return Ok(());
            }
            p => port = p.parse().map_err(|_| format!("expected a port number or --exit-with-stdin, not {p:?}"))?,
        }
    }

    let mut cfg = Config::from_env().map_err(|e| e.to_string())?;
    if cfg.auth.local_jwt_secret.is_none() {
        return Err("ANALYTICS_LOCAL_JWT_SECRET is not set: without it no bearer token can be verified locally \
                    (the Makefile sets local-dev-secret)"
            .into());
    }
    // A table of this process's own, as every integration test has.
    cfg.store.table = format!("local-api-{}", uuid::Uuid::now_v7().simple());
    let client = integration_tests::client(&cfg.store);
    table::create_table(&client, &cfg.store.table).await.map_err(|e| format!("creating table {}: {e:?}", cfg.store.table))?;

    let functions =
        Arc::new(Functions { ingest: ingest::App::new(cfg.clone(), client.clone()), query: query::App::new(cfg.clone(), client)? });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| format!("binding 127.0.0.1:{port}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;

    let ready = serde_json::json!({"url": format!("http://{addr}"), "table": cfg.store.table});
    let mut out = std::io::stdout().lock();
    writeln!(out, "{ready}").and_then(|()| out.flush()).map_err(|e| format!("writing to stdout: {e}"))?;
    drop(out);

    if exit_with_stdin {
        // A blocking read on a thread of its own: EOF (or an error) means
        // whoever started us is gone.
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            std::process::exit(0);
        });
    }

    let app = axum::Router::new().fallback(as_api_gateway).with_state(functions);
    axum::serve(listener, app).await.map_err(|e| format!("serving: {e}"))
}

/// The local stand-in for API Gateway: the HTTP request becomes the event
/// the runtime would deliver, handed to the function its route belongs to;
/// the function's answer goes back as it is.
async fn as_api_gateway(State(functions): State<Arc<Functions>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let Some(method) = method_name(&parts.method) else {
        return (http::StatusCode::METHOD_NOT_ALLOWED, "{}").into_response();
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (http::StatusCode::PAYLOAD_TOO_LARGE, "{}").into_response();
    };
    let path = parts.uri.path();
    let mut ev = ApiEvent::get(path).method(method);
    // As text (isBase64Encoded false): both functions read JSON bodies.
    ev.body = (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned());
    // Decoded pairs: the event carries both the raw query string (encoded
    // again by ApiEvent) and the decoded parameters, as API Gateway does.
    for (k, v) in form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
        ev = ev.query(&k, &v);
    }
    // Every header, names lower-cased (http's are), repeated ones joined
    // with commas as API Gateway v2 joins them.
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        if !values.is_empty() {
            ev.headers.push((name.as_str().to_owned(), values.join(",")));
        }
    }
    let request = ev.into_request();
    let resp = if parts.method == http::Method::POST && path == EVENTS {
        functions.ingest.handle(request).await
    } else {
        functions.query.handle(request).await
    };
    let (parts, body) = resp.into_parts();
    let bytes = body_bytes(body);
    Response::from_parts(parts, Body::from(bytes))
}

/// The methods an HTTP API route can name (`ApiEvent` holds a `&'static str`).
fn method_name(m: &http::Method) -> Option<&'static str> {
    Some(match m.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => return None,
    })
}
