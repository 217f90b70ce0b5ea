//! The health function: a snapshot every five minutes, and its alerts.

use analytics_shared::jobs::Job;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    jobs::serve(&[Job::HealthSnapshot]).await
}
