//! The weekly report function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    jobs::serve(jobs::jobs_of("weekly-report")).await
}
