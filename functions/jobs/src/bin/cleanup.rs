//! The cleanup function: activity cleanup (default) and metrics cleanup.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    jobs::serve(jobs::jobs_of("cleanup")).await
}
