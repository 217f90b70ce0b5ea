//! The query Lambda: configuration and clients are built once per execution
//! environment and borrowed by every invocation.

use analytics_shared::{Config, store};
use lambda_http::{Error, run, service_fn};

/// Answers merge many small maps; mimalloc keeps that cheap (see ingest).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    analytics_shared::telemetry::init();
    let cfg = Config::from_env()?;
    let client = store::dynamodb_client(&cfg.store).await;
    let app = query::App::new(cfg, client)?;
    run(service_fn(|req| async { Ok::<_, Error>(app.handle(req).await) })).await
}
