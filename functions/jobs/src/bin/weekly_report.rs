//! The weekly report function.

use analytics_shared::jobs::Job;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    jobs::serve(&[Job::WeeklyReport]).await
}
