//! `GET /files/{sha256}/{token}/{name}`: a website lead's file, for whoever holds the signed link.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;

use super::AppState;
use super::error::ApiError;

/// Always a download, never rendered: a visitor's HTML must not run under this gateway's origin.
#[utoipa::path(get, path = "/files/{sha256}/{token}/{name}", tag = "forms",
    params(("sha256" = String, Path), ("token" = String, Path, description = "The link's signature"), ("name" = String, Path, description = "The file's name, as sent")),
    responses(
        (status = 200, description = "The file, as an attachment", content_type = "application/octet-stream"),
        (status = 404, description = "No file under that link", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn download(
    State(state): State<AppState>,
    Path((sha256, token, name)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let path = state.files.open_link(&sha256, &token).ok_or(ApiError::NotFound)?;
    let file = tokio::fs::File::open(&path).await.map_err(|_| ApiError::NotFound)?;
    let length = file.metadata().await.map_err(|error| ApiError::Files(error.to_string()))?.len();
    let encoded_name = percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC);
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        (header::CONTENT_LENGTH, length.to_string()),
        (header::CONTENT_DISPOSITION, format!("attachment; filename*=UTF-8''{encoded_name}")),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
    ];
    Ok((headers, Body::from_stream(ReaderStream::new(file))).into_response())
}
