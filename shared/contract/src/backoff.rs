//! Full-jitter exponential backoff under a deadline: the one retry schedule
//! of the project (the backend's `UnprocessedItems` and bus retries, the
//! senders' resends). The clock is the caller's: any instant type that adds
//! a duration and compares (std's, or tokio's pausable one in tests).

use std::ops::Add;
use std::time::Duration;

/// Backoff state of one retried operation, with its deadline on the
/// caller's clock `I`.
#[derive(Debug)]
pub struct Backoff<I> {
    base: Duration,
    cap: Duration,
    attempt: u32,
    max_attempts: u32,
    deadline: I,
}

impl<I: Copy + PartialOrd + Add<Duration, Output = I>> Backoff<I> {
    /// The backend's schedule (DynamoDB and the bus answer fast): 25 ms
    /// doubling to 2 s.
    pub fn new(max_attempts: u32, deadline: I) -> Self {
        Self::with_schedule(Duration::from_millis(25), Duration::from_secs(2), max_attempts, deadline)
    }

    /// The same full-jitter rule with another base and cap: the sending
    /// clients wait on a remote service rather than DynamoDB, so they start
    /// slower and cap higher, under the same rule.
    pub fn with_schedule(base: Duration, cap: Duration, max_attempts: u32, deadline: I) -> Self {
        Self { base, cap, attempt: 0, max_attempts, deadline }
    }

    /// The next delay at `now`, drawn uniformly from
    /// `[0, min(cap, base * 2^n)]`, or `None` when the attempts are used up
    /// or the delay would end past the deadline.
    pub fn next_delay(&mut self, now: I) -> Option<Duration> {
        self.attempt += 1;
        if self.attempt >= self.max_attempts {
            return None;
        }
        let ceiling = self.base.saturating_mul(1u32 << self.attempt.min(16)).min(self.cap);
        let delay = Duration::from_micros(fastrand::u64(0..=ceiling.as_micros() as u64));
        if now + delay >= self.deadline {
            return None;
        }
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn attempts_are_bounded_and_delays_capped() {
        let now = Instant::now();
        let mut b = Backoff::new(6, now + Duration::from_secs(3600));
        let delays: Vec<_> = std::iter::from_fn(|| b.next_delay(now)).collect();
        assert_eq!(delays.len(), 5, "6 attempts leave 5 waits");
        for (i, d) in delays.iter().enumerate() {
            let ceiling = Duration::from_millis(25) * (1 << (i + 1));
            assert!(*d <= ceiling.min(Duration::from_secs(2)), "{i}: {d:?}");
        }
    }

    #[test]
    fn a_passed_deadline_stops_retrying() {
        let now = Instant::now();
        let mut b = Backoff::new(100, now);
        assert!(b.next_delay(now).is_none());
    }

    #[test]
    fn a_delay_that_would_end_past_the_deadline_is_not_taken() {
        // Any instant type works: here plain milliseconds.
        #[derive(Clone, Copy, PartialEq, PartialOrd, Debug)]
        struct Ms(u128);
        impl Add<Duration> for Ms {
            type Output = Ms;
            fn add(self, d: Duration) -> Ms {
                Ms(self.0 + d.as_millis())
            }
        }
        fastrand::seed(3);
        let mut b = Backoff::with_schedule(Duration::from_secs(1), Duration::from_secs(1), 100, Ms(1_000));
        // A delay of at most 1 s from t = 0 ends before 1 s only when it is shorter.
        let taken = (0..50).filter_map(|_| b.next_delay(Ms(0))).all(|d| d < Duration::from_secs(1));
        assert!(taken);
        assert_eq!(b.next_delay(Ms(1_000)), None, "at the deadline");
    }
}
