//! What passes the front door: the request log, injected 5xx failures and added latency.

use std::time::Duration;

use serde::Serialize;

/// Status logged for a request whose client went away before the answer (nginx's code).
pub const CLIENT_CLOSED: u16 = 499;

/// One line of the request log. It holds no query string, body or header, so no password,
/// cookie or token can end up in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub status: u16,
}

#[derive(Debug, Default)]
pub struct Traffic {
    log: Vec<RequestRecord>,
    failing: Option<(u16, u32)>,
    latency: Option<Duration>,
    hold: Option<Hold>,
}

/// Latency for one kind of request only, so a test can stop a client between two of its calls.
#[derive(Clone, Debug)]
struct Hold {
    method: String,
    path_suffix: String,
    delay: Duration,
}

impl Traffic {
    /// Logs a request as it arrives; its status stays 499 until `close_entry`.
    pub fn open_entry(&mut self, method: &str, path: &str) -> usize {
        self.log.push(RequestRecord { method: method.to_owned(), path: path.to_owned(), status: CLIENT_CLOSED });
        self.log.len() - 1
    }

    pub fn close_entry(&mut self, entry: usize, status: u16) {
        if let Some(record) = self.log.get_mut(entry) {
            record.status = status;
        }
    }

    /// The next `count` requests answer `status`; replaces any failure still pending.
    pub fn fail_next(&mut self, count: u32, status: u16) {
        self.failing = (count > 0).then_some((status, count));
    }

    /// The status this request must fail with, if a failure is pending; uses one up.
    pub fn take_failure(&mut self) -> Option<u16> {
        let (status, remaining) = self.failing.as_mut()?;
        let status = *status;
        *remaining -= 1;
        if *remaining == 0 {
            self.failing = None;
        }
        Some(status)
    }

    /// `None` or a zero delay removes the latency.
    pub fn set_latency(&mut self, delay: Option<Duration>) {
        self.latency = delay.filter(|delay| !delay.is_zero());
    }

    /// Requests with this method whose path ends with `path_suffix` wait `delay` (on top of
    /// any latency); `None` removes the hold.
    pub fn set_hold(&mut self, hold: Option<(&str, &str, Duration)>) {
        self.hold = hold.map(|(method, path_suffix, delay)| Hold {
            method: method.to_ascii_uppercase(),
            path_suffix: path_suffix.to_owned(),
            delay,
        });
    }

    /// How long this request waits before it is handled.
    pub fn delay_for(&self, method: &str, path: &str) -> Option<Duration> {
        let held = self.hold.as_ref().filter(|hold| hold.method == method && path.ends_with(&hold.path_suffix));
        match (self.latency, held.map(|hold| hold.delay)) {
            (None, None) => None,
            (latency, hold) => Some(latency.unwrap_or_default() + hold.unwrap_or_default()),
        }
    }

    pub fn records(&self) -> Vec<RequestRecord> {
        self.log.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_failure_answers_exactly_that_many_requests() {
        let mut traffic = Traffic::default();
        traffic.fail_next(2, 503);
        let taken: Vec<Option<u16>> = (0..3).map(|_| traffic.take_failure()).collect();
        assert_eq!(taken, vec![Some(503), Some(503), None]);
    }

    #[test]
    fn failing_zero_requests_clears_a_pending_failure() {
        let mut traffic = Traffic::default();
        traffic.fail_next(5, 500);
        traffic.fail_next(0, 500);
        assert_eq!(traffic.take_failure(), None);
    }

    #[test]
    fn a_hold_delays_only_the_requests_it_names() {
        let mut traffic = Traffic::default();
        traffic.set_hold(Some(("post", "/messages", Duration::from_secs(5))));
        assert_eq!(traffic.delay_for("POST", "/api/tickets/7/messages"), Some(Duration::from_secs(5)));
        assert_eq!(traffic.delay_for("POST", "/api/tickets"), None);
        assert_eq!(traffic.delay_for("GET", "/api/tickets/7/messages"), None);
        traffic.set_latency(Some(Duration::from_secs(1)));
        assert_eq!(traffic.delay_for("POST", "/api/tickets"), Some(Duration::from_secs(1)));
        traffic.set_hold(None);
        assert_eq!(traffic.delay_for("POST", "/api/tickets/7/messages"), Some(Duration::from_secs(1)));
    }
}
