//! The ingest Lambda: configuration and clients are built once per
//! execution environment and borrowed by every invocation.

use analytics_shared::{Config, store};
use lambda_http::Error;

/// Ingest allocates a few dozen small strings per event; mimalloc does that
/// about twice as fast as the system allocator (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: analytics_shared::alloc::Allocator = analytics_shared::alloc::Allocator;

#[tokio::main]
async fn main() -> Result<(), Error> {
    analytics_shared::telemetry::init();
    let cfg = Config::from_env()?;
    analytics_shared::emf::init("ingest", &cfg.metrics_namespace);
    let client = store::dynamodb_client(&cfg.store).await;
    let app = ingest::App::new(cfg, client);
    analytics_shared::http::serve(|req| app.handle(req)).await
}
