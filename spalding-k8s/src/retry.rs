//! Retry policy of the HTTPS transport: a bounded number of attempts with
//! capped exponential backoff and "full jitter" (each delay is drawn
//! uniformly between zero and the capped exponential value), so parties that
//! lost a partner at the same moment do not retry in lockstep. The jitter
//! source is a small xorshift generator seeded from the operating system;
//! tests use a policy with zero delays.

use std::sync::Mutex;
use std::time::Duration;

/// How often and how patiently a fetch is retried. Only connection errors
/// and 5xx answers are retried; refusals (redirects, limits, bad documents)
/// never are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, at least one.
    pub attempts: u32,
    /// The backoff ceiling before the first retry.
    pub initial_backoff: Duration,
    /// The cap of any single backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn none() -> Self {
        Self {
            attempts: 1,
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
        }
    }

    /// The ceiling of the backoff after failed attempt number `retry`
    /// (0-based): `initial · 2^retry`, capped at `max_backoff`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// The jittered backoff after failed attempt `retry`: uniform in
    /// `[0, ceiling(retry)]`.
    pub fn backoff(&self, retry: u32, jitter: &Jitter) -> Duration {
        let ceiling = self.ceiling(retry);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(jitter.next() % (nanos.saturating_add(1)))
    }
}

/// A tiny, non-cryptographic random source for backoff jitter.
#[derive(Debug)]
pub struct Jitter {
    state: Mutex<u64>,
}

impl Jitter {
    /// Seeded from the operating system (falls back to the clock).
    pub fn from_os() -> Self {
        let mut seed = [0u8; 8];
        let seed = match getrandom::fill(&mut seed) {
            Ok(()) => u64::from_le_bytes(seed),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64),
        };
        Self::seeded(seed)
    }

    /// A reproducible sequence, for tests.
    pub fn seeded(seed: u64) -> Self {
        Self {
            state: Mutex::new(seed | 1),
        }
    }

    /// The next value (xorshift64*).
    pub fn next(&self) -> u64 {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut x = *state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_and_caps() {
        let policy = RetryPolicy {
            attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        assert_eq!(policy.ceiling(0), Duration::from_millis(100));
        assert_eq!(policy.ceiling(1), Duration::from_millis(200));
        assert_eq!(policy.ceiling(3), Duration::from_millis(800));
        assert_eq!(policy.ceiling(4), Duration::from_secs(1));
        assert_eq!(policy.ceiling(200), Duration::from_secs(1));
    }

    #[test]
    fn backoff_stays_within_the_ceiling_and_varies() {
        let policy = RetryPolicy::default();
        let jitter = Jitter::seeded(7);
        let delays: Vec<_> = (0..50).map(|_| policy.backoff(2, &jitter)).collect();
        assert!(delays.iter().all(|d| *d <= policy.ceiling(2)));
        assert!(delays.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn zero_policy_never_waits() {
        assert_eq!(
            RetryPolicy::none().backoff(5, &Jitter::seeded(1)),
            Duration::ZERO
        );
    }
}
