//! The cleanup function: activity cleanup (default) and metrics cleanup.

use analytics_shared::jobs::Job;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    jobs::serve(&[Job::ActivityCleanup, Job::MetricsCleanup]).await
}
