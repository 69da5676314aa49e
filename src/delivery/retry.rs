//! How long a lead, or owed feedback, waits after a failed attempt.

use std::time::Duration;

use crate::config::{RetrySchedule, WorkerConfig};

/// Exponential from `initial`, capped at `max`, with ±20 % jitter so that work failed by one
/// outage does not all return in the same second.
pub fn backoff(initial: Duration, max: Duration, failed_attempts: i64) -> Duration {
    let exponent = u32::try_from(failed_attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    jitter(initial.saturating_mul(2u32.saturating_pow(exponent)).min(max))
}

/// The wait before a lead's next attempt under its source's schedule.
pub fn lead_retry_delay(schedule: RetrySchedule, worker: &WorkerConfig, failed_attempts: i64) -> Duration {
    match schedule {
        RetrySchedule::Exponential => backoff(worker.retry_initial, worker.retry_max, failed_attempts),
        RetrySchedule::Every(interval) => jitter(interval),
    }
}

fn jitter(delay: Duration) -> Duration {
    delay.mul_f64(rand::random_range(0.8..1.2))
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

    fn seconds(schedule: RetrySchedule, attempts: i64) -> f64 {
        lead_retry_delay(schedule, &worker(), attempts).as_secs_f64()
    }

    #[test]
    fn delays_double_with_each_failure_within_the_jitter() {
        for (attempts, base) in [(1, 5.0), (2, 10.0), (3, 20.0), (5, 80.0)] {
            let delay = seconds(RetrySchedule::Exponential, attempts);
            assert!((base * 0.8..=base * 1.2).contains(&delay), "attempt {attempts}: {delay}");
        }
    }

    #[test]
    fn delays_stop_growing_at_the_maximum() {
        let delay = seconds(RetrySchedule::Exponential, 40);
        assert!((480.0..=720.0).contains(&delay), "{delay}");
    }

    #[test]
    fn a_fixed_schedule_waits_its_interval_whatever_the_count() {
        for attempts in [1, 7, 90] {
            let delay = seconds(RetrySchedule::Every(Duration::from_secs(1800)), attempts);
            assert!((1440.0..=2160.0).contains(&delay), "{delay}");
        }
    }
}
