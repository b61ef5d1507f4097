//! A token bucket: each client message takes a token; tokens refill at a steady rate up to a
//! burst. Time comes from `tokio::time`, so the simulation controls it.

use tokio::time::Instant;

/// Per-connection message budget.
#[derive(Debug)]
pub struct TokenBucket {
    /// Tokens available now, in thousandths of a token (integer arithmetic, no drift).
    milli_tokens: u64,
    /// Most tokens the bucket holds, in thousandths.
    capacity_milli: u64,
    /// Refill rate in thousandths of a token per millisecond (= tokens per second).
    refill_per_ms: u64,
    /// When tokens were last refilled.
    last_refill: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `per_second`.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let capacity_milli = u64::from(burst).saturating_mul(1_000);
        Self {
            milli_tokens: capacity_milli,
            capacity_milli,
            refill_per_ms: u64::from(per_second),
            last_refill: Instant::now(),
        }
    }

    /// Takes one token; false when the client is over its budget.
    pub fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed_ms =
            u64::try_from(now.duration_since(self.last_refill).as_millis()).unwrap_or(u64::MAX);
        if elapsed_ms > 0 {
            let refill = elapsed_ms.saturating_mul(self.refill_per_ms);
            self.milli_tokens = self
                .milli_tokens
                .saturating_add(refill)
                .min(self.capacity_milli);
            self.last_refill = now;
        }
        if self.milli_tokens >= 1_000 {
            self.milli_tokens -= 1_000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Goal: a burst is allowed, the next message is refused, and time refills the bucket.
    #[tokio::test(start_paused = true)]
    async fn burst_then_refill() {
        let mut bucket = TokenBucket::new(10, 3);
        assert!(bucket.try_take() && bucket.try_take() && bucket.try_take());
        assert!(!bucket.try_take());
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(bucket.try_take());
        assert!(!bucket.try_take());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(bucket.try_take() && bucket.try_take() && bucket.try_take());
        assert!(!bucket.try_take(), "refill stops at the burst");
    }
}
