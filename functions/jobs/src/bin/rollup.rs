//! The roll-up function: the hourly usage rollup (default), and the daily
//! metrics and dashboard metrics jobs, which its schedules name.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    jobs::serve(jobs::jobs_of("rollup")).await
}
