//! Batched writes (`BatchWriteItem`, 25 items a call, calls in parallel)
//! with bounded retries of `UnprocessedItems` under a deadline. For
//! overwriting writes of derived data (rollups, reports, seeds); events use
//! conditional puts to tell duplicates apart.

use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};
use futures::StreamExt;
use tokio::time::Instant;

use super::{Item, StoreError};
use crate::backoff::Backoff;

/// Most items in one `BatchWriteItem` call.
pub const BATCH_WRITE_MAX: usize = 25;

/// The one call the batch writer needs, so the retry loop can be unit-tested
/// with a fake; the DynamoDB client implements it.
pub trait BatchWriteApi: Sync {
    /// Writes the requests; returns those left unprocessed.
    fn write(&self, table: &str, requests: Vec<WriteRequest>) -> impl Future<Output = Result<Vec<WriteRequest>, StoreError>> + Send;
}

impl BatchWriteApi for aws_sdk_dynamodb::Client {
    async fn write(&self, table: &str, requests: Vec<WriteRequest>) -> Result<Vec<WriteRequest>, StoreError> {
        let out = self.batch_write_item().request_items(table, requests).send().await.map_err(StoreError::sdk)?;
        Ok(out.unprocessed_items.and_then(|mut m| m.remove(table)).unwrap_or_default())
    }
}

/// Writes every item or fails: unprocessed items are retried with
/// full-jitter backoff until `max_attempts` or the deadline.
pub async fn batch_put<A: BatchWriteApi>(
    api: &A,
    table: &str,
    items: Vec<Item>,
    concurrency: usize,
    max_attempts: u32,
    deadline: Instant,
) -> Result<usize, StoreError> {
    let requests = items
        .into_iter()
        .map(|item| WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item)).build().expect("item set")).build());
    write_all(api, table, requests, concurrency, max_attempts, deadline).await
}

/// Deletes every key (an item holding only `pk` and `sk`) or fails, with
/// the same retries as [`batch_put`].
pub async fn batch_delete<A: BatchWriteApi>(
    api: &A,
    table: &str,
    keys: Vec<Item>,
    concurrency: usize,
    max_attempts: u32,
    deadline: Instant,
) -> Result<usize, StoreError> {
    let requests = keys
        .into_iter()
        .map(|key| WriteRequest::builder().delete_request(DeleteRequest::builder().set_key(Some(key)).build().expect("key set")).build());
    write_all(api, table, requests, concurrency, max_attempts, deadline).await
}

async fn write_all<A: BatchWriteApi>(
    api: &A,
    table: &str,
    requests: impl Iterator<Item = WriteRequest>,
    concurrency: usize,
    max_attempts: u32,
    deadline: Instant,
) -> Result<usize, StoreError> {
    let mut chunks: Vec<Vec<WriteRequest>> = Vec::new();
    let mut it = requests.peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(BATCH_WRITE_MAX).collect());
    }
    let total = chunks.iter().map(Vec::len).sum();
    let results: Vec<Result<(), StoreError>> = futures::stream::iter(chunks)
        .map(|chunk| write_chunk(api, table, chunk, max_attempts, deadline))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(total)
}

async fn write_chunk<A: BatchWriteApi>(
    api: &A,
    table: &str,
    mut chunk: Vec<WriteRequest>,
    max_attempts: u32,
    deadline: Instant,
) -> Result<(), StoreError> {
    let mut backoff = Backoff::new(max_attempts, deadline);
    loop {
        let left = match tokio::time::timeout_at(deadline, api.write(table, chunk)).await {
            Ok(r) => r?,
            Err(_) => return Err(StoreError::unavailable("deadline passed during a batch write")),
        };
        if left.is_empty() {
            return Ok(());
        }
        let n = left.len();
        chunk = left;
        if !crate::backoff::wait(&mut backoff).await {
            return Err(StoreError::unavailable(format!("{n} items still unprocessed after retries")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Leaves the last item of every call unprocessed `stubborn` times in all.
    struct Flaky {
        stubborn: Mutex<usize>,
        written: Mutex<Vec<String>>,
    }

    impl BatchWriteApi for Flaky {
        async fn write(&self, _table: &str, mut requests: Vec<WriteRequest>) -> Result<Vec<WriteRequest>, StoreError> {
            assert!(requests.len() <= BATCH_WRITE_MAX);
            let mut left = Vec::new();
            {
                let mut s = self.stubborn.lock().unwrap();
                if *s > 0 {
                    *s -= 1;
                    left.push(requests.pop().unwrap());
                }
            }
            let mut w = self.written.lock().unwrap();
            for r in requests {
                w.push(r.put_request.unwrap().item["pk"].as_s().unwrap().clone());
            }
            Ok(left)
        }
    }

    fn items(n: usize) -> Vec<Item> {
        (0..n).map(|i| [("pk".to_string(), super::super::s(format!("p{i}")))].into()).collect()
    }

    #[tokio::test]
    async fn unprocessed_items_are_retried_until_written() {
        let api = Flaky { stubborn: Mutex::new(3), written: Mutex::new(vec![]) };
        let n = batch_put(&api, "t", items(60), 4, 10, Instant::now() + Duration::from_secs(30)).await.unwrap();
        assert_eq!(n, 60);
        let mut w = api.written.into_inner().unwrap();
        w.sort();
        w.dedup();
        assert_eq!(w.len(), 60, "every item written exactly once");
    }

    #[tokio::test]
    async fn a_batch_that_never_clears_fails_instead_of_claiming_success() {
        let api = Flaky { stubborn: Mutex::new(usize::MAX), written: Mutex::new(vec![]) };
        let e = batch_put(&api, "t", items(5), 1, 3, Instant::now() + Duration::from_secs(30)).await.unwrap_err();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
    }
}
