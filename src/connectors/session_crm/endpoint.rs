//! One configured call made concrete: its templates rendered into a request, its answer read by pointers.

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value, escape_formatter};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::config::{Endpoint, HttpMethod, Template};
use crate::connectors::DeliveryError;
use crate::connectors::rate_limit::RateLimiter;
use crate::connectors::transport::{Reply, Upload};

/// How much of a CRM's refusal is kept in an error: enough to see which field it disliked.
const MESSAGE_LIMIT: usize = 300;

/// What a template that needs an absent value means for its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// A lookup by a value the lead lacks cannot find anything: the whole call is skipped.
    Lookup,
    /// A create leaves that field (or query parameter) out, as it leaves out empty ones.
    Create,
}

/// A request ready to send, and repeatable: nothing in it is consumed by sending.
pub(super) struct Prepared {
    pub method: Method,
    pub url: Url,
    pub body: Payload,
}

pub(super) enum Payload {
    None,
    Json(BTreeMap<String, String>),
    Upload(Upload),
}

/// The file an upload carries.
pub(super) struct File<'a> {
    pub name: &'a str,
    pub content_type: &'a str,
    pub content: bytes::Bytes,
}

/// Strict about undefined values, so an absent one is noticed instead of printed as nothing; but
/// `{% if lead.email %}` still works. Plain text: these are JSON strings and URLs, not HTML.
pub(super) fn environment() -> Environment<'static> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    environment.set_auto_escape_callback(|_| AutoEscape::None);
    // A JSON null among the received fields prints as nothing rather than as `none`.
    environment.set_formatter(
        |output, state, value| {
            if value.is_none() { Ok(()) } else { escape_formatter(output, state, value) }
        },
    );
    environment
}

/// Renders one template; `Ok(None)` when it needs a value the context lacks.
///
/// # Errors
/// `Misconfigured` for any other failure (a filter refusing its input).
pub(super) fn render(
    environment: &Environment<'static>,
    name: &str,
    template: &Template,
    context: &Value,
) -> Result<Option<String>, DeliveryError> {
    match environment.render_named_str(name, template.as_str(), context.clone()) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == ErrorKind::UndefinedError => Ok(None),
        Err(error) => Err(DeliveryError::Misconfigured(format!("the template {name} fails: {error}"))),
    }
}

/// The request `endpoint` describes for this context; `None` when a lookup is skipped.
///
/// # Errors
/// `Misconfigured` when a template fails, or a create's path needs a value the context lacks.
pub(super) fn prepare(
    environment: &Environment<'static>,
    call: &str,
    endpoint: &Endpoint,
    context: &Value,
    base_url: &Url,
    mode: Mode,
    file: Option<File<'_>>,
) -> Result<Option<Prepared>, DeliveryError> {
    let Some(path) = render(environment, &format!("api.{call}.path"), &endpoint.path, context)? else {
        return match mode {
            Mode::Lookup => Ok(None),
            Mode::Create => {
                Err(DeliveryError::Misconfigured(format!("api.{call}.path needs a value this call does not have")))
            }
        };
    };
    let Some(query) = render_fields(environment, call, "query", &endpoint.query, context, mode)? else {
        return Ok(None);
    };
    let Some(fields) = render_fields(environment, call, "body", &endpoint.body, context, mode)? else {
        return Ok(None);
    };
    let url = join(base_url, &path, &query);
    let body = match (file, &endpoint.multipart_field) {
        (Some(file), Some(field)) => Payload::Upload(Upload {
            fields: fields.into_iter().collect(),
            file_field: field.clone(),
            file_name: file.name.to_owned(),
            content_type: file.content_type.to_owned(),
            content: file.content,
        }),
        _ if endpoint.method == HttpMethod::Get => Payload::None,
        _ => Payload::Json(fields),
    };
    let method = Method::from_bytes(endpoint.method.as_str().as_bytes()).expect("configured methods are valid");
    Ok(Some(Prepared { method, url, body }))
}

/// Each field rendered, empty ones left out; `None` when a lookup needs an absent value.
fn render_fields(
    environment: &Environment<'static>,
    call: &str,
    part: &str,
    templates: &[(String, Template)],
    context: &Value,
    mode: Mode,
) -> Result<Option<BTreeMap<String, String>>, DeliveryError> {
    let mut rendered = BTreeMap::new();
    for (field, template) in templates {
        match render(environment, &format!("api.{call}.{part}.{field}"), template, context)? {
            Some(text) if !text.is_empty() => {
                rendered.insert(field.clone(), text);
            }
            Some(_) => {}
            None if mode == Mode::Lookup => return Ok(None),
            None => {}
        }
    }
    Ok(Some(rendered))
}

/// The base URL's own path stays in front, so a CRM served under a prefix works.
pub(super) fn join(base_url: &Url, path: &str, query: &BTreeMap<String, String>) -> Url {
    let mut url = base_url.clone();
    url.set_path(&format!("{}{path}", base_url.path().trim_end_matches('/')));
    url.set_query(None);
    url.set_fragment(None);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    url
}

/// A JSON answer, read only through the configured pointers.
pub(super) struct Answer(serde_json::Value);

impl Answer {
    /// An id may come as a number or a string; an empty one is none.
    pub fn read(&self, pointer: &str) -> Option<String> {
        match self.0.pointer(pointer)? {
            serde_json::Value::Number(number) => Some(number.to_string()),
            serde_json::Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
            _ => None,
        }
    }
}

/// What an answer that is not "the session is gone" means.
///
/// # Errors
/// 429 `RateLimited` (and every caller slows down); 5xx `Unavailable`, as the request may have
/// been carried out; 400 and 422 `Rejected` with the CRM's words; any other status `Misconfigured`.
pub(super) fn interpret(
    reply: Reply,
    label: &str,
    limiter: &RateLimiter,
    redact: &dyn Fn(&str) -> String,
) -> Result<Answer, DeliveryError> {
    let status = reply.status;
    match status {
        status if status.is_success() => {
            limiter.succeeded();
            if reply.bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Answer(serde_json::Value::Null));
            }
            serde_json::from_slice(&reply.bytes).map(Answer).map_err(|error| {
                DeliveryError::Unavailable(format!("{label} answered {status} with a body that is not JSON: {error}"))
            })
        }
        StatusCode::TOO_MANY_REQUESTS => {
            Err(DeliveryError::RateLimited { retry_in: limiter.throttle(reply.retry_after) })
        }
        status if status.is_server_error() => Err(DeliveryError::Unavailable(format!("{label} answered {status}"))),
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
            Err(DeliveryError::Rejected(format!("{label} answered {status}: {}", redact(&refusal(&reply)))))
        }
        status if status.is_redirection() => Err(DeliveryError::Misconfigured(format!(
            "{label} answered {status} (a redirect elsewhere than the login page; redirects are not followed)"
        ))),
        status => Err(DeliveryError::Misconfigured(format!("{label} answered {status}: {}", redact(&refusal(&reply))))),
    }
}

/// The CRM's own words: a JSON `message`, `detail` or `error` (Laravel, Django REST, others),
/// with the fields' errors when it lists them; else the text of a short non-HTML body.
fn refusal(reply: &Reply) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(&reply.bytes) {
        Ok(body) => {
            let message = ["message", "detail", "error"]
                .iter()
                .find_map(|key| body.get(key).and_then(serde_json::Value::as_str))
                .unwrap_or_default()
                .to_owned();
            match body.get("errors") {
                Some(errors) if !errors.is_null() => format!("{message} {errors}").trim().to_owned(),
                _ if message.is_empty() => body.to_string(),
                _ => message,
            }
        }
        Err(_) => {
            let text = String::from_utf8_lossy(&reply.bytes);
            if text.trim_start().starts_with('<') { String::new() } else { text.trim().to_owned() }
        }
    };
    if text.chars().count() > MESSAGE_LIMIT {
        format!("{}…", text.chars().take(MESSAGE_LIMIT).collect::<String>())
    } else {
        text
    }
}
