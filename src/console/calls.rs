//! The calls in progress, live: the page the call cards fill in, from `GET /api/v1/calls/live`.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::page::{Frame, render};
use crate::http::admin::Operator;
use crate::http::error::ConsoleError;
use crate::http::state::AppState;

#[derive(Template)]
#[template(path = "console/calls.html")]
struct CallsPage {
    frame: Frame,
}

/// `GET /admin/calls`
pub async fn page(State(state): State<AppState>, operator: Operator) -> Result<Response, ConsoleError> {
    render(&CallsPage { frame: Frame::new(&state, &operator) })
}
