//! Roistat's proxy-lead API: `/api/proxy/1.0/leads/add` and `/leads/messages/add`, so a site that
//! calls Roistat switches to leadgate by changing only the host name.
//!
//! Parameters come as a query string, a form body or JSON, in the shape PHP's `http_build_query`
//! gives them (`fields[price]=…`). A site in Windows-1251 says so with `fields[charset]`, and every
//! value is converted before anything else reads it.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use encoding_rs::Encoding;
use serde_json::{Value, json};

use super::read_body;
use super::variables::Variables;
use super::wait::{Patience, Waited, wait_for_outcome};
use crate::config::{ProxySource, SourceConfig, SourceKind, WaitForCrm};
use crate::domain::text;
use crate::domain::{CrmField, DealSpec, DuplicateCheck, Email, Lead, LeadId, LeadStatus, NewLead, Phone, Routing};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::http::visitor::ClientIp;
use crate::store::Inserted;

/// The seed's limits, in characters.
const SHORT_TEXT_LIMIT: usize = 1024;
const TEXT_LIMIT: usize = 4096;
const EXTRA_FIELDS_LIMIT: usize = 8000;

/// `GET` or `POST /api/proxy/1.0/leads/add`.
#[utoipa::path(method(get, post), path = "/api/proxy/1.0/leads/add", tag = "proxy",
    security(("source_key_query" = [])),
    request_body(content_type = "application/x-www-form-urlencoded", description = "The same parameters as the query: a form body, or JSON"),
    params(
        ("name" = Option<String>, Query), ("phone" = Option<String>, Query), ("email" = Option<String>, Query),
        ("comment" = Option<String>, Query), ("title" = Option<String>, Query), ("roistat" = Option<String>, Query, description = "The visit's number"),
        ("sync" = Option<String>, Query, description = "`1`: wait for the CRM and answer with its deal"),
    ),
    responses(
        (status = 200, description = "`{\"status\": \"success\", \"id\": …}`, with the deal's number when it was awaited"),
        (status = 400, description = "A parameter is malformed; the message names it", body = crate::http::openapi::ErrorBody),
        (status = 401, description = "No key, or an unknown one", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn add_lead(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let parameters = Parameters::decode(query.as_deref(), &headers, &read_body(body)?)?;
    let (source, proxy) = authenticate(&state, &parameters)?;
    let mut variables = Variables::from_request(&headers, client_ip);
    for (name, value) in &parameters.0 {
        if !name.contains('[') && name != "key" {
            variables.set_parameter(name, value);
        }
    }
    if let Some(visit) = parameters.get("roistat") {
        variables.set("visit", visit);
    }
    let sync = parameters.flag("sync")?;
    let lead = parse_lead(&parameters, source, proxy, &mut variables, state.phone_region)?;
    let skipped = lead.skip_sending;
    let id = match state.writer.insert(lead).await? {
        Inserted::Duplicate { id } => {
            return Ok(Json(json!({ "status": "success", "id": id, "duplicate": true })).into_response());
        }
        Inserted::New(id) | Inserted::Existing { id, .. } => id,
    };
    let visitor = proxy.wait_for_crm.as_ref();
    if skipped || (!sync && visitor.is_none()) {
        return Ok(Json(json!({ "status": "success", "id": id })).into_response());
    }
    let patience = Patience { sync: sync.then_some(proxy.sync_timeout), visitor: visitor.map(|wait| wait.wait) };
    let waited = wait_for_outcome(&state.store, id, patience).await;
    if sync {
        return Ok(sync_answer(id, waited?, visitor));
    }
    // Without sync=1 the site was promised the plain answer whatever the CRM does; the number is
    // added when it came in time.
    let settled = match waited {
        Ok(Waited::Settled(lead)) => Some(lead),
        Ok(Waited::Failed { .. } | Waited::OnItsWay) => None,
        Err(error) => {
            tracing::warn!(lead.id = %id, %error, "could not read the lead while waiting for its number");
            None
        }
    };
    Ok(match settled {
        Some(lead) => settled_answer(&lead, visitor),
        None => Json(json!({ "status": "success", "id": id })).into_response(),
    })
}

/// `GET` or `POST /api/proxy/1.0/leads/messages/add`: a note for the lead's CRM deal, sent now if
/// the deal exists, else as soon as the lead is delivered.
#[utoipa::path(method(get, post), path = "/api/proxy/1.0/leads/messages/add", tag = "proxy",
    security(("source_key_query" = [])),
    request_body(content_type = "application/x-www-form-urlencoded", description = "The same parameters as the query: a form body, or JSON"),
    params(("id" = i64, Query, description = "The lead's id"), ("message" = String, Query), ("title" = Option<String>, Query)),
    responses(
        (status = 200, description = "`{\"status\": \"success\"}`: sent, or kept for when the lead is delivered"),
        (status = 400, description = "A parameter is malformed; the message names it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "This source has no lead of that id", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn add_message(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let parameters = Parameters::decode(query.as_deref(), &headers, &read_body(body)?)?;
    let (source, _) = authenticate(&state, &parameters)?;
    let id_text = parameters.get("id").ok_or_else(|| ApiError::Invalid("id: не указан номер заявки".to_owned()))?;
    let id = id_text
        .trim()
        .parse::<i64>()
        .map(LeadId)
        .map_err(|_| ApiError::Invalid(format!("id: «{id_text}» не является номером заявки")))?;
    let message =
        parameters.text("message", TEXT_LIMIT)?.ok_or_else(|| ApiError::Invalid("message: пусто".to_owned()))?;
    let title = parameters.text("title", SHORT_TEXT_LIMIT)?;
    let lead = state.store.find_lead(id).await?.filter(|lead| lead.fields.source == source.id);
    let Some(lead) = lead else {
        return Err(ApiError::NotFound);
    };
    if lead.status == LeadStatus::Skipped {
        return Err(ApiError::Conflict(format!(
            "заявка {id} не отправляется в CRM (is_skip_sending), у неё не будет сделки"
        )));
    }
    let queued = state.store.queue_deal_note(lead.id, &json!({ "title": title, "text": message })).await?;
    let sent_now = queued.ok_or(ApiError::NotFound)?;
    Ok(Json(json!({
        "status": "success",
        "id": lead.id,
        "deal_id": lead.outcome.as_ref().and_then(|outcome| outcome.deal()).map(|deal| deal.record.id_json()),
        "queued_until_delivery": !sent_now,
    })))
}

/// The proxy source whose `key` the request carries; every key is compared in constant time.
fn authenticate<'a>(
    state: &'a AppState,
    parameters: &Parameters,
) -> Result<(&'a SourceConfig, &'a ProxySource), ApiError> {
    let presented = parameters.get("key").ok_or(ApiError::Unauthorized)?;
    let source = state.source_keys.matching(presented, |source| proxy_of(source).map(|proxy| &proxy.keys));
    let (source, proxy) = source.and_then(|source| Some((source, proxy_of(source)?))).ok_or(ApiError::Unauthorized)?;
    crate::telemetry::note_source(&source.id);
    state.intake_limits.admit(&source.id)?;
    Ok((source, proxy))
}

fn proxy_of(source: &SourceConfig) -> Option<&ProxySource> {
    match &source.kind {
        SourceKind::Proxy(proxy) => Some(proxy),
        _ => None,
    }
}

/// The lead the parameters describe, every template filled and every limit checked.
fn parse_lead(
    parameters: &Parameters,
    source: &SourceConfig,
    proxy: &ProxySource,
    variables: &mut Variables,
    region: crate::domain::PhoneRegion,
) -> Result<NewLead, ApiError> {
    for name in ["name", "phone", "email"] {
        if let Some(value) = parameters.get(name) {
            variables.set(name, value);
        }
    }
    let phone_text = parameters.text("phone", SHORT_TEXT_LIMIT)?.ok_or_else(|| {
        ApiError::Invalid("phone: не указан телефон клиента (без него клиента не найти в CRM)".to_owned())
    })?;
    let phone = Phone::parse(&phone_text, region)
        .map_err(|_| ApiError::Invalid(format!("phone: «{phone_text}» не является номером телефона")))?;
    let email = parameters
        .text("email", SHORT_TEXT_LIMIT)?
        .map(|text| {
            Email::parse(&text).map_err(|_| ApiError::Invalid(format!("email: «{text}» не является адресом e-mail")))
        })
        .transpose()?;
    let expanded = |name: &str, limit: usize| -> Result<Option<String>, ApiError> {
        let Some(template) = parameters.get(name) else { return Ok(None) };
        let text = variables
            .expand(template.trim(), limit)
            .map_err(|too_long| ApiError::Invalid(format!("{name}: {too_long}")))?;
        Ok(Some(text).filter(|text| !text.is_empty()))
    };
    let name = expanded("name", SHORT_TEXT_LIMIT)?.unwrap_or_else(|| "Без имени".to_owned());
    let comment = expanded("comment", TEXT_LIMIT)?;
    let mut deal = DealSpec { title: expanded("title", SHORT_TEXT_LIMIT)?, ..DealSpec::default() };
    let mut extra_length = 0;
    for (key, template) in &parameters.0 {
        let Some((group, field)) = bracketed(key) else { continue };
        if group != "fields" && group != "client_fields" || (group == "fields" && field == "charset") {
            continue;
        }
        // The fields share one budget, so each expansion may use only what the others left.
        extra_length += field.chars().count();
        let room = EXTRA_FIELDS_LIMIT.saturating_sub(extra_length);
        let value = variables.expand(template, room).map_err(|_| extra_fields_too_long())?;
        extra_length += value.chars().count();
        let target = field.parse::<CrmField>().map_err(|message| ApiError::Invalid(format!("{key}: {message}")))?;
        let target = match (group, target) {
            ("client_fields", CrmField::DealField(id)) => CrmField::ContactField(id),
            ("client_fields", _) => {
                return Err(ApiError::Invalid(format!("{key}: поля контакта задаются числовым id поля amoCRM")));
            }
            (_, target) => target,
        };
        deal.set(target, &value).map_err(|message| ApiError::Invalid(format!("{key}: {message}")))?;
    }
    if extra_length > EXTRA_FIELDS_LIMIT {
        return Err(extra_fields_too_long());
    }
    let duplicate_check = parameters.flag("is_need_check_order_in_processing")?.then(|| {
        let append = parameters.flag("is_need_check_order_in_processing_append").unwrap_or(false);
        DuplicateCheck {
            window: proxy.duplicate_window,
            append_note: append
                .then(|| repeat_note(&name, &phone, email.as_ref(), deal.title.as_deref(), comment.as_deref())),
        }
    });
    let payload: serde_json::Map<String, Value> = parameters
        .0
        .iter()
        .filter(|(name, _)| name.as_str() != "key")
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();
    Ok(NewLead {
        source: source.id.clone(),
        external_id: None,
        name,
        phone,
        email,
        comment,
        callback_url: None,
        payload: Value::Object(payload),
        routing: Routing::default(),
        origin_time: None,
        deal,
        skip_sending: parameters.flag("is_skip_sending")?,
        duplicate_check,
        call: None,
    })
}

/// What the earlier lead's deal is told when the client asks again.
fn repeat_note(name: &str, phone: &Phone, email: Option<&Email>, title: Option<&str>, comment: Option<&str>) -> String {
    let mut lines = vec!["Повторная заявка с сайта".to_owned(), format!("Имя: {name}"), format!("Телефон: {phone}")];
    lines.extend(email.map(|email| format!("E-mail: {email}")));
    lines.extend(title.map(|title| format!("Название: {title}")));
    lines.extend(comment.map(|comment| format!("Комментарий: {comment}")));
    lines.join("\n")
}

fn extra_fields_too_long() -> ApiError {
    ApiError::Invalid(format!(
        "fields: дополнительные поля (fields и client_fields) вместе длиннее {EXTRA_FIELDS_LIMIT} символов"
    ))
}

fn check_length(name: &str, text: &str, limit: usize) -> Result<(), ApiError> {
    let length = text.chars().count();
    if length > limit {
        return Err(ApiError::Invalid(format!("{name}: {length} символов, допускается не больше {limit}")));
    }
    Ok(())
}

/// `fields[price]` → (`fields`, `price`).
fn bracketed(key: &str) -> Option<(&str, &str)> {
    let (group, rest) = key.split_once('[')?;
    Some((group, rest.strip_suffix(']')?))
}

/// With `sync=1`: the lead's first delivery attempt, waited for up to the source's `sync_timeout`
/// (and at least its `wait_for_crm`). The CRM's answer is passed on: the deal id, or its error (the
/// lead stays queued for retries unless the CRM refused it for good). A lead still on its way
/// when the time is up is answered `202`; it is delivered in the background like any other.
fn sync_answer(id: LeadId, waited: Waited, visitor: Option<&WaitForCrm>) -> Response {
    match waited {
        Waited::Settled(lead) => settled_answer(&lead, visitor),
        Waited::Failed { error, will_retry } => crm_error(id, error, will_retry),
        Waited::OnItsWay => {
            let body = json!({ "status": "pending", "id": id, "message": "CRM ещё не ответила; заявка сохранена и будет доставлена" });
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
    }
}

/// A settled lead's deal and contact. `deal_number` is the CRM's own number of the deal; a source
/// that shows its visitors the number (`wait_for_crm`) gets the number people use (the id when the
/// CRM has no other) and `message`, its `registered_message`.
fn settled_answer(lead: &Lead, visitor: Option<&WaitForCrm>) -> Response {
    let outcome = lead.outcome.as_ref();
    let deal = outcome.and_then(|outcome| outcome.deal()).map(|deal| &deal.record);
    let mut body = json!({
        "status": "success",
        "id": lead.id,
        "deal_id": deal.map(|deal| deal.id_json()),
        "contact_id": outcome.and_then(|outcome| outcome.contact()).map(|contact| contact.record.id_json()),
    });
    if let Some(number) = deal.and_then(|deal| deal.number.as_ref()) {
        body["deal_number"] = json!(number);
    }
    if let Some((visitor, number)) = visitor.zip(outcome.and_then(|outcome| outcome.deal_number())) {
        body["deal_number"] = json!(number);
        body["message"] = json!(visitor.registered(number));
    }
    Json(body).into_response()
}

fn crm_error(id: LeadId, error: Option<String>, will_retry: bool) -> Response {
    let body = json!({ "status": "error", "id": id, "error": error.unwrap_or_default(), "will_retry": will_retry });
    (StatusCode::BAD_GATEWAY, Json(body)).into_response()
}

/// The request's parameters, decoded to text; a later value of the same name wins, as in PHP.
#[derive(Debug)]
struct Parameters(BTreeMap<String, String>);

impl Parameters {
    fn decode(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        let content_type = headers.get("content-type").and_then(|value| value.to_str().ok()).unwrap_or_default();
        let mut raw = query.map(|query| raw_pairs(query.as_bytes())).unwrap_or_default();
        let mut json_pairs = Vec::new();
        if content_type.starts_with("application/json") {
            json_pairs = flatten_json(body)?;
        } else if content_type.starts_with("multipart/") {
            return Err(ApiError::Invalid(
                "тело multipart не принимается: передайте параметры в строке запроса, формой (urlencoded) или JSON"
                    .to_owned(),
            ));
        } else if !body.is_empty() {
            raw.extend(raw_pairs(body));
        }
        let charset = raw.iter().rev().find(|(name, _)| name == b"fields[charset]").map(|(_, value)| value.clone());
        let encoding = charset
            .map(|label| {
                Encoding::for_label(label.trim_ascii()).ok_or_else(|| {
                    ApiError::Invalid(format!(
                        "fields[charset]: «{}» — неизвестная кодировка",
                        String::from_utf8_lossy(&label)
                    ))
                })
            })
            .transpose()?;
        let mut parameters = BTreeMap::new();
        for (name, value) in raw {
            let name = decode_text(&name, encoding, "имя параметра")?;
            let value = decode_text(&value, encoding, &name)?;
            parameters.insert(name, value);
        }
        parameters.extend(json_pairs);
        for (name, value) in &parameters {
            if let Some(character) = text::forbidden_char(name).or_else(|| text::forbidden_char(value)) {
                return Err(super::forbidden_char_error(name, character));
            }
        }
        Ok(Self(parameters))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A trimmed value within `limit` characters; blank is absent.
    fn text(&self, name: &str, limit: usize) -> Result<Option<String>, ApiError> {
        let Some(value) = self.get(name).map(str::trim).filter(|value| !value.is_empty()) else {
            return Ok(None);
        };
        check_length(name, value, limit)?;
        Ok(Some(value.to_owned()))
    }

    fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name).map(str::trim) {
            None | Some("" | "0" | "false") => Ok(false),
            Some("1" | "true") => Ok(true),
            Some(other) => Err(ApiError::Invalid(format!("{name}: «{other}» — ожидается 0 или 1"))),
        }
    }
}

fn decode_text(bytes: &[u8], encoding: Option<&'static Encoding>, what: &str) -> Result<String, ApiError> {
    match encoding {
        Some(encoding) => Ok(encoding.decode_without_bom_handling(bytes).0.into_owned()),
        None => String::from_utf8(bytes.to_vec()).map_err(|_| {
            ApiError::Invalid(format!(
                "{what}: значение не в UTF-8; если сайт в другой кодировке, укажите её в fields[charset]"
            ))
        }),
    }
}

/// `a=1&b=%D0%B0+b` as bytes, undecoded: the charset is only known once every pair is read.
fn raw_pairs(input: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let unescape = |part: &[u8]| -> Vec<u8> {
        let spaced: Vec<u8> = part.iter().map(|&byte| if byte == b'+' { b' ' } else { byte }).collect();
        percent_encoding::percent_decode(&spaced).collect()
    };
    input
        .split(|&byte| byte == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&byte| byte == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            (unescape(name), unescape(value))
        })
        .collect()
}

/// A JSON body in the same shape as the form: `{"fields": {"price": 1}}` → `fields[price]=1`.
fn flatten_json(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::Invalid(format!("тело запроса не является корректным JSON: {error}")))?;
    let Value::Object(object) = value else {
        return Err(ApiError::Invalid("ожидался JSON-объект с параметрами заявки".to_owned()));
    };
    let scalar = |name: &str, value: Value| -> Result<Option<String>, ApiError> {
        match value {
            Value::Null => Ok(None),
            Value::String(text) => Ok(Some(text)),
            Value::Number(number) => Ok(Some(number.to_string())),
            Value::Bool(flag) => Ok(Some(if flag { "1" } else { "0" }.to_owned())),
            _ => Err(ApiError::Invalid(format!("{name}: ожидалась строка или число"))),
        }
    };
    let mut pairs = Vec::new();
    for (name, value) in object {
        match value {
            Value::Object(inner) => {
                for (field, value) in inner {
                    let key = format!("{name}[{field}]");
                    if let Some(text) = scalar(&key, value)? {
                        pairs.push((key, text));
                    }
                }
            }
            value => {
                if let Some(text) = scalar(&name, value)? {
                    pairs.push((name, text));
                }
            }
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(query: &str) -> Result<Parameters, ApiError> {
        Parameters::decode(Some(query), &HeaderMap::new(), b"")
    }

    #[test]
    fn windows_1251_values_are_converted_when_the_charset_field_says_so() {
        // «Иван» in Windows-1251, as PHP's http_build_query sends it from a site in that encoding.
        let parameters = decode("name=%C8%E2%E0%ED&fields%5Bcharset%5D=Windows-1251").unwrap();
        assert_eq!(parameters.get("name"), Some("Иван"));
        let error = decode("name=%C8%E2%E0%ED").unwrap_err().to_string();
        assert!(error.contains("name") && error.contains("fields[charset]"), "{error}");
        assert!(decode("fields[charset]=klingon").unwrap_err().to_string().contains("klingon"));
    }

    #[test]
    fn json_bodies_flatten_to_the_form_shape() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        let body = br#"{"name":"Ivan","sync":1,"fields":{"price":100,"tags":"a, b"},"client_fields":{"264909":"CEO"}}"#;
        let parameters = Parameters::decode(None, &headers, body).unwrap();
        assert_eq!(parameters.get("fields[price]"), Some("100"));
        assert_eq!(parameters.get("client_fields[264909]"), Some("CEO"));
        assert!(parameters.flag("sync").unwrap());
        assert!(Parameters::decode(None, &headers, br#"{"name":["x"]}"#).unwrap_err().to_string().contains("name"));
    }

    #[test]
    fn plus_and_percent_escapes_and_repeated_names_follow_php() {
        let parameters = decode("comment=a+b%2Bc&title=first&title=second&flag").unwrap();
        assert_eq!(parameters.get("comment"), Some("a b+c"));
        assert_eq!(parameters.get("title"), Some("second"));
        assert_eq!(parameters.get("flag"), Some(""));
        assert!(decode("sync=yes").unwrap().flag("sync").unwrap_err().to_string().contains("sync"));
    }
}
