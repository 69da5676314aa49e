//! Waiting, inside the request that brought a lead, for its CRM outcome: a proxy site's `sync=1`
//! and the number a form's or proxy site's visitor is shown (`wait_for_crm`).

use std::time::Duration;

use chrono::Utc;

use crate::config::WaitForCrm;
use crate::domain::{Lead, LeadId, LeadStatus};
use crate::store::{Store, StoreError};

/// Other nodes' workers settle leads too, so the store is asked rather than told.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// The store stamps an outcome just before its commit and owes the visitor's e-mail when the stamp
/// is later than the lead's answer deadline. The commit becomes visible a moment after the stamp,
/// so the last poll of a `wait_for_crm` answer starts this long after the deadline: an outcome
/// stamped by the deadline is then seen, and the one stamped later is e-mailed (and perhaps shown
/// too, which does no harm). The visitor gets neither only when a commit takes longer than this
/// (a database stalled that long) or, with several nodes, when their clocks are further apart.
const COMMIT_ALLOWANCE: Duration = Duration::from_millis(250);

/// How long a request waits for its lead's outcome.
#[derive(Debug, Clone, Copy, Default)]
pub struct Patience {
    /// `sync=1`'s `sync_timeout`, from now. A failed attempt ends the wait at once.
    pub sync: Option<Duration>,
    /// `wait_for_crm`, from the lead's arrival. Until then a failed attempt does not end the wait:
    /// a retry may still settle the lead in time, and an outcome in time is never e-mailed.
    pub visitor: Option<Duration>,
}

/// What the request learnt of its lead.
#[derive(Debug)]
pub enum Waited {
    /// Approved or rejected: the lead with its outcome.
    Settled(Box<Lead>),
    /// The attempt failed with `error`; the lead is queued again when `will_retry`, else `dead`.
    Failed { error: Option<String>, will_retry: bool },
    /// No outcome in time; the lead is delivered later like any other.
    OnItsWay,
}

/// Polls the lead until it settles, fails as `patience` allows, or the time is up; the last poll
/// starts after the time is up.
///
/// # Errors
/// When the store cannot be read; the lead itself stays committed.
pub async fn wait_for_outcome(store: &Store, id: LeadId, patience: Patience) -> Result<Waited, StoreError> {
    let mut until = Utc::now() + patience.sync.unwrap_or_default();
    let mut failures_wait_until = None;
    let mut first = true;
    loop {
        let polled_at = Utc::now();
        // A lead deleted meanwhile (by an operator) has nothing more to tell.
        let Some(lead) = store.find_lead(id).await? else { return Ok(Waited::OnItsWay) };
        if std::mem::take(&mut first)
            && let Some(wait) = patience.visitor
        {
            let deadline = lead.answer_deadline(wait) + COMMIT_ALLOWANCE;
            until = until.max(deadline);
            failures_wait_until = Some(deadline);
        }
        match lead.status {
            LeadStatus::Approved | LeadStatus::Rejected => return Ok(Waited::Settled(Box::new(lead))),
            LeadStatus::Dead => return Ok(Waited::Failed { error: lead.last_error, will_retry: false }),
            LeadStatus::Pending
                if lead.attempt > 0 && failures_wait_until.is_none_or(|deadline| polled_at > deadline) =>
            {
                return Ok(Waited::Failed { error: lead.last_error, will_retry: true });
            }
            _ => {}
        }
        if polled_at > until {
            return Ok(Waited::OnItsWay);
        }
        // A millisecond past `until` at the latest, so the last poll starts after it.
        let left = (until - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(1);
        tokio::time::sleep(POLL_EVERY.min(left)).await;
    }
}

/// The number a form's visitor is shown when the CRM gave the deal or ticket one in time. A store
/// that cannot be read meanwhile only costs the number: the lead is committed, and the visitor
/// gets the usual answer (and the e-mail, once the outcome commits after the deadline).
pub async fn visitor_number(store: &Store, id: LeadId, wait: &WaitForCrm) -> Option<String> {
    let patience = Patience { sync: None, visitor: Some(wait.wait) };
    match wait_for_outcome(store, id, patience).await {
        Ok(Waited::Settled(lead)) => lead.outcome.as_ref().and_then(|outcome| outcome.deal_number()).map(str::to_owned),
        Ok(Waited::Failed { .. } | Waited::OnItsWay) => None,
        Err(error) => {
            tracing::warn!(lead.id = %id, %error, "could not read the lead while waiting for its number");
            None
        }
    }
}
