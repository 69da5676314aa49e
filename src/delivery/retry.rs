//! How long a lead waits after a failed attempt.

use std::time::Duration;

use crate::config::WorkerConfig;

/// Exponential from `retry_initial`, capped at `retry_max`, with ±20 % jitter so that leads
/// failed by one outage do not all return in the same second.
pub fn backoff(worker: &WorkerConfig, failed_attempts: i64) -> Duration {
    let exponent = u32::try_from(failed_attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let base = worker
        .retry_initial
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(worker.retry_max);
    base.mul_f64(rand::random_range(0.8..1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker() -> WorkerConfig {
        WorkerConfig {
            interval: Duration::from_secs(1),
            batch_size: 1,
            lease: Duration::from_secs(60),
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            blocked_pause: Duration::from_secs(900),
        }
    }

    #[test]
    fn delays_double_with_each_failure_within_the_jitter() {
        for (attempts, base) in [(1, 5.0), (2, 10.0), (3, 20.0), (5, 80.0)] {
            let delay = backoff(&worker(), attempts).as_secs_f64();
            assert!(
                (base * 0.8..=base * 1.2).contains(&delay),
                "attempt {attempts}: {delay}"
            );
        }
    }

    #[test]
    fn delays_stop_growing_at_the_maximum() {
        let delay = backoff(&worker(), 40).as_secs_f64();
        assert!((480.0..=720.0).contains(&delay), "{delay}");
    }
}
