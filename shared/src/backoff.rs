//! Full-jitter exponential backoff under a deadline, for the retries the SDK
//! does not do itself (`UnprocessedItems`, `UnprocessedKeys`).

use std::time::Duration;

use tokio::time::Instant;

/// Backoff state of one retried operation.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    max_attempts: u32,
    deadline: Instant,
}

impl Backoff {
    pub fn new(max_attempts: u32, deadline: Instant) -> Self {
        Self::with_schedule(Duration::from_millis(25), Duration::from_secs(2), max_attempts, deadline)
    }

    /// The same full-jitter rule with another base and cap: the sending
    /// client (`analytics-client`) waits on a remote service rather than
    /// DynamoDB, so it starts slower and caps higher, under the same rule.
    pub fn with_schedule(base: Duration, cap: Duration, max_attempts: u32, deadline: Instant) -> Self {
        Self { base, cap, attempt: 0, max_attempts, deadline }
    }

    /// The next delay, drawn uniformly from `[0, min(cap, base * 2^n)]`,
    /// or `None` when the attempts or the deadline are used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.attempt += 1;
        if self.attempt >= self.max_attempts {
            return None;
        }
        let ceiling = self.base.saturating_mul(1u32 << self.attempt.min(16)).min(self.cap);
        let delay = Duration::from_micros(fastrand::u64(0..=ceiling.as_micros() as u64));
        if Instant::now() + delay >= self.deadline {
            return None;
        }
        Some(delay)
    }

    /// Sleeps before the next attempt; false when no attempt is left.
    pub async fn wait(&mut self) -> bool {
        match self.next_delay() {
            Some(d) => {
                tokio::time::sleep(d).await;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn attempts_are_bounded_and_delays_capped() {
        let mut b = Backoff::new(6, Instant::now() + Duration::from_secs(3600));
        let delays: Vec<_> = std::iter::from_fn(|| b.next_delay()).collect();
        assert_eq!(delays.len(), 5, "6 attempts leave 5 waits");
        for (i, d) in delays.iter().enumerate() {
            let ceiling = Duration::from_millis(25) * (1 << (i + 1));
            assert!(*d <= ceiling.min(Duration::from_secs(2)), "{i}: {d:?}");
        }
    }

    #[tokio::test]
    async fn a_passed_deadline_stops_retrying() {
        let mut b = Backoff::new(100, Instant::now());
        assert!(b.next_delay().is_none());
    }
}
