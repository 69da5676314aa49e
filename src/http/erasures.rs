//! Erasure: `POST /api/v1/erasures`, every lead of one person anonymized (152-FZ, LGPD), for operators.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::admin::Admin;
use super::error::ApiError;
use crate::domain::{Email, Phone};
use crate::lifecycle::Erased;
use crate::store::StoreError;
use crate::store::lifecycle::Person;

/// Whose data to erase. In the body, never the URL: a URL ends up in access logs.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// In any usual spelling; normalized as intake does.
    phone: Option<String>,
    email: Option<String>,
}

/// Every lead of one person anonymized to a tombstone; their files, outbox rows and calls removed.
#[utoipa::path(post, path = "/api/v1/erasures", tag = "operators", security(("admin_token" = [])),
    request_body = ErasureRequest,
    responses(
        (status = 200, description = "`{erased_leads, removed_files}`"),
        (status = 400, description = "Neither a phone nor an e-mail, or one that is malformed", body = crate::http::openapi::ErrorBody),
        (status = 401, description = "No admin token", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "A lead of this person is being delivered now; nothing was erased", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn erase(
    State(state): State<AppState>,
    admin: Admin,
    body: Result<Json<ErasureRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(request) =
        body.map_err(|_| ApiError::Invalid("ожидается JSON {\"phone\": …} или {\"email\": …}".into()))?;
    let person = person(&request, &state)?;
    let erased = crate::lifecycle::erase(&state.store, &state.files, &person, &admin.actor).await.map_err(|error| {
        match error.downcast::<StoreError>() {
            Ok(error) => ApiError::from(error),
            Err(error) => ApiError::Files(format!("{error:#}")),
        }
    })?;
    match erased {
        Erased::Leads { leads, files } => Ok(Json(json!({ "erased_leads": leads, "removed_files": files }))),
        Erased::InDelivery(count) => Err(ApiError::Conflict(format!(
            "{count} заявк(и) этого человека сейчас передаются в CRM; ничего не удалено, повторите запрос через минуту"
        ))),
    }
}

/// The person as intake would have stored them: the phone normalized, the e-mail checked.
fn person(request: &ErasureRequest, state: &AppState) -> Result<Person, ApiError> {
    if request.phone.is_none() && request.email.is_none() {
        return Err(ApiError::Invalid("укажите phone или email".into()));
    }
    let e164 = request
        .phone
        .as_deref()
        .map(|phone| Phone::parse(phone, state.phone_region))
        .transpose()
        .map_err(|_| ApiError::Invalid("phone: это не номер телефона".into()))?
        .map(|phone| phone.e164().to_owned());
    let email = request
        .email
        .as_deref()
        .map(Email::parse)
        .transpose()
        .map_err(|_| ApiError::Invalid("email: это не адрес электронной почты".into()))?
        .map(|email| email.as_str().to_owned());
    Ok(Person { e164, email })
}
