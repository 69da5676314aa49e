//! From a script to the exact HTTP requests one provider sends, perturbations applied.

mod mango;
mod telphin;
mod zadarma;

use std::time::{Duration, SystemTime};

use serde::Serialize;
use url::Url;

use crate::account::{Provider, ProviderKind};
use crate::script::{CallScript, Reorder, ScriptError};
use crate::timeline;

/// Zadarma and Mango announce a recording once it is stored, a little after the call.
const RECORD_NOTICE_DELAY: Duration = Duration::from_secs(5);

/// What a request does to its leg, so perturbations can find an answer and its hangup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Answer(usize),
    Hangup(usize),
    Other,
}

/// One HTTP request as the PBX sends it: always a form-encoded POST.
#[derive(Clone, Debug, Serialize)]
pub struct PbxRequest {
    /// `dial-in`, `NOTIFY_START`, `events/call`, …: what a log line should call it.
    pub event: String,
    /// Appended to the target URL's path (Mango's `/events/…`); empty for the others.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The form fields in the order they are encoded.
    pub form: Vec<(String, String)>,
    #[serde(skip)]
    pub at: SystemTime,
    #[serde(skip)]
    pub(crate) role: Role,
}

impl PbxRequest {
    pub(crate) fn new(event: &str, at: SystemTime, role: Role) -> Self {
        PbxRequest { event: event.to_owned(), path: String::new(), headers: Vec::new(), form: Vec::new(), at, role }
    }

    pub(crate) fn push(&mut self, name: &str, value: impl Into<String>) {
        self.form.push((name.to_owned(), value.into()));
    }

    /// The value of a form field, as a receiver would read it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The `application/x-www-form-urlencoded` body.
    pub fn body(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&self.form).finish()
    }

    /// `target` with `path` appended to its path; its query string stays.
    pub fn url(&self, target: &Url) -> Url {
        let mut url = target.clone();
        if !self.path.is_empty() {
            let joined = format!("{}{}", target.path().trim_end_matches('/'), self.path);
            url.set_path(&joined);
        }
        url
    }
}

/// A recording the PBX will have once the call is over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordingRef {
    /// `RecID`, `call_id_with_rec` or `recording_id`.
    pub id: String,
    pub seconds: u32,
}

/// Every request of one call, in the order they go out.
#[derive(Clone, Debug, Serialize)]
pub struct RenderedCall {
    pub provider: ProviderKind,
    pub script: String,
    /// `CallID`, `pbx_call_id` or `entry_id`.
    pub call_id: String,
    pub requests: Vec<PbxRequest>,
    pub recordings: Vec<RecordingRef>,
}

/// Renders `script` as `provider` sends it. Ids are new on every call, as on a real PBX.
///
/// # Errors
/// When the script is inconsistent (see `CallScript::validate`).
pub fn render(script: &CallScript, provider: &Provider) -> Result<RenderedCall, ScriptError> {
    script.validate()?;
    let mut timeline = timeline::unroll(script, SystemTime::UNIX_EPOCH);
    timeline.start = script.started_at.unwrap_or_else(|| {
        // A call played now has just ended: no event, recording notice included, is dated in the future.
        let lasted = Duration::from_millis(timeline.steps.last().map_or(0, |step| step.at_ms));
        SystemTime::now() - lasted - RECORD_NOTICE_DELAY
    });
    let mut rendered = match provider {
        Provider::Telphin(account) => telphin::render(script, &timeline, account),
        Provider::Zadarma(account) => zadarma::render(script, &timeline, account),
        Provider::Mango(account) => mango::render(script, &timeline, account),
    };
    rendered.script.clone_from(&script.name);
    if let Some(reorder) = script.perturbations.reorder {
        reorder_requests(&mut rendered.requests, reorder)?;
    }
    if script.perturbations.resend_every_event {
        rendered.requests = rendered.requests.into_iter().flat_map(|request| [request.clone(), request]).collect();
    }
    Ok(rendered)
}

fn reorder_requests(requests: &mut Vec<PbxRequest>, reorder: Reorder) -> Result<(), ScriptError> {
    match reorder {
        Reorder::Reversed => requests.reverse(),
        Reorder::HangupBeforeAnswer => {
            let (answer, leg) = requests
                .iter()
                .enumerate()
                .find_map(|(index, request)| match request.role {
                    Role::Answer(leg) => Some((index, leg)),
                    _ => None,
                })
                .ok_or(ScriptError::NoAnswerEvent)?;
            let hangup = requests
                .iter()
                .position(|request| request.role == Role::Hangup(leg))
                .ok_or(ScriptError::NothingToReorder)?;
            let moved = requests.remove(hangup);
            requests.insert(answer, moved);
        }
    }
    Ok(())
}

/// Hex digits from the thread-local generator; ids need to be unique, not secret.
pub(crate) fn random_hex(digits: usize, upper: bool) -> String {
    let mut text = String::with_capacity(digits + 32);
    while text.len() < digits {
        text.push_str(&format!("{:032x}", rand::random::<u128>()));
    }
    text.truncate(digits);
    if upper { text.to_ascii_uppercase() } else { text }
}

pub(crate) fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(event: &str, role: Role) -> PbxRequest {
        PbxRequest::new(event, SystemTime::UNIX_EPOCH, role)
    }

    #[test]
    fn hangup_before_answer_moves_the_answered_legs_hangup_right_before_its_answer() {
        let mut requests = vec![
            request("ring", Role::Other),
            request("answer", Role::Answer(1)),
            request("other hangup", Role::Hangup(2)),
            request("hangup", Role::Hangup(1)),
        ];
        reorder_requests(&mut requests, Reorder::HangupBeforeAnswer).unwrap();
        let events: Vec<&str> = requests.iter().map(|request| request.event.as_str()).collect();
        assert_eq!(events, ["ring", "hangup", "answer", "other hangup"]);
    }

    #[test]
    fn a_path_is_appended_to_the_targets_path_before_its_query() {
        let mut request = request("events/call", Role::Other);
        request.path = "/events/call".to_owned();
        let target = Url::parse("http://127.0.0.1:9/hooks/mango/?token=s").unwrap();
        assert_eq!(request.url(&target).as_str(), "http://127.0.0.1:9/hooks/mango/events/call?token=s");
    }
}
