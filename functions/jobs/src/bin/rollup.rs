//! The roll-up function: the hourly usage rollup (default), and the daily
//! metrics and dashboard metrics jobs, which its schedules name.

/// An hour's roll-up reads and folds every item of the hour, each a map of
/// small strings: mimalloc cuts the job's own CPU (BENCHMARKS.md,
/// "Scheduled jobs").
#[global_allocator]
static GLOBAL: analytics_shared::alloc::Allocator = analytics_shared::alloc::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    jobs::serve(jobs::jobs_of("rollup")).await
}
