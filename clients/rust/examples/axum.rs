//! The README's example: request tracking added to an axum service.
//! Run with `ANALYTICS_API_URL` and `ANALYTICS_TOKEN` set.

use analytics_client::{Analytics, AnalyticsLayer, ClientConfig};
use axum::{Router, routing::get};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let analytics = Analytics::builder(ClientConfig::from_env()?)
        .token(|| async { std::env::var("ANALYTICS_TOKEN") }) // asked before each send: tokens may rotate
        .build()?;
    let app = Router::new().route("/items/{id}", get(|| async { "an item" })).layer(AnalyticsLayer::new(analytics.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(async { tokio::signal::ctrl_c().await.unwrap_or(()) }).await?;
    analytics.shutdown().await; // sends what is still buffered
    Ok(())
}
