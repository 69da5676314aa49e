//! Which source is calling: its key from `Authorization: Bearer`, `X-Api-Key` or `?key=`.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, Query};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::config::{Keys, SourceConfig};

/// The configured sources, for matching keys.
#[derive(Clone)]
pub struct SourceKeys(pub Arc<Vec<SourceConfig>>);

impl SourceKeys {
    /// The source whose key, as `key_of` reads it, is `presented`. Every key is compared, each in
    /// constant time, so timing tells nothing about which source came close.
    pub fn matching(&self, presented: &str, keys_of: impl Fn(&SourceConfig) -> Option<&Keys>) -> Option<&SourceConfig> {
        let mut matched = None;
        for source in self.0.iter() {
            let Some(keys) = keys_of(source) else { continue };
            if keys.matches(presented) {
                matched = Some(source);
            }
        }
        matched
    }
}

/// The credentials after `scheme` in the request's `Authorization` header; the scheme matches in
/// any case, as HTTP says.
///
/// # Errors
/// When the header is sent twice: which one counts would depend on the proxies in front.
pub fn authorization<'a>(headers: &'a HeaderMap, scheme: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(ApiError::Invalid("заголовок Authorization передан несколько раз".to_owned()));
    }
    let Ok(value) = value.to_str() else { return Ok(None) };
    let (given, credentials) = value.trim().split_once(' ').unwrap_or((value, ""));
    Ok(given.eq_ignore_ascii_case(scheme).then(|| credentials.trim()))
}

/// A request whose key matched a source.
pub struct AuthenticatedSource(pub SourceConfig);

#[derive(serde::Deserialize)]
struct KeyQuery {
    key: Option<String>,
}

impl<S> FromRequestParts<S> for AuthenticatedSource
where
    SourceKeys: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let header = |name: &str| parts.headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim);
        let from_query = || Query::<KeyQuery>::try_from_uri(&parts.uri).ok().and_then(|query| query.0.key);
        let presented = authorization(&parts.headers, "Bearer")?
            .map(str::to_owned)
            .or_else(|| header("x-api-key").map(str::to_owned))
            .or_else(from_query)
            .ok_or(ApiError::Unauthorized)?;
        let keys = SourceKeys::from_ref(state);
        let matched = keys.matching(&presented, SourceConfig::partner_keys);
        let matched = matched.cloned().ok_or(ApiError::Unauthorized)?;
        crate::telemetry::note_source(&matched.id);
        Ok(AuthenticatedSource(matched))
    }
}
