//! The health function: a snapshot every five minutes, and its alerts.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    jobs::serve(jobs::jobs_of("health")).await
}
