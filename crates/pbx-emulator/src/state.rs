//! What the PBX remembers between requests: tokens, call-backs asked for, recordings and who fetched them, plays.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::account::ProviderKind;
use crate::player::PlayReport;
use crate::render::random_hex;

/// A call-back leadgate asked the PBX to place.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallbackRequest {
    pub provider: ProviderKind,
    /// Telphin: the extension id of the path; Zadarma: `from`; Mango: `from.extension`.
    pub extension: String,
    /// The numbers rung first (Telphin's `src_num`, Zadarma's `from`, Mango's extension).
    pub sources: Vec<String>,
    /// The number rung once a source answers.
    pub destination: String,
    /// The request as received: JSON body, query or the Mango `json` field.
    pub request: Value,
    /// The id the PBX answered with.
    pub call_id: String,
}

/// A recording the PBX holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recording {
    pub id: String,
    /// The call it belongs to: `CallID`, `pbx_call_id` or `entry_id`.
    pub call_id: String,
    pub seconds: u32,
}

/// A recording handed out: as a file, or as a link to one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServedRecording {
    pub id: String,
    /// `storage_url`, `link`, `file`.
    pub served_as: String,
}

/// One line of the API request log: no query, body or header, so no secret ends up in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub status: u16,
}

/// A temporary address of a recording, outside the authenticated API.
#[derive(Clone, Debug)]
pub(crate) struct Link {
    pub recording_id: String,
    pub expires: Option<Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Telphin access tokens and when they stop working.
    pub tokens: HashMap<String, Instant>,
    pub tokens_issued: u64,
    pub callbacks: Vec<CallbackRequest>,
    pub recordings: BTreeMap<String, Recording>,
    pub links: HashMap<String, Link>,
    pub served: Vec<ServedRecording>,
    pub plays: Vec<PlayReport>,
    pub requests: Vec<RequestRecord>,
}

impl State {
    pub fn add_recording(&mut self, recording: Recording) {
        self.recordings.insert(recording.id.clone(), recording);
    }

    pub fn recording(&self, id: &str) -> Option<&Recording> {
        self.recordings.get(id)
    }

    /// A new link to recording `id`; `None` never expires.
    pub fn link(&mut self, recording_id: &str, expires: Option<Instant>) -> String {
        let token = random_hex(40, false);
        self.links.insert(token.clone(), Link { recording_id: recording_id.to_owned(), expires });
        token
    }

    /// The recording behind a link that is still valid.
    pub fn follow(&self, token: &str, now: Instant) -> Option<&Recording> {
        let link = self.links.get(token)?;
        if link.expires.is_some_and(|expires| expires <= now) {
            return None;
        }
        self.recordings.get(&link.recording_id)
    }

    pub fn note_served(&mut self, id: &str, served_as: &str) {
        self.served.push(ServedRecording { id: id.to_owned(), served_as: served_as.to_owned() });
    }

    /// Whether `token` is a Telphin access token still in force.
    pub fn token_valid(&self, token: &str, now: Instant) -> bool {
        self.tokens.get(token).is_some_and(|expires| *expires > now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_expired_link_leads_nowhere() {
        let mut state = State::default();
        state.add_recording(Recording { id: "r1".to_owned(), call_id: "c1".to_owned(), seconds: 3 });
        let now = Instant::now();
        let lasting = state.link("r1", None);
        let short = state.link("r1", Some(now + Duration::from_secs(1)));
        assert!(state.follow(&lasting, now + Duration::from_secs(60)).is_some());
        assert!(state.follow(&short, now).is_some());
        assert!(state.follow(&short, now + Duration::from_secs(2)).is_none());
        assert!(state.follow("unknown", now).is_none());
    }
}
