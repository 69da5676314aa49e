//! The listing-portal channel (Grupo ZAP): `POST /grupozap/lead[/{advertiser}]` per the portal's lead contract.
//!
//! The portal counts any non-2xx as a failure and re-sends; it reads 404 as "integration removed"
//! and stops sending for good. So 404 is answered only for an unknown or disabled advertiser,
//! and a lead whose listing nobody owns yet is stored `unrouted` and acknowledged.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;

use super::text_field;
use crate::config::{SourceConfig, SourceKind, ZapSource};
use crate::domain::advertiser::AdvertiserId;
use crate::domain::text;
use crate::domain::{DealSpec, Email, NewLead, Phone, PhoneRegion, Routing};
use crate::http::error::ApiError;
use crate::http::source_auth::authorization;
use crate::http::state::AppState;
use crate::store::Inserted;

/// `POST /grupozap/lead/{advertiser}`.
#[utoipa::path(post, path = "/grupozap/lead/{advertiser}", tag = "portal", security(("portal_basic" = [])),
    params(("advertiser" = String, Path, description = "The advertiser's id")),
    request_body(content = crate::http::openapi::PortalLead),
    responses(
        (status = 200, description = "Stored", body = crate::http::openapi::Accepted),
        (status = 400, description = "The body is not a lead", body = crate::http::openapi::ErrorBody),
        (status = 401, description = "Wrong Basic credentials", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "The advertiser is unknown or disabled (the portal stops sending)", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn accept_for_advertiser(
    State(state): State<AppState>,
    Path(advertiser): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    accept(&state, Some(&advertiser), &headers, body).await
}

/// `POST /grupozap/lead`: the advertiser is found by the lead's `clientListingId`.
#[utoipa::path(post, path = "/grupozap/lead", tag = "portal", security(("portal_basic" = [])),
    request_body(content = crate::http::openapi::PortalLead),
    responses(
        (status = 200, description = "Stored; routed to the listing's advertiser, or kept unrouted", body = crate::http::openapi::Accepted),
        (status = 400, description = "The body is not a lead", body = crate::http::openapi::ErrorBody),
        (status = 401, description = "Wrong Basic credentials", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn accept_by_listing(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    accept(&state, None, &headers, body).await
}

async fn accept(
    state: &AppState,
    advertiser: Option<&str>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let (source, zap) = authenticate(state, advertiser, headers).await?;
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        _ => ApiError::Invalid(format!("the body could not be read: {rejection}")),
    })?;
    let mut payload: Value = serde_json::from_slice(&body)
        .map_err(|error| ApiError::Invalid(format!("the body is not valid JSON: {error}")))?;
    // The portal re-sends whatever it gets no 2xx for, and cannot fix its data: characters that
    // cannot be stored are dropped rather than refused.
    let cleaned = text::strip_in_json(&mut payload);
    if cleaned > 0 {
        tracing::info!(source = %source.id, values = cleaned, "removed control characters from a portal lead");
    }
    let Value::Object(fields) = &payload else {
        return Err(ApiError::Invalid("the body must be a JSON object (the lead contract)".to_owned()));
    };
    let listing = text_field(fields, "clientListingId")?.ok_or_else(|| {
        ApiError::Invalid("clientListingId is missing: the lead cannot be matched to a listing".to_owned())
    })?;
    let routing = match advertiser {
        Some(id) => {
            let id = AdvertiserId::parse(id).map_err(|_| ApiError::AdvertiserNotFound)?;
            let advertiser = state.store.find_advertiser(&source.id, &id).await?;
            Routing::from(advertiser.filter(|advertiser| advertiser.enabled).ok_or(ApiError::AdvertiserNotFound)?)
        }
        None => match state.store.advertiser_for_listing(&source.id, &listing).await? {
            Some(advertiser) if advertiser.enabled => Routing::from(advertiser),
            Some(_) => return Err(ApiError::AdvertiserNotFound),
            None => Routing { unrouted: true, ..Routing::default() },
        },
    };
    let lead = parse_lead(fields, &payload, source, zap, routing)?;
    match state.writer.insert(lead).await? {
        // The portal re-sends what failed or timed out: the first lead's id is the answer.
        Inserted::New(id) | Inserted::Existing { id, .. } | Inserted::Duplicate { id } => Ok(Json(json!({ "id": id }))),
    }
}

/// The zap source whose Basic credentials the request carries. The password is the source's
/// `secret_key`, or, for an advertiser with a secret of its own, that secret instead. Each
/// comparison runs in constant time, so timing tells nothing about how close a guess came.
async fn authenticate<'a>(
    state: &'a AppState,
    advertiser: Option<&str>,
    headers: &HeaderMap,
) -> Result<(&'a SourceConfig, &'a ZapSource), ApiError> {
    let credentials = authorization(headers, "Basic")?
        .and_then(|encoded| BASE64.decode(encoded).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .ok_or(ApiError::PortalUnauthorized)?;
    let (user, password) = credentials.split_once(':').ok_or(ApiError::PortalUnauthorized)?;
    let advertiser = advertiser.and_then(|id| AdvertiserId::parse(id).ok());
    for source in state.source_keys.0.iter() {
        let SourceKind::Zap(zap) = &source.kind else { continue };
        if !bool::from(zap.username.as_bytes().ct_eq(user.as_bytes())) {
            continue;
        }
        let own_secret = match &advertiser {
            Some(id) => state.store.advertiser_secret(&source.id, id).await?,
            None => None,
        };
        let expected = own_secret.as_ref().unwrap_or(&zap.secret_key);
        if bool::from(expected.expose_secret().as_bytes().ct_eq(password.as_bytes())) {
            crate::telemetry::note_source(&source.id);
            state.intake_limits.admit(&source.id)?;
            return Ok((source, zap));
        }
    }
    Err(ApiError::PortalUnauthorized)
}

/// The contract's fields, parsed once: the phone is `ddd` + `phone` in Brazil (`phoneNumber`,
/// deprecated, when those are missing); everything received stays in the payload.
fn parse_lead(
    fields: &Map<String, Value>,
    payload: &Value,
    source: &SourceConfig,
    zap: &ZapSource,
    routing: Routing,
) -> Result<NewLead, ApiError> {
    let brazil: PhoneRegion = "BR".parse().expect("BR is a region");
    let phone_text = match (text_field(fields, "ddd")?, text_field(fields, "phone")?) {
        (Some(ddd), Some(phone)) => Some(format!("{ddd}{phone}")),
        (None, Some(phone)) => Some(phone),
        _ => text_field(fields, "phoneNumber")?,
    };
    let phone_text = phone_text.ok_or_else(|| ApiError::Invalid("the lead has no phone (ddd + phone)".to_owned()))?;
    let phone = Phone::parse(&phone_text, brazil)
        .map_err(|_| ApiError::Invalid(format!("«{phone_text}» (ddd + phone) is not a phone number")))?;
    // A malformed e-mail from the portal is no reason to refuse the lead; it stays in the payload.
    let email = text_field(fields, "email")?.and_then(|text| Email::parse(&text).ok());
    let origin_time = text_field(fields, "timestamp")?.and_then(|text| origin_time(&text, zap.timezone));
    Ok(NewLead {
        source: source.id.clone(),
        external_id: text_field(fields, "originLeadId")?,
        name: text_field(fields, "name")?.unwrap_or_else(|| "Sem nome".to_owned()),
        phone,
        email,
        comment: text_field(fields, "message")?,
        callback_url: None,
        payload: payload.clone(),
        routing,
        origin_time,
        deal: DealSpec::default(),
        skip_sending: false,
        duplicate_check: None,
        call: None,
    })
}

/// The contract's `timestamp` is ISO_LOCAL_DATE_TIME, a time without a zone, read in the
/// source's zone; the portal's own sample ends in `Z`, which is honoured when present.
fn origin_time(text: &str, timezone: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(instant.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    timezone.from_local_datetime(&local).earliest().map(|instant| instant.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_timestamp_is_read_in_the_configured_zone_and_a_zoned_one_as_given() {
        let sao_paulo = chrono_tz::America::Sao_Paulo;
        let local = origin_time("2017-10-23T15:50:30.619", sao_paulo).unwrap();
        assert_eq!(local.to_rfc3339(), "2017-10-23T17:50:30.619+00:00");
        let zoned = origin_time("2017-10-23T15:50:30.619Z", sao_paulo).unwrap();
        assert_eq!(zoned.to_rfc3339(), "2017-10-23T15:50:30.619+00:00");
        assert_eq!(origin_time("yesterday", sao_paulo), None);
    }
}
