//! Typed views and controls on `SessionCrm` for in-process tests, mirroring the control API.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::records::{Contact, Organization, Ticket};
use crate::traffic::RequestRecord;
use crate::{SessionCrm, State};

/// `fail_next` injects server failures only: a client must be able to treat what it gets
/// as "ambiguous, the request may or may not have run", which is what a 5xx means.
#[derive(Debug, thiserror::Error)]
#[error("status {0} is not a 5xx status")]
pub struct NotAServerError(pub u16);

/// `refuse_next` injects refusals only (4xx): the request was not carried out, as a client may
/// rely on for a 429 or a 400.
#[derive(Debug, thiserror::Error)]
#[error("status {0} is not a 4xx status")]
pub struct NotAClientError(pub u16);

impl SessionCrm {
    pub fn organizations(&self) -> Vec<Organization> {
        self.shared().lock().records.organizations.values().cloned().collect()
    }

    pub fn contacts(&self) -> Vec<Contact> {
        self.shared().lock().records.contacts.values().cloned().collect()
    }

    /// Tickets with their messages and files, file contents included.
    pub fn tickets(&self) -> Vec<Ticket> {
        self.shared().lock().records.tickets.values().cloned().collect()
    }

    /// Successful logins since start or the last reset.
    pub fn login_count(&self) -> u64 {
        self.shared().lock().login_count
    }

    pub fn failed_login_count(&self) -> u64 {
        self.shared().lock().failed_login_count
    }

    pub fn live_sessions(&self) -> usize {
        self.shared().lock().sessions.live_count(Instant::now())
    }

    /// Every `/api/` request so far; 499 marks one whose client went away.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared().lock().traffic.records()
    }

    /// Every session is gone now: the next request with its cookie gets 401 (or the redirect).
    pub fn expire_sessions(&self) {
        self.shared().lock().sessions.expire_all();
    }

    /// Every session expects a new CSRF token now; the old one gets 419, and the new one
    /// travels in a `Set-Cookie` on the session's next accepted answer.
    pub fn rotate_csrf(&self) {
        self.shared().lock().sessions.rotate_all();
    }

    /// The next `count` `/api/` requests, login included, answer `status` and change nothing.
    ///
    /// # Errors
    /// When `status` is not between 500 and 599.
    pub fn fail_next(&self, count: u32, status: u16) -> Result<(), NotAServerError> {
        if !(500..=599).contains(&status) {
            return Err(NotAServerError(status));
        }
        self.shared().lock().traffic.fail_next(count, status);
        Ok(())
    }

    /// The next `count` `/api/` requests, login included, answer `status` with a JSON `message`
    /// and change nothing; a 429 also says `Retry-After: 1`. Replaces a pending `fail_next`.
    ///
    /// # Errors
    /// When `status` is not between 400 and 499.
    pub fn refuse_next(&self, count: u32, status: u16) -> Result<(), NotAClientError> {
        if !(400..=499).contains(&status) {
            return Err(NotAClientError(status));
        }
        self.shared().lock().traffic.fail_next(count, status);
        Ok(())
    }

    /// Every `/api/` request waits this long before it is handled; zero removes the delay.
    pub fn set_latency(&self, delay: Duration) {
        self.shared().lock().traffic.set_latency(Some(delay));
    }

    /// Requests with `method` whose path ends with `path_suffix` wait `delay` before they are
    /// handled (a client that gives up meanwhile changes nothing); `None` lifts the hold.
    pub fn hold(&self, hold: Option<(&str, &str, Duration)>) {
        self.shared().lock().traffic.set_hold(hold);
    }

    /// A contact already in the CRM, with its organization when `organization` names one.
    pub fn seed_contact(
        &self,
        name: &str,
        email: Option<&str>,
        phone: Option<&str>,
        organization: Option<&str>,
    ) -> Contact {
        let mut state = self.shared().lock();
        let organization_id = organization.map(|name| state.records.add_organization(name.to_owned()).id);
        state.records.add_contact(crate::records::NewContact {
            name: name.to_owned(),
            email: email.map(str::to_owned),
            phone: phone.map(str::to_owned),
            organization_id,
        })
    }

    /// Forgets records, sessions, counters, the request log, failures and latency; ids restart.
    pub fn reset(&self) {
        let mut state = self.shared().lock();
        *state = State::new(&self.shared().config);
    }

    /// Everything the CRM holds, as `GET /_control/state` shows it. File contents, passwords,
    /// session ids and tokens are never part of it.
    pub fn snapshot(&self) -> Value {
        let state = self.shared().lock();
        let records = &state.records;
        json!({
            "organizations": records.organizations.values().collect::<Vec<_>>(),
            "contacts": records.contacts.values().collect::<Vec<_>>(),
            "tickets": records.tickets.values().collect::<Vec<_>>(),
            "login_count": state.login_count,
            "failed_login_count": state.failed_login_count,
            "live_sessions": state.sessions.live_count(Instant::now()),
            "requests": state.traffic.records(),
        })
    }
}
