//! Exponential backoff with full jitter for failed loads.

use std::time::Duration;

/// The shortest retry delay. Full jitter can draw zero; a floor keeps a
/// burst of readers from turning one failure into a tight retry loop.
pub(crate) const MIN_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Retry delays: the `n`-th consecutive failure waits a uniformly random
/// time between zero and `min(max, base * 2^(n-1))`, and at least
/// [`MIN_RETRY_DELAY`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    pub(crate) base: Duration,
    pub(crate) max: Duration,
}

impl Backoff {
    /// Returns the upper bound of the delay after `failures` consecutive failures.
    pub(crate) fn ceiling(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(32);
        let factor = 1u64 << exponent;
        let scaled = self
            .base
            .checked_mul(u32::try_from(factor).unwrap_or(u32::MAX))
            .unwrap_or(self.max);
        scaled.min(self.max)
    }

    /// Returns the delay after `failures` consecutive failures, for a uniform draw
    /// `unit` in `[0, 1)`.
    pub(crate) fn delay_with(&self, failures: u32, unit: f64) -> Duration {
        let unit = unit.clamp(0.0, 1.0);
        self.ceiling(failures).mul_f64(unit).max(MIN_RETRY_DELAY)
    }

    /// Returns the delay after `failures` consecutive failures, with a random draw.
    pub(crate) fn delay(&self, failures: u32) -> Duration {
        self.delay_with(failures, fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(300),
    };

    #[test]
    fn ceilings_double_in_seconds() {
        assert_eq!(BACKOFF.ceiling(1), Duration::from_secs(1));
        assert_eq!(BACKOFF.ceiling(2), Duration::from_secs(2));
        assert_eq!(BACKOFF.ceiling(4), Duration::from_secs(8));
        assert_eq!(BACKOFF.ceiling(9), Duration::from_secs(256));
        assert_eq!(BACKOFF.ceiling(10), Duration::from_secs(300));
        assert_eq!(BACKOFF.ceiling(1000), Duration::from_secs(300));
    }

    #[test]
    fn jitter_spans_zero_to_ceiling() {
        assert_eq!(BACKOFF.delay_with(4, 0.5), Duration::from_secs(4));
        assert_eq!(BACKOFF.delay_with(4, 1.0), Duration::from_secs(8));
        assert_eq!(BACKOFF.delay_with(4, 0.0), MIN_RETRY_DELAY);
    }

    #[test]
    fn random_delays_stay_in_bounds() {
        for failures in 1..20 {
            let delay = BACKOFF.delay(failures);
            assert!(delay >= MIN_RETRY_DELAY, "{delay:?}");
            assert!(delay <= BACKOFF.ceiling(failures).max(MIN_RETRY_DELAY), "{delay:?}");
        }
    }
}
