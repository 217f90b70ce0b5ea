//! The cleanup function: activity cleanup (default) and metrics cleanup.

/// The cleanup reads what it deletes item by item, each a map of small
/// strings: the allocator the roll-up uses.
#[global_allocator]
static GLOBAL: analytics_shared::alloc::Allocator = analytics_shared::alloc::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    jobs::serve(jobs::jobs_of("cleanup")).await
}
