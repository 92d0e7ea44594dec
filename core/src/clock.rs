//! Time, injected so that tests drive it.
//!
//! Every deadline in keystead is a monotonic [`tokio::time::Instant`], so a
//! step of the wall clock neither shortens nor extends a lifetime, and a
//! test under `tokio::time::pause` controls all of them. The wall clock is
//! read only to fill in display metadata and to convert absolute expiry
//! times that backends report.

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use tokio::time::Instant;

/// A source of monotonic and wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// Returns the current monotonic time.
    fn now(&self) -> Instant;

    /// Returns the current wall-clock time.
    fn wall(&self) -> SystemTime;

    /// Completes at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The real clock: tokio's monotonic time (which `tokio::time::pause`
/// controls in tests) and the system wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep_until(deadline))
    }
}

/// Converts a monotonic deadline to an estimated wall-clock time, for
/// display only.
pub(crate) fn wall_estimate(clock: &dyn Clock, deadline: Instant) -> SystemTime {
    let now = clock.now();
    let wall = clock.wall();
    if deadline >= now {
        wall.checked_add(deadline - now).unwrap_or(wall)
    } else {
        wall.checked_sub(now - deadline).unwrap_or(wall)
    }
}
