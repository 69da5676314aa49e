//! What the front proxy sees: the request log, the one-second arrival window, faults and latency.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

const WINDOW: Duration = Duration::from_secs(1);
/// Status logged for a request whose client went away before the answer (nginx's code).
pub const CLIENT_CLOSED: u16 = 499;

/// One line of the request log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    pub method: String,
    /// Path with the query string.
    pub path: String,
    pub status: u16,
    /// Milliseconds since the emulator started.
    pub at_ms: u64,
}

/// Counters of `/api/v4` traffic since start or the last reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TrafficStats {
    pub api_requests: u64,
    /// Answers with status 429, whether from the limiter or from an injected fault.
    pub rate_limited: u64,
    /// Most arrivals inside any one-second window, rejected ones included.
    pub max_requests_in_any_second: u64,
    pub requests_per_second_limit: u32,
}

/// How long an injected fault lasts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FaultLimit {
    /// The next `n` matching requests.
    Count(u32),
    /// Every matching request for this long after the fault is injected.
    For(Duration),
    /// Until the faults are cleared.
    UntilCleared,
}

/// A canned failure answered instead of the real response.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub status: u16,
    pub limit: FaultLimit,
    /// Body to send; `None` picks the documented body for the status.
    pub body: Option<String>,
    /// Only paths starting with this; `None` means every `/api/v4` path.
    pub path_prefix: Option<String>,
}

impl Fault {
    pub fn new(status: u16, limit: FaultLimit) -> Self {
        Fault { status, limit, body: None, path_prefix: None }
    }
}

/// A delay applied before matching requests are processed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latency {
    pub delay: Duration,
    /// Only paths starting with this; `None` means every `/api/v4` path.
    pub path_prefix: Option<String>,
    /// Only this HTTP method (case-insensitive); `None` means any.
    pub method: Option<String>,
}

fn prefix_matches(prefix: Option<&str>, path: &str) -> bool {
    path.starts_with(prefix.unwrap_or(crate::API_PREFIX))
}

#[derive(Debug)]
struct ActiveFault {
    fault: Fault,
    until: Option<Instant>,
    remaining: Option<u32>,
}

#[derive(Debug, Default)]
pub struct Traffic {
    log: Vec<(u64, RequestRecord)>,
    next_sequence: u64,
    window: VecDeque<Instant>,
    api_requests: u64,
    rate_limited: u64,
    max_in_any_second: u64,
    faults: Vec<ActiveFault>,
    latency: Option<Latency>,
}

impl Traffic {
    /// Logs a request as it arrives; its status stays 499 until `close_entry`.
    pub fn open_entry(&mut self, method: &str, path: &str, at_ms: u64) -> u64 {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let record = RequestRecord { method: method.to_owned(), path: path.to_owned(), status: CLIENT_CLOSED, at_ms };
        self.log.push((sequence, record));
        sequence
    }

    pub fn close_entry(&mut self, sequence: u64, status: u16) {
        if status == 429 {
            self.rate_limited += 1;
        }
        if let Some((_, record)) = self.log.iter_mut().rev().find(|(seq, _)| *seq == sequence) {
            record.status = status;
        }
    }

    /// Counts an `/api/v4` arrival and says whether it fits the limit. Rejected arrivals
    /// stay in the window: a client that keeps hammering stays limited.
    pub fn admit(&mut self, now: Instant, limit: u32) -> bool {
        self.api_requests += 1;
        while self.window.front().is_some_and(|earliest| now.duration_since(*earliest) >= WINDOW) {
            self.window.pop_front();
        }
        self.window.push_back(now);
        // The window ending at this arrival is the fullest one-second window that can
        // contain it, so the maximum over arrivals is the maximum over all windows.
        let in_window = self.window.len() as u64;
        self.max_in_any_second = self.max_in_any_second.max(in_window);
        in_window <= u64::from(limit)
    }

    pub fn inject(&mut self, fault: Fault, now: Instant) {
        let (until, remaining) = match fault.limit {
            FaultLimit::Count(count) => (None, Some(count)),
            FaultLimit::For(duration) => (Some(now + duration), None),
            FaultLimit::UntilCleared => (None, None),
        };
        self.faults.push(ActiveFault { fault, until, remaining });
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// The fault that answers this request, if any; consumes one use of a counted fault.
    pub fn take_fault(&mut self, path: &str, now: Instant) -> Option<Fault> {
        self.faults.retain(|active| active.until.is_none_or(|until| now < until) && active.remaining != Some(0));
        let active = self.faults.iter_mut().find(|active| prefix_matches(active.fault.path_prefix.as_deref(), path))?;
        if let Some(remaining) = active.remaining.as_mut() {
            *remaining -= 1;
        }
        Some(active.fault.clone())
    }

    pub fn set_latency(&mut self, latency: Option<Latency>) {
        self.latency = latency.filter(|latency| !latency.delay.is_zero());
    }

    pub fn latency_for(&self, method: &str, path: &str) -> Option<Duration> {
        let latency = self.latency.as_ref()?;
        let method_matches = latency.method.as_deref().is_none_or(|wanted| wanted.eq_ignore_ascii_case(method));
        (method_matches && prefix_matches(latency.path_prefix.as_deref(), path)).then_some(latency.delay)
    }

    pub fn records(&self) -> Vec<RequestRecord> {
        self.log.iter().map(|(_, record)| record.clone()).collect()
    }

    pub fn stats(&self, limit: u32) -> TrafficStats {
        TrafficStats {
            api_requests: self.api_requests,
            rate_limited: self.rate_limited,
            max_requests_in_any_second: self.max_in_any_second,
            requests_per_second_limit: limit,
        }
    }

    pub fn reset(&mut self) {
        *self = Traffic { next_sequence: self.next_sequence, ..Traffic::default() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_over_the_limit_within_a_second_are_refused() {
        let mut traffic = Traffic::default();
        let start = Instant::now();
        let verdicts: Vec<bool> = (0..4).map(|i| traffic.admit(start + Duration::from_millis(i * 100), 3)).collect();
        assert_eq!(verdicts, vec![true, true, true, false]);
        assert!(traffic.admit(start + Duration::from_millis(1150), 3));
        assert_eq!(traffic.stats(3).max_requests_in_any_second, 4);
    }

    #[test]
    fn max_in_any_second_counts_windows_not_calendar_seconds() {
        let mut traffic = Traffic::default();
        let start = Instant::now();
        for millis in [0, 900, 950, 1850] {
            traffic.admit(start + Duration::from_millis(millis), 100);
        }
        // 900, 950 and 1850 lie within one second of 900.
        assert_eq!(traffic.stats(100).max_requests_in_any_second, 3);
    }

    #[test]
    fn counted_fault_answers_that_many_requests() {
        let mut traffic = Traffic::default();
        let now = Instant::now();
        traffic.inject(Fault::new(503, FaultLimit::Count(2)), now);
        assert!(traffic.take_fault("/api/v4/leads", now).is_some());
        assert!(traffic.take_fault("/api/v4/leads", now).is_some());
        assert!(traffic.take_fault("/api/v4/leads", now).is_none());
    }

    #[test]
    fn fault_prefix_limits_which_paths_fail() {
        let mut traffic = Traffic::default();
        let now = Instant::now();
        let mut fault = Fault::new(500, FaultLimit::UntilCleared);
        fault.path_prefix = Some("/api/v4/leads".to_owned());
        traffic.inject(fault, now);
        assert!(traffic.take_fault("/api/v4/contacts", now).is_none());
        assert!(traffic.take_fault("/oauth2/access_token", now).is_none());
        assert!(traffic.take_fault("/api/v4/leads/complex", now).is_some());
    }

    #[test]
    fn latency_matches_method_and_prefix() {
        let mut traffic = Traffic::default();
        traffic.set_latency(Some(Latency {
            delay: Duration::from_millis(5),
            path_prefix: Some("/api/v4/leads".to_owned()),
            method: Some("POST".to_owned()),
        }));
        assert!(traffic.latency_for("post", "/api/v4/leads").is_some());
        assert!(traffic.latency_for("GET", "/api/v4/leads").is_none());
        assert!(traffic.latency_for("POST", "/api/v4/contacts").is_none());
    }
}
