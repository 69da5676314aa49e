//! The token endpoint: authorization-code exchange and single-use refresh-token rotation.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::json;

use crate::Shared;
use crate::problem::Problem;
use crate::state::now_unix;
use crate::tokens::IssuedTokens;

/// The token request as amoCRM documents it; clients send it as JSON or as a form.
#[derive(Debug, Default, Deserialize)]
struct TokenRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    grant_type: Option<String>,
    code: Option<String>,
    refresh_token: Option<String>,
    redirect_uri: Option<String>,
}

fn bad_request(hint: &'static str) -> Problem {
    Problem::OAuth { status: StatusCode::BAD_REQUEST, hint }
}

fn unauthorized(hint: &'static str) -> Problem {
    Problem::OAuth { status: StatusCode::UNAUTHORIZED, hint }
}

pub async fn access_token(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let outcome = match read_token_request(request).await {
        Ok(token_request) => exchange(&shared, &token_request),
        Err(problem) => Err(problem),
    };
    match outcome {
        Ok(issued) => Json(json!({
            "token_type": "Bearer",
            "expires_in": issued.expires_in.as_secs(),
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "server_time": now_unix(),
        }))
        .into_response(),
        Err(problem) => problem.into_response(),
    }
}

async fn read_token_request(request: Request) -> Result<TokenRequest, Problem> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|content_type| content_type.contains("json"));
    let parsed = if is_json {
        Json::<TokenRequest>::from_request(request, &()).await.map(|Json(body)| body).ok()
    } else {
        Form::<TokenRequest>::from_request(request, &()).await.map(|Form(body)| body).ok()
    };
    parsed.ok_or_else(|| bad_request("The request body could not be parsed"))
}

/// Checks the client first, then the grant, so wrong credentials never reveal whether a
/// code or refresh token was valid.
fn exchange(shared: &Shared, request: &TokenRequest) -> Result<IssuedTokens, Problem> {
    let config = &shared.config;
    let client_matches = request.client_id.as_deref() == Some(config.client_id.as_str())
        && request.client_secret.as_deref() == Some(config.client_secret.as_str());
    if !client_matches {
        return Err(unauthorized("Client authentication failed"));
    }
    let redirect_matches = request.redirect_uri.as_deref() == Some(config.redirect_uri.as_str());
    let mut state = shared.lock();
    match request.grant_type.as_deref() {
        Some("authorization_code") => {
            // The code was issued for one redirect URI; amoCRM requires the same one here.
            if !redirect_matches {
                return Err(bad_request("Invalid redirect URI"));
            }
            let code = request.code.as_deref().ok_or_else(|| bad_request("Check the `code` parameter"))?;
            if !state.tokens.redeem_code(code) {
                return Err(bad_request("Authorization code has been revoked"));
            }
        }
        Some("refresh_token") => {
            // A refresh without redirect_uri is tolerated; a different one is not.
            if request.redirect_uri.is_some() && !redirect_matches {
                return Err(bad_request("Invalid redirect URI"));
            }
            let token =
                request.refresh_token.as_deref().ok_or_else(|| bad_request("Check the `refresh_token` parameter"))?;
            if !state.tokens.redeem_refresh(token) {
                return Err(unauthorized("Token has been revoked"));
            }
        }
        _ => {
            return Err(bad_request("The authorization grant type is not supported by the authorization server."));
        }
    }
    Ok(state.tokens.issue(Instant::now()))
}
