//! Typed views and controls on `PbxEmulator` for in-process tests, mirroring the control API; playing with the PBX's recordings kept.

use std::time::Instant;

use serde_json::{Value, json};
use url::Url;

use crate::PbxEmulator;
use crate::player::{PlayError, PlayOptions, PlayReport, deliver};
use crate::render::{RenderedCall, render};
use crate::script::CallScript;
use crate::state::{CallbackRequest, Recording, RequestRecord, ServedRecording, State};

impl PbxEmulator {
    /// Plays `script` to `target` as this PBX. Its recordings are kept before the first
    /// request goes out, so a receiver may fetch one as soon as it hears of it.
    ///
    /// # Errors
    /// As `play`: an inconsistent script or no HTTP client.
    pub async fn play(
        &self,
        script: &CallScript,
        target: &Url,
        options: &PlayOptions,
    ) -> Result<PlayReport, PlayError> {
        let rendered = render(script, self.provider())?;
        self.keep_recordings(&rendered);
        let report = deliver(&rendered, target, options).await?;
        self.shared().lock().plays.push(report.clone());
        Ok(report)
    }

    /// Keeps the recordings of a call rendered outside `play`, so the API serves them.
    pub fn keep_recordings(&self, rendered: &RenderedCall) {
        let mut state = self.shared().lock();
        for recording in &rendered.recordings {
            state.add_recording(Recording {
                id: recording.id.clone(),
                call_id: rendered.call_id.clone(),
                seconds: recording.seconds,
            });
        }
    }

    /// A recording the API serves without a call having been played.
    pub fn add_recording(&self, id: &str, call_id: &str, seconds: u32) {
        let recording = Recording { id: id.to_owned(), call_id: call_id.to_owned(), seconds };
        self.shared().lock().add_recording(recording);
    }

    pub fn callbacks(&self) -> Vec<CallbackRequest> {
        self.shared().lock().callbacks.clone()
    }

    pub fn recordings(&self) -> Vec<Recording> {
        self.shared().lock().recordings.values().cloned().collect()
    }

    /// Every recording handed out, as a file or a link, in order.
    pub fn served_recordings(&self) -> Vec<ServedRecording> {
        self.shared().lock().served.clone()
    }

    pub fn plays(&self) -> Vec<PlayReport> {
        self.shared().lock().plays.clone()
    }

    /// Telphin access tokens issued since start or the last reset.
    pub fn tokens_issued(&self) -> u64 {
        self.shared().lock().tokens_issued
    }

    /// Every API request so far (control routes excluded).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared().lock().requests.clone()
    }

    /// Every Telphin token stops working now: the next API call with one gets 401.
    pub fn expire_tokens(&self) {
        self.shared().lock().tokens.clear();
    }

    /// Forgets tokens, call-backs, recordings, links, plays and the request log.
    pub fn reset(&self) {
        *self.shared().lock() = State::default();
    }

    /// Everything the PBX holds, as `GET /_control/state` shows it; no token or secret.
    pub fn snapshot(&self) -> Value {
        let state = self.shared().lock();
        let now = Instant::now();
        json!({
            "provider": self.provider().kind(),
            "callbacks": state.callbacks,
            "recordings": state.recordings.values().collect::<Vec<_>>(),
            "recordings_served": state.served,
            "plays": state.plays,
            "tokens_issued": state.tokens_issued,
            "live_tokens": state.tokens.values().filter(|expires| **expires > now).count(),
            "requests": state.requests,
        })
    }
}
