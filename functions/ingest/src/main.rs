//! The ingest Lambda: configuration and clients are built once per
//! execution environment and borrowed by every invocation.

use analytics_shared::{Config, store};
use lambda_http::{Error, run, service_fn};

/// Ingest allocates a few dozen small strings per event; mimalloc does that
/// about twice as fast as the system allocator (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    analytics_shared::telemetry::init();
    analytics_shared::emf::init("ingest");
    let cfg = Config::from_env()?;
    let client = store::dynamodb_client(&cfg.store).await;
    let app = ingest::App::new(cfg, client);
    run(service_fn(|req| async {
        let request_id = analytics_shared::http::request_id(&req);
        let resp = app.handle(req).await;
        analytics_shared::emf::flush(&request_id);
        Ok::<_, Error>(resp)
    }))
    .await
}
