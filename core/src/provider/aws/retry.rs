//! Retries of one AWS call: transient failures are retried with
//! exponential backoff and full jitter, as in the AWS SDKs' standard retry
//! mode.

use std::future::Future;
use std::time::Duration;

use tracing::warn;

use crate::error::Error;

/// Upper bound of the first retry's random delay. The AWS SDKs' standard
/// retry mode uses one second, which spreads a fleet's retries after a
/// throttling burst.
pub(crate) const BASE_DELAY: Duration = Duration::from_secs(1);

/// Cap on any retry delay, from the same standard retry mode: past twenty
/// seconds a caller is better served by an error (the cache then keeps
/// serving its last good value).
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(20);

/// How many attempts a call gets and how long to wait between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Attempts per call, the first included; at least 1.
    pub(crate) max_attempts: u32,
    pub(crate) base_delay: Duration,
    pub(crate) max_delay: Duration,
}

impl RetryPolicy {
    /// The standard policy with `max_attempts` attempts.
    pub(crate) fn standard(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            base_delay: BASE_DELAY,
            max_delay: MAX_DELAY,
        }
    }

    /// The delay before attempt `attempt + 1`, after `attempt` attempts
    /// failed: uniformly random in `[0, min(max_delay, base_delay * 2^(attempt-1))]`.
    pub(crate) fn delay_after(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(16);
        let ceiling = self
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        ceiling.mul_f64(fastrand::f64())
    }

    /// Runs `attempt` until it succeeds, fails with a non-transient error,
    /// or has run `max_attempts` times. `attempt` receives the attempt
    /// number, starting at 1. Delays use `tokio::time::sleep`, so a test
    /// with a paused clock does not wait.
    pub(crate) async fn run<T, F, Fut>(&self, operation: &str, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut number = 1;
        loop {
            let error = match attempt(number).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if !error.is_transient() || number >= self.max_attempts {
                return Err(error);
            }

            let delay = self.delay_after(number);
            warn!(
                operation,
                attempt = number,
                max_attempts = self.max_attempts,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "AWS call failed; retrying"
            );
            tokio::time::sleep(delay).await;
            number += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::ErrorClass;

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy::standard(max_attempts)
    }

    #[test]
    fn delays_stay_within_exponential_ceiling() {
        let policy = policy(10);
        for _ in 0..200 {
            assert!(policy.delay_after(1) <= Duration::from_secs(1));
            assert!(policy.delay_after(2) <= Duration::from_secs(2));
            assert!(policy.delay_after(3) <= Duration::from_secs(4));
            assert!(policy.delay_after(9) <= MAX_DELAY);
            assert!(policy.delay_after(40) <= MAX_DELAY);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_use_every_attempt() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result: Result<(), Error> = policy(3)
            .run("GetSecretValue", |_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::new(ErrorClass::Unavailable, "throttled"))
            })
            .await;
        assert_eq!(result.unwrap_err().class(), ErrorClass::Unavailable);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Two delays, at most 1 s and 2 s.
        assert!(started.elapsed() <= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn authoritative_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), Error> = policy(5)
            .run("GetSecretValue", |_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::new(ErrorClass::NotFound, "missing"))
            })
            .await;
        assert_eq!(result.unwrap_err().class(), ErrorClass::NotFound);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn success_after_failures_returns_value() {
        let result = policy(3)
            .run("GetParameter", |attempt| async move {
                if attempt < 3 {
                    Err(Error::new(ErrorClass::Unavailable, "503"))
                } else {
                    Ok(attempt)
                }
            })
            .await;
        assert_eq!(result.unwrap(), 3);
    }

    #[test]
    fn zero_attempts_means_one() {
        assert_eq!(RetryPolicy::standard(0).max_attempts, 1);
    }
}
