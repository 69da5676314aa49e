//! What every console page shares: the header's user and links, the footer, rendering.

use std::time::Duration;

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::texts::{Texts, texts};
use crate::http::admin::Operator;
use crate::http::error::ConsoleError;
use crate::http::state::AppState;

/// The frame around a page: who is logged in, their CSRF token for the logout form, the texts.
pub struct Frame {
    pub t: &'static Texts,
    pub username: String,
    pub is_admin: bool,
    pub csrf: String,
    /// The user's PBX extension: their call card pops up, and phone numbers get a call button.
    pub extension: Option<String>,
    /// Whether the call buttons may start calls: an admin with an extension (starting a call is
    /// an admin's request of the API).
    pub can_call: bool,
    /// Shown in the footer of debug builds: how long the page's main query took.
    pub query_time: Option<String>,
}

impl Frame {
    pub fn new(state: &AppState, operator: &Operator) -> Self {
        let extension = state.console.config.extensions.get(operator.username()).cloned();
        Self {
            t: texts(state.console.config.language),
            username: operator.username().to_owned(),
            is_admin: operator.is_admin(),
            csrf: operator.session.csrf_token.clone(),
            can_call: operator.is_admin() && extension.is_some() && !state.pbx.is_empty(),
            extension,
            query_time: None,
        }
    }

    /// Records the main query's time, for the footer of debug builds only.
    pub fn timed(mut self, elapsed: Duration) -> Self {
        if cfg!(debug_assertions) {
            self.query_time = Some(format!("{:.1} ms", elapsed.as_secs_f64() * 1000.0));
        }
        self
    }
}

/// A rendered page, or the error page if the template failed.
pub fn render(page: &impl Template) -> Result<Response, ConsoleError> {
    Ok(Html(page.render()?).into_response())
}

/// A moment as the console shows it: UTC, to the second.
pub fn moment(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The session's CSRF token, as every form posts it.
#[derive(serde::Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}
