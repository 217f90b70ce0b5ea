//! The roll-up function: the hourly usage rollup (default), and the daily
//! metrics and dashboard metrics jobs, which its schedules name.

use analytics_shared::jobs::Job;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    jobs::serve(&[Job::UsageRollup, Job::DailyMetrics, Job::DashboardMetrics]).await
}
