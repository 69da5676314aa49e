//! `POST /api/tickets/{id}/files`: a multipart upload in field `file`, within the size limit.

use std::sync::Arc;

use axum::Json;
use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::parse_id;
use crate::Shared;
use crate::error::ApiError;
use crate::records::NewAttachment;

const FILE_FIELD: &str = "file";
/// Optional text field attaching the file to one of the ticket's messages.
const MESSAGE_FIELD: &str = "message_id";
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// What the multipart body held, read to its end even when the file is too large.
#[derive(Default)]
struct Upload {
    file: Option<NewAttachment>,
    /// A `file` field sent as a plain text field, without a file name.
    not_a_file: bool,
    too_large: bool,
    message_id: Option<String>,
}

pub async fn upload(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let ticket_id = parse_id(&id, "ticket")?;
    if !shared.lock().records.tickets.contains_key(&ticket_id) {
        return Err(ApiError::NotFound("ticket"));
    }
    let multipart = multipart.map_err(|rejection| ApiError::MalformedBody(rejection.body_text()))?;
    let limit = shared.config.max_upload_bytes;
    let upload = read_upload(multipart, limit).await?;
    if upload.too_large {
        return Err(ApiError::TooLarge { limit });
    }
    if upload.not_a_file {
        return Err(ApiError::invalid(FILE_FIELD, "must be a file"));
    }
    let mut file = upload.file.ok_or_else(|| ApiError::invalid(FILE_FIELD, "is required"))?;
    let mut state = shared.lock();
    if let Some(text) = upload.message_id.filter(|text| !text.is_empty()) {
        let message_id = text.parse::<u64>().map_err(|_| ApiError::invalid(MESSAGE_FIELD, "must be an integer"))?;
        let ticket = state.records.tickets.get(&ticket_id).ok_or(ApiError::NotFound("ticket"))?;
        if !ticket.messages.iter().any(|message| message.id == message_id) {
            return Err(ApiError::invalid(MESSAGE_FIELD, "names no message of this ticket"));
        }
        file.message_id = Some(message_id);
    }
    let attachment = state.records.add_attachment(ticket_id, file).ok_or(ApiError::NotFound("ticket"))?;
    let body = json!({
        "id": attachment.id,
        "file_name": attachment.file_name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "message_id": attachment.message_id,
    });
    Ok((StatusCode::CREATED, Json(body)))
}

/// Reads every field to the end, because answering before the body is read would make the
/// server drop the connection and the client see a reset instead of the 413.
async fn read_upload(mut multipart: Multipart, limit: usize) -> Result<Upload, ApiError> {
    let mut upload = Upload::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(upload),
            Err(_) if upload.too_large => return Ok(upload),
            Err(error) => return Err(ApiError::MalformedBody(error.body_text())),
        };
        match field.name() {
            Some(FILE_FIELD) => read_file(field, limit, &mut upload).await?,
            Some(MESSAGE_FIELD) => {
                upload.message_id = Some(field.text().await.map_err(|e| ApiError::MalformedBody(e.body_text()))?);
            }
            _ => drain(field, &mut upload).await?,
        }
    }
}

async fn read_file(mut field: Field<'_>, limit: usize, upload: &mut Upload) -> Result<(), ApiError> {
    let Some(file_name) = field.file_name().map(str::to_owned) else {
        upload.not_a_file = true;
        return drain(field, upload).await;
    };
    let content_type = field.content_type().unwrap_or(DEFAULT_CONTENT_TYPE).to_owned();
    let mut content = Vec::new();
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) if upload.too_large => drop(chunk),
            Ok(Some(chunk)) => {
                content.extend_from_slice(&chunk);
                if content.len() > limit {
                    upload.too_large = true;
                    content = Vec::new();
                }
            }
            Ok(None) => break,
            Err(_) if upload.too_large => return Ok(()),
            Err(error) => return Err(ApiError::MalformedBody(error.body_text())),
        }
    }
    if !upload.too_large {
        upload.file = Some(NewAttachment { file_name, content_type, message_id: None, content });
    }
    Ok(())
}

async fn drain(mut field: Field<'_>, upload: &mut Upload) -> Result<(), ApiError> {
    loop {
        match field.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            Err(_) if upload.too_large => return Ok(()),
            Err(error) => return Err(ApiError::MalformedBody(error.body_text())),
        }
    }
}
