//! Checking `wait_for_crm` and what goes with it: the answer's text with the number, and the visitor's e-mail.

use std::time::Duration;

use super::WaitForCrm;
use super::found::Found;
use super::raw::RawSource;
use crate::notify::visitor_email::VisitorEmailTemplates;

pub const DEFAULT_REGISTERED_MESSAGE: &str = "Ваша заявка зарегистрирована под номером {number}";

/// A visitor's request is held open while it waits: long enough for a CRM's usual answer, short
/// enough that nobody gives up on the page.
const SHORTEST_WAIT: Duration = Duration::from_secs(1);
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// Reads `wait_for_crm`, `registered_message` and the visitor's templates of `[sources.<name>.email]`,
/// taking the templates out of `raw` so the team's templates are read without them. Without
/// `[smtp]` the templates are still checked, but nobody is e-mailed. Whether the source's kind
/// may have these keys is checked with the other kind-specific keys.
pub(super) fn check_wait_for_crm(
    raw: &mut RawSource,
    smtp_configured: bool,
    key: &dyn Fn(&str) -> String,
    found: &mut Found<'_>,
) -> Option<WaitForCrm> {
    let (visitor_subject, visitor_body) = match raw.email.as_mut() {
        Some(email) => (email.visitor_subject.take(), email.visitor_body.take()),
        None => (None, None),
    };
    let registered_message = raw.registered_message.take();
    let Some(wait) = raw.wait_for_crm else {
        // Each of these only matters while an answer waits; alone it would silently do nothing.
        let given = [
            ("registered_message", registered_message.is_some()),
            ("email.visitor_subject", visitor_subject.is_some()),
            ("email.visitor_body", visitor_body.is_some()),
        ];
        for (name, _) in given.into_iter().filter(|(_, given)| *given) {
            found.problem(key(name), "has no effect without wait_for_crm");
        }
        return None;
    };
    if !(SHORTEST_WAIT..=LONGEST_WAIT).contains(&wait) {
        found.problem(key("wait_for_crm"), "must be between 1s and 30s: a visitor's request waits that long");
    }
    let registered_message = registered_message.unwrap_or_else(|| DEFAULT_REGISTERED_MESSAGE.to_owned());
    if !registered_message.contains("{number}") {
        found.problem(key("registered_message"), "must contain {number}, where the request's number goes");
    }
    let defaults = VisitorEmailTemplates::default();
    let templates = VisitorEmailTemplates {
        subject: visitor_subject.unwrap_or(defaults.subject),
        body: visitor_body.unwrap_or(defaults.body),
    };
    if let Err(error) = templates.check() {
        found.problem(key("email"), error.to_string());
    }
    Some(WaitForCrm { wait, registered_message, visitor_email: smtp_configured.then_some(templates) })
}
