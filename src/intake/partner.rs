//! The partner channel (TrendAgent): `POST /api/v1/leads` with the seed's exact answers.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use url::Url;

use super::text_field;
use crate::domain::text;
use crate::domain::{DealSpec, Email, NewLead, Phone, PhoneRegion, Routing, SourceId};
use crate::http::error::ApiError;
use crate::http::source_auth::AuthenticatedSource;
use crate::http::state::AppState;
use crate::store::Inserted;

const MAX_IDEMPOTENCY_KEY_LENGTH: usize = 255;

/// Commits the lead as `pending`, then answers `{"id": …}`; a repeated `Idempotency-Key`
/// answers with the first lead's id and stores nothing.
#[utoipa::path(post, path = "/api/v1/leads", tag = "partner",
    security(("source_key" = []), ("source_key_header" = []), ("source_key_query" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "The partner's id of the lead; a repeat stores nothing")),
    request_body(content = crate::http::openapi::PartnerLead),
    responses(
        (status = 200, description = "Stored (or already stored under this key)", body = crate::http::openapi::Accepted),
        (status = 400, description = "A field is missing or malformed; the message names it", body = crate::http::openapi::ErrorBody),
        (status = 401, description = "No key, or an unknown one", body = crate::http::openapi::ErrorBody),
        (status = 413, description = "The body is too large", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "The Idempotency-Key was used for another lead", body = crate::http::openapi::ErrorBody),
        (status = 503, description = "The database cannot take it now; nothing was stored", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn accept(
    State(state): State<AppState>,
    AuthenticatedSource(source): AuthenticatedSource,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    state.intake_limits.admit(&source.id)?;
    let body = super::read_body(body)?;
    let external_id = idempotency_key(&headers)?;
    let lead = parse_lead(&body, source.id, external_id.clone(), state.phone_region)?;
    if let Some(url) = &lead.callback_url {
        state
            .callback_guard
            .check(url)
            .await
            .map_err(|refused| ApiError::Invalid(format!("«{url}» в поле callbackUrl недопустим: {refused}")))?;
    }
    match state.writer.insert(lead).await? {
        Inserted::New(id) | Inserted::Existing { id, same_payload: true } | Inserted::Duplicate { id } => {
            Ok(Json(json!({ "id": id })))
        }
        Inserted::Existing { same_payload: false, .. } => {
            Err(ApiError::IdempotencyKeyReused(external_id.unwrap_or_default()))
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().map(str::trim).unwrap_or_default();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LENGTH {
        return Err(ApiError::Invalid(format!(
            "заголовок Idempotency-Key должен быть непустой строкой ASCII не длиннее {MAX_IDEMPOTENCY_KEY_LENGTH} символов"
        )));
    }
    Ok(Some(key.to_owned()))
}

/// The partner's JSON, parsed once into a `NewLead`. Fields beyond the known ones are kept in
/// the payload untouched.
fn parse_lead(
    body: &[u8],
    source: SourceId,
    external_id: Option<String>,
    region: PhoneRegion,
) -> Result<NewLead, ApiError> {
    let payload: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::Invalid(format!("тело запроса не является корректным JSON: {error}")))?;
    let Value::Object(fields) = &payload else {
        return Err(ApiError::Invalid("ожидался JSON-объект с полями name и phone".to_owned()));
    };
    if let Some(found) = text::find_in_json(&payload) {
        return Err(super::forbidden_char_error(&found.path, found.character));
    }
    let name = text_field(fields, "name")?;
    let phone_text = text_field(fields, "phone")?;
    let (Some(name), Some(phone_text)) = (name, phone_text) else {
        return Err(ApiError::MissingNameOrPhone);
    };
    let phone = Phone::parse(&phone_text, region)
        .map_err(|_| ApiError::Invalid(format!("«{phone_text}» в поле phone не является номером телефона")))?;
    let email = text_field(fields, "email")?
        .map(|text| {
            Email::parse(&text)
                .map_err(|_| ApiError::Invalid(format!("«{text}» в поле email не является адресом e-mail")))
        })
        .transpose()?;
    let callback_url = text_field(fields, "callbackUrl")?.map(|text| parse_callback_url(&text)).transpose()?;
    Ok(NewLead {
        source,
        external_id,
        name,
        phone,
        email,
        comment: text_field(fields, "comment")?,
        callback_url,
        payload,
        routing: Routing::default(),
        origin_time: None,
        deal: DealSpec::default(),
        skip_sending: false,
        duplicate_check: None,
        call: None,
    })
}

fn parse_callback_url(text: &str) -> Result<Url, ApiError> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(ApiError::Invalid(format!("«{text}» в поле callbackUrl не является адресом http(s)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<NewLead, ApiError> {
        parse_lead(body.as_bytes(), SourceId("partner".into()), None, PhoneRegion::RUSSIA)
    }

    #[test]
    fn a_full_lead_is_parsed_and_its_extra_fields_are_kept() {
        let lead = parse(r#"{"name":" Иван ","phone":"8 (999) 123-45-67","email":"ivan@example.ru","comment":"ЖК Север","callbackUrl":"https://partner.example/cb","object_id":77}"#).unwrap();
        assert_eq!(lead.name, "Иван");
        assert_eq!(lead.phone.e164(), "+79991234567");
        assert_eq!(lead.email.unwrap().as_str(), "ivan@example.ru");
        assert_eq!(lead.payload["object_id"], 77);
    }

    #[test]
    fn missing_blank_or_null_name_or_phone_gives_the_seed_error() {
        for body in [
            r#"{"phone":"+79991234567"}"#,
            r#"{"name":"  ","phone":"+79991234567"}"#,
            r#"{"name":"Иван","phone":null}"#,
            "{}",
        ] {
            assert!(matches!(parse(body), Err(ApiError::MissingNameOrPhone)), "{body}");
        }
    }

    #[test]
    fn a_numeric_phone_is_accepted() {
        assert_eq!(parse(r#"{"name":"Иван","phone":79991234567}"#).unwrap().phone.e164(), "+79991234567");
    }

    #[test]
    fn hostile_or_malformed_values_are_named_in_the_error() {
        let message = |body: &str| parse(body).unwrap_err().to_string();
        assert!(message(r#"{"name":"Иван","phone":"123"}"#).contains("phone"));
        assert!(message(r#"{"name":"Иван","phone":"+79991234567","email":"nope"}"#).contains("email"));
        assert!(
            message(r#"{"name":"Иван","phone":"+79991234567","callbackUrl":"file:///etc/passwd"}"#)
                .contains("callbackUrl")
        );
        assert!(message(r#"{"name":["Иван"],"phone":"+79991234567"}"#).contains("name"));
        assert!(message(r#"{"name":"Иван","#).contains("JSON"));
        assert!(message(r#"[1,2]"#).contains("JSON-объект"));
        let nul = message(r#"{"name":"Иван\u0000","phone":"+79991234567"}"#);
        assert!(nul.contains("name") && nul.contains("U+0000"), "{nul}");
        assert!(message(r#"{"name":"Иван","phone":"+79991234567","extra":{"a":["\u0001"]}}"#).contains("extra.a[0]"));
    }
}
