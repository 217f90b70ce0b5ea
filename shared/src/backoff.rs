//! The contract's retry schedule on tokio's clock, for the retries the SDK
//! does not do itself (`UnprocessedItems`, `UnprocessedKeys`, the bus).

pub use analytics_contract::backoff::Backoff;
use tokio::time::Instant;

/// Sleeps before the next attempt; false when no attempt is left.
pub async fn wait(backoff: &mut Backoff<Instant>) -> bool {
    match backoff.next_delay(Instant::now()) {
        Some(d) => {
            tokio::time::sleep(d).await;
            true
        }
        None => false,
    }
}
