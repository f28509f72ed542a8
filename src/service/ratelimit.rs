//! Rate-limited warnings: a condition that repeats (a full disk, an interface that is down, a
//! source rejecting records) is logged once, then at most once per interval with the number of
//! repeats suppressed meanwhile. Wall-clock time: this paces log lines for the operator, it does
//! not measure events.

use std::time::{Duration, Instant};

/// Default pacing of one repeated warning.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(60);

/// One repeated condition's pacing.
#[derive(Debug)]
pub struct Limiter {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Limiter {
    pub const fn new(every: Duration) -> Limiter {
        Limiter {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Whether to log now; `Some(n)` gives the repeats suppressed since the last line.
    pub fn allow(&mut self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new(DEFAULT_EVERY)
    }
}

/// Logs a warning through `limiter`, adding `suppressed = n` when repeats were held back.
#[macro_export]
macro_rules! warn_limited {
    ($limiter:expr, $($arg:tt)+) => {
        if let Some(n) = $limiter.allow() {
            if n > 0 {
                tracing::warn!(suppressed = n, $($arg)+);
            } else {
                tracing::warn!($($arg)+);
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_held_back_and_counted() {
        let mut l = Limiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(l.allow_at(t0), Some(0));
        for i in 1..=5 {
            assert_eq!(l.allow_at(t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(l.allow_at(t0 + Duration::from_secs(10)), Some(5));
        assert_eq!(l.allow_at(t0 + Duration::from_secs(11)), None);
        assert_eq!(l.allow_at(t0 + Duration::from_secs(25)), Some(1));
    }
}
