//! The control API under `/_control/`, without authentication: state, scenarios, play a call to a URL, expire tokens, reset.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::player::{Pacing, PlayOptions, PlayReport};
use crate::scenarios::Scenario;
use crate::script::{CallScript, Reorder};
use crate::{PbxEmulator, Shared};

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_control/state", get(state))
        .route("/_control/scenarios", get(scenarios))
        .route("/_control/play", post(play))
        .route("/_control/tokens/expire", post(expire_tokens))
        .route("/_control/reset", post(reset))
}

/// Refusals of the control API: all are the caller's mistakes.
#[derive(Debug)]
enum ControlError {
    BadRequest(String),
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        match self {
            ControlError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, Json(json!({"message": message}))).into_response()
            }
        }
    }
}

async fn state(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(PbxEmulator::from_shared(shared).snapshot())
}

async fn scenarios() -> Json<Value> {
    Json(json!(Scenario::all()))
}

/// A scenario by name, or a whole script, played to `to` with optional perturbations.
#[derive(Debug, Deserialize)]
struct PlayRequest {
    scenario: Option<String>,
    script: Option<CallScript>,
    to: String,
    #[serde(default)]
    resend_every_event: bool,
    #[serde(default)]
    reorder: Option<Reorder>,
    /// Extensions that ring along with the script's own.
    #[serde(default)]
    parallel_ringing: Vec<String>,
    #[serde(default)]
    resend_on_failure: u32,
    /// A fixed pause between requests.
    #[serde(default)]
    pace_ms: Option<u64>,
    /// The call's own timeline, this many times faster.
    #[serde(default)]
    speedup: Option<u32>,
    #[serde(default)]
    check_connection: bool,
}

async fn play(
    State(shared): State<Arc<Shared>>,
    Json(request): Json<PlayRequest>,
) -> Result<Json<PlayReport>, ControlError> {
    let target = Url::parse(&request.to).map_err(|error| ControlError::BadRequest(format!("to: {error}")))?;
    let mut script = match (&request.scenario, request.script.clone()) {
        (Some(name), None) => Scenario::find(name).map(|scenario| scenario.script()).ok_or_else(|| {
            let names: Vec<&str> = Scenario::all().iter().map(|scenario| scenario.name).collect();
            ControlError::BadRequest(format!("unknown scenario {name:?}; known: {}", names.join(", ")))
        })?,
        (None, Some(script)) => script,
        _ => return Err(ControlError::BadRequest("give either scenario or script".to_owned())),
    };
    if !request.parallel_ringing.is_empty() {
        let extensions: Vec<&str> = request.parallel_ringing.iter().map(String::as_str).collect();
        script = script.parallel_ringing(&extensions);
    }
    if request.resend_every_event {
        script = script.resend_every_event();
    }
    if let Some(reorder) = request.reorder {
        script = script.reorder(reorder);
    }
    let pacing = match (request.pace_ms, request.speedup) {
        (Some(millis), _) => Pacing::Every(Duration::from_millis(millis)),
        (None, Some(speedup)) => Pacing::Timeline { speedup },
        (None, None) => Pacing::Immediate,
    };
    let options = PlayOptions {
        pacing,
        resend_on_failure: request.resend_on_failure,
        check_connection: request.check_connection,
        ..PlayOptions::default()
    };
    let pbx = PbxEmulator::from_shared(shared);
    let report = pbx.play(&script, &target, &options).await.map_err(|error| {
        let cause = std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default();
        ControlError::BadRequest(format!("{error}: {cause}"))
    })?;
    Ok(Json(report))
}

async fn expire_tokens(State(shared): State<Arc<Shared>>) -> StatusCode {
    PbxEmulator::from_shared(shared).expire_tokens();
    StatusCode::NO_CONTENT
}

async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    PbxEmulator::from_shared(shared).reset();
    StatusCode::NO_CONTENT
}
