//! The request budget of one CRM account, shared by every worker that calls it.
//!
//! A budget of N requests per second is N slots. A request holds a slot while it runs and for one
//! second after its response arrived, so the CRM can never see more than N requests in any
//! one-second window, however the network delays or bunches them on the way.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The longest pause a caller waits out in place; a longer one sends the lead back to the queue.
const LONGEST_WAIT_IN_PLACE: Duration = Duration::from_secs(5);
const FIRST_THROTTLE_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_THROTTLE_PAUSE: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct RateLimiter {
    slots: Arc<Semaphore>,
    window: Duration,
    pause: Arc<Mutex<Pause>>,
}

#[derive(Default)]
struct Pause {
    until: Option<Instant>,
    blocked: bool,
    consecutive_throttles: u32,
}

/// Why no slot was handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paused {
    /// The CRM answered 429 recently; calls resume after `retry_in`.
    Throttled { retry_in: Duration },
    /// The CRM blocked the account; nothing is sent before `retry_in` has passed.
    Blocked { retry_in: Duration },
}

/// A slot in use. Dropping it returns the slot one window later.
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    window: Duration,
}

impl RateLimiter {
    /// A fresh budget starts by waiting one window: it cannot know what a previous process,
    /// killed and restarted a moment ago, sent to the same account within the last second.
    pub fn per_second(requests: u32) -> Self {
        let window = Duration::from_secs(1);
        let pause = Pause { until: Some(Instant::now() + window), ..Pause::default() };
        Self { slots: Arc::new(Semaphore::new(requests.max(1) as usize)), window, pause: Arc::new(Mutex::new(pause)) }
    }

    /// Waits for a free slot, and out any short pause.
    ///
    /// # Errors
    /// When the destination is paused for longer than it is worth waiting, or blocked.
    pub async fn acquire(&self) -> Result<Slot, Paused> {
        loop {
            self.wait_out_pause().await?;
            let permit = Arc::clone(&self.slots).acquire_owned().await.expect("the semaphore is never closed");
            // A 429 may have arrived while we queued for the slot: honour it before sending.
            if self.remaining_pause().is_none() {
                return Ok(Slot { permit: Some(permit), window: self.window });
            }
        }
    }

    /// Slows every caller down after a 429: the CRM's own `Retry-After` when it sent one, else
    /// a pause that doubles with each 429 in a row.
    ///
    /// 429s that arrive while a pause is on answer requests sent before it began: they belong to
    /// the same episode and do not lengthen it, or one burst of in-flight requests would push the
    /// pause to its longest.
    pub fn throttle(&self, retry_after: Option<Duration>) -> Duration {
        let mut pause = self.pause.lock().expect("pause lock");
        let now = Instant::now();
        if let Some(until) = pause.until
            && until > now
            && !pause.blocked
            && pause.consecutive_throttles > 0
        {
            let until =
                retry_after.map_or(until, |retry_after| until.max(now + retry_after.min(LONGEST_THROTTLE_PAUSE)));
            pause.until = Some(until);
            return until - now;
        }
        pause.consecutive_throttles += 1;
        let doubling = FIRST_THROTTLE_PAUSE * 2u32.saturating_pow(pause.consecutive_throttles - 1);
        let length = retry_after.unwrap_or(doubling).min(LONGEST_THROTTLE_PAUSE);
        pause.until = Some(Instant::now() + length);
        length
    }

    /// Stops every call to the destination for `length` (the CRM blocked the account).
    pub fn block(&self, length: Duration) {
        let mut pause = self.pause.lock().expect("pause lock");
        pause.until = Some(Instant::now() + length);
        pause.blocked = true;
    }

    /// A successful answer ends the run of 429s.
    pub fn succeeded(&self) {
        self.pause.lock().expect("pause lock").consecutive_throttles = 0;
    }

    async fn wait_out_pause(&self) -> Result<(), Paused> {
        while let Some((retry_in, blocked)) = self.remaining_pause() {
            if blocked {
                return Err(Paused::Blocked { retry_in });
            }
            if retry_in > LONGEST_WAIT_IN_PLACE {
                return Err(Paused::Throttled { retry_in });
            }
            tokio::time::sleep(retry_in).await;
        }
        Ok(())
    }

    /// The pause in force now, if any, without waiting for a slot: for operators to read.
    pub fn paused(&self) -> Option<Paused> {
        self.remaining_pause().map(
            |(retry_in, blocked)| {
                if blocked { Paused::Blocked { retry_in } } else { Paused::Throttled { retry_in } }
            },
        )
    }

    fn remaining_pause(&self) -> Option<(Duration, bool)> {
        let mut pause = self.pause.lock().expect("pause lock");
        let now = Instant::now();
        match pause.until {
            Some(until) if until > now => Some((until - now, pause.blocked)),
            Some(_) => {
                pause.until = None;
                pause.blocked = false;
                None
            }
            None => None,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (Some(permit), window) = (self.permit.take(), self.window) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                tokio::time::sleep(window).await;
                drop(permit);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_new_budget_waits_one_window_before_its_first_request() {
        let start = Instant::now();
        let limiter = RateLimiter::per_second(3);
        drop(limiter.acquire().await.unwrap());
        assert!(start.elapsed() >= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn answers_to_requests_sent_before_a_pause_do_not_lengthen_it() {
        let limiter = RateLimiter::per_second(10);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(limiter.throttle(None), Duration::from_secs(1));
        for _ in 0..19 {
            assert!(limiter.throttle(None) <= Duration::from_secs(1));
        }
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(limiter.throttle(None), Duration::from_secs(2), "a 429 after the pause is a second episode");
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_than_the_budget_is_handed_out_within_one_window() {
        let limiter = RateLimiter::per_second(3);
        tokio::time::advance(Duration::from_secs(1)).await;
        let start = Instant::now();
        let mut handed_out = Vec::new();
        for _ in 0..7 {
            let slot = limiter.acquire().await.unwrap();
            handed_out.push(start.elapsed());
            drop(slot);
        }
        // Slots 4..6 wait for the first three to age out, slot 7 for the next three.
        assert!(handed_out[..3].iter().all(|at| *at < Duration::from_millis(10)));
        assert!(handed_out[3..6].iter().all(|at| *at >= Duration::from_secs(1)));
        assert!(handed_out[6] >= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_delays_callers_and_doubles_while_429s_continue() {
        let limiter = RateLimiter::per_second(10);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(limiter.throttle(None), Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(limiter.throttle(None), Duration::from_secs(2));
        let start = Instant::now();
        drop(limiter.acquire().await.unwrap());
        assert!(start.elapsed() >= Duration::from_secs(2));
        limiter.succeeded();
        assert_eq!(limiter.throttle(Some(Duration::from_millis(300))), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_pause_or_a_block_is_reported_instead_of_waited_out() {
        let limiter = RateLimiter::per_second(10);
        tokio::time::advance(Duration::from_secs(1)).await;
        limiter.throttle(Some(Duration::from_secs(30)));
        assert!(matches!(limiter.acquire().await, Err(Paused::Throttled { .. })));
        let limiter = RateLimiter::per_second(10);
        limiter.block(Duration::from_secs(60));
        assert!(matches!(limiter.acquire().await, Err(Paused::Blocked { .. })));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(limiter.acquire().await.is_ok());
    }
}
