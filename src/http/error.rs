//! The one place where errors become HTTP answers.

use axum::Json;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::pbx::PbxApiError;
use crate::store::StoreError;

/// The partner contract's two fixed answers (seed `000_…`), byte for byte.
pub const MISSING_NAME_OR_PHONE: &str = "Ошибка! Имя пользователя или номер телефона не заполнены";
pub const INTERNAL_ERROR: &str = "Произошла внутренняя ошибка сервера";
/// Seconds a sender is asked to wait before repeating a request the database could not take.
pub const RETRY_AFTER_SECONDS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{MISSING_NAME_OR_PHONE}")]
    MissingNameOrPhone,
    /// Input we cannot accept; the message names the field and the problem.
    #[error("Ошибка! {0}")]
    Invalid(String),
    #[error("Ошибка! Неверный или отсутствующий ключ источника")]
    Unauthorized,
    #[error("Ошибка! Тело запроса больше {} байт", crate::http::MAX_BODY_BYTES)]
    PayloadTooLarge,
    #[error("Ошибка! Idempotency-Key «{0}» уже использован для другой заявки")]
    IdempotencyKeyReused(String),
    #[error("Ошибка! Неверный или отсутствующий токен администратора ([admin] token)")]
    AdminUnauthorized,
    #[error("Заявка не найдена")]
    NotFound,
    /// Only for the portal: it reads 404 as "this integration is gone".
    #[error("the advertiser is unknown or disabled")]
    AdvertiserNotFound,
    #[error("missing or wrong Basic credentials")]
    PortalUnauthorized,
    /// The request is valid but the lead's state does not allow it.
    #[error("Ошибка! {0}")]
    Conflict(String),
    /// A website form's fields, each with what is wrong with it, keyed by the form field's name.
    #[error("{message}")]
    FormRejected { message: String, errors: Vec<(String, String)> },
    /// A form posted from a site it does not accept.
    #[error("{0}")]
    Forbidden(String),
    #[error("{message}")]
    /// Answered with `Retry-After`, in whole seconds.
    TooManyRequests { message: String, retry_after: std::time::Duration },
    /// A form's files are larger than any form here accepts.
    #[error("{0}")]
    FormTooLarge(String),
    #[error("Форма не найдена")]
    FormNotFound,
    /// No telephony source of this name takes this PBX's events.
    #[error("Ошибка! Нет источника телефонии с таким именем для этой АТС")]
    TelephonySourceNotFound,
    /// `GET /metrics` without `[admin] metrics_token` configured.
    #[error("Ошибка! Метрики выключены: задайте [admin] metrics_token")]
    MetricsOff,
    #[error("Ошибка! Неверный или отсутствующий токен метрик ([admin] metrics_token)")]
    MetricsUnauthorized,
    /// A signed recording link of a call whose PBX announced no recording.
    #[error("Запись разговора не найдена")]
    RecordingNotFound,
    /// The telephony source has no credentials for its PBX's API.
    #[error(
        "Ошибка! У источника «{0}» нет доступа к API АТС: задайте client_id и client_secret (Telphin) или api_key (Zadarma)"
    )]
    PbxApiMissing(String),
    /// The PBX's API did not do what was asked.
    #[error("Ошибка АТС: {0}")]
    Pbx(#[from] PbxApiError),
    /// A form's page could not be rendered (a template fault, not the visitor's).
    #[error("{INTERNAL_ERROR}")]
    Page(String),
    /// A visitor's file could not be written to the file store.
    #[error("{INTERNAL_ERROR}")]
    Files(String),
    #[error("{INTERNAL_ERROR}")]
    Internal(StoreError),
    /// The database cannot take the request now; nothing was stored and a repeat can succeed.
    #[error("Сервис временно недоступен, повторите запрос через {RETRY_AFTER_SECONDS} с")]
    Unavailable(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() { Self::Unavailable(error) } else { Self::Internal(error) }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingNameOrPhone | Self::Invalid(_) | Self::FormRejected { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::AdminUnauthorized | Self::MetricsUnauthorized => StatusCode::UNAUTHORIZED,
            Self::MetricsOff => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::IdempotencyKeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound | Self::AdvertiserNotFound | Self::FormNotFound | Self::TelephonySourceNotFound => {
                StatusCode::NOT_FOUND
            }
            Self::FormTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::PortalUnauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RecordingNotFound | Self::Pbx(PbxApiError::NotFound(_)) => StatusCode::NOT_FOUND,
            Self::PbxApiMissing(_) => StatusCode::CONFLICT,
            Self::Pbx(PbxApiError::Unauthorized(_) | PbxApiError::Refused(_)) => StatusCode::BAD_GATEWAY,
            Self::Pbx(PbxApiError::Unavailable(_)) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) | Self::Page(_) | Self::Files(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Internal(error) => tracing::error!(%error, "request failed on our side"),
            Self::Unavailable(error) => tracing::warn!(%error, "the database could not take the request; answered 503"),
            Self::Page(error) => tracing::error!(%error, "could not render a form's page"),
            Self::Files(error) => tracing::error!(%error, "could not store a visitor's file"),
            Self::Pbx(error) => tracing::warn!(%error, "the PBX's API refused or failed"),
            _ => {}
        }
        // A form's page reads `message` and puts each of `errors` next to its field.
        let body = match &self {
            Self::FormRejected { message, errors } => {
                let errors: serde_json::Map<String, serde_json::Value> =
                    errors.iter().map(|(field, problem)| (field.clone(), json!(problem))).collect();
                json!({ "status": "error", "message": message, "errors": errors })
            }
            Self::Forbidden(message) | Self::TooManyRequests { message, .. } | Self::FormTooLarge(message) => {
                json!({ "status": "error", "error": message, "message": message })
            }
            _ => json!({ "error": self.to_string() }),
        };
        let mut response = (status, Json(body)).into_response();
        let challenge = match self {
            Self::PortalUnauthorized => Some("Basic realm=\"leadgate\""),
            Self::Unauthorized | Self::AdminUnauthorized | Self::MetricsUnauthorized => Some("Bearer"),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static(challenge));
        }
        if let Self::TooManyRequests { retry_after, .. } = &self {
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from(retry_after.as_secs()));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}

/// Errors that the router and the extractors answer by themselves (no such route, a method the
/// route lacks, a path or query that cannot be decoded, a body axum refused) come as plain text
/// or empty; here they take the documented `{"error": …}` shape, so every error reads the same.
pub async fn json_errors(method: Method, response: Response) -> Response {
    let status = response.status();
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let shaped = content_type.starts_with("application/json") || content_type.starts_with("text/html");
    if !(status.is_client_error() || status.is_server_error()) || shaped {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let detail = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let detail = crate::domain::text::strip_forbidden(String::from_utf8_lossy(&detail).trim()).into_owned();
    let message = match status {
        StatusCode::NOT_FOUND => "Ошибка! Такого адреса нет".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => format!("Ошибка! Метод {method} по этому адресу не поддерживается"),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge.to_string(),
        _ if detail.is_empty() => format!("Ошибка! {status}"),
        _ => format!("Ошибка! Запрос не разобран: {detail}"),
    };
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::to_vec(&json!({ "error": message })).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// The console's errors: its pages are HTML for people, so its answers are pages too (in both
/// languages, since an error may come before the console knows whose it is).
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No session, or one that expired or was ended: the login page.
    #[error("sign in required")]
    SignInRequired,
    /// A viewer asked for what only admins may do.
    #[error("admins only")]
    Forbidden,
    /// A form came without this session's CSRF token (or with another's).
    #[error("the form's CSRF token is missing or wrong")]
    CsrfRejected,
    #[error("not found")]
    NotFound,
    /// A form value that cannot be read; the text names the field.
    #[error("{0}")]
    Invalid(String),
    #[error("a console page could not be rendered")]
    Page(#[from] askama::Error),
    #[error("{INTERNAL_ERROR}")]
    Internal(StoreError),
    #[error("the database is unavailable")]
    Unavailable(StoreError),
}

impl From<StoreError> for ConsoleError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() { Self::Unavailable(error) } else { Self::Internal(error) }
    }
}

#[derive(askama::Template)]
#[template(path = "console/error.html")]
struct ConsoleErrorPage<'a> {
    status: u16,
    russian: &'a str,
    english: &'a str,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, russian, english) = match &self {
            Self::SignInRequired => {
                return (StatusCode::SEE_OTHER, [(axum::http::header::LOCATION, "/admin/login")]).into_response();
            }
            Self::Forbidden => (StatusCode::FORBIDDEN, "Это доступно только администраторам.", "Admins only."),
            Self::CsrfRejected => (
                StatusCode::FORBIDDEN,
                "Форма устарела или пришла не со страницы консоли. Откройте страницу заново.",
                "The form is stale or did not come from a console page. Open the page again.",
            ),
            Self::NotFound => (StatusCode::NOT_FOUND, "Не найдено.", "Not found."),
            Self::Invalid(message) => (StatusCode::BAD_REQUEST, message.as_str(), message.as_str()),
            Self::Page(error) => {
                tracing::error!(%error, "could not render a console page");
                (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR, "Internal error.")
            }
            Self::Internal(error) => {
                tracing::error!(?error, "a console request failed on our side");
                (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR, "Internal error.")
            }
            Self::Unavailable(error) => {
                tracing::warn!(?error, "the database could not take a console request; answered 503");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "База данных недоступна, повторите позже.",
                    "The database is unavailable; try again later.",
                )
            }
        };
        let page = ConsoleErrorPage { status: status.as_u16(), russian, english };
        match askama::Template::render(&page) {
            Ok(html) => (status, axum::response::Html(html)).into_response(),
            Err(_) => status.into_response(),
        }
    }
}
