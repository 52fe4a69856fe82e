//! An item's conversation, its files and its history.

use std::sync::Arc;

use axum::Json;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tandem_core::commands::{AddAttachment, NewFile, PostMessage};
use tandem_core::{Attachment, AttachmentId, Body, Event, Item, Message, Visibility};

use super::{Param, created};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::AppState;

pub async fn list_messages(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
) -> ApiResult<Json<Vec<Message>>> {
    Ok(Json(s.desk().messages(&actor, item.item()?).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    /// Required: defaulting to public would let a forgotten field mail an internal note to
    /// the requester.
    visibility: Visibility,
    body: Body,
}

#[derive(Debug, Serialize)]
pub struct PostedView {
    message: Message,
    attachments: Vec<Attachment>,
    item: Item,
}

pub(crate) fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large("the request body is larger than this server accepts")
    } else {
        ApiError::bad_request(format!("malformed multipart body: {}", e.body_text()))
    }
}

pub(crate) async fn multipart(req: Request, s: &AppState) -> ApiResult<Multipart> {
    Multipart::from_request(req, s).await.map_err(|e| ApiError::bad_request(e.body_text()))
}

async fn text_part(field: Field<'_>, name: &str) -> ApiResult<String> {
    field.text().await.map_err(|e| match multipart_error(e) {
        e if e.status == StatusCode::PAYLOAD_TOO_LARGE => e,
        _ => ApiError::invalid(name, "must be UTF-8 text"),
    })
}

async fn file_part(field: Field<'_>) -> ApiResult<NewFile> {
    let filename = field.file_name().unwrap_or_default().to_string();
    let content_type = field.content_type().unwrap_or("application/octet-stream").to_string();
    let bytes = field.bytes().await.map_err(multipart_error)?;
    Ok(NewFile { filename, content_type, bytes: Arc::from(&bytes[..]) })
}

pub(crate) fn is_multipart(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim().to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// A message from a multipart form: `visibility`, `body`, optional `format` (`text` or
/// `html`) and any number of `file` parts.
async fn message_from_form(mut form: Multipart) -> ApiResult<(Visibility, Body, Vec<NewFile>)> {
    let (mut visibility, mut body, mut format, mut files) = (None, None, None, Vec::new());
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "visibility" => visibility = Some(text_part(field, "visibility").await?),
            "body" => body = Some(text_part(field, "body").await?),
            "format" => format = Some(text_part(field, "format").await?),
            "file" | "files" => files.push(file_part(field).await?),
            other => {
                return Err(ApiError::invalid(
                    other,
                    "unknown form field; expected visibility, body, format or file",
                ));
            }
        }
    }
    let visibility = match visibility.as_deref().map(str::trim) {
        Some("public") => Visibility::Public,
        Some("internal") => Visibility::Internal,
        Some(_) => return Err(ApiError::invalid("visibility", "must be public or internal")),
        None => return Err(ApiError::invalid("visibility", "is required (public or internal)")),
    };
    let content = body.ok_or_else(|| ApiError::invalid("body", "is required"))?;
    let body = match format.as_deref().map(str::trim) {
        None | Some("text") => Body::Text(content),
        Some("html") => Body::Html(content),
        Some(_) => return Err(ApiError::invalid("format", "must be text or html")),
    };
    Ok((visibility, body, files))
}

/// Posts a message: JSON for text-only messages, multipart when files come with it.
pub async fn post_message(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
    req: Request,
) -> ApiResult<(StatusCode, Json<PostedView>)> {
    let item = item.item()?;
    let (visibility, body, files) = if is_multipart(&req) {
        message_from_form(multipart(req, &s).await?).await?
    } else {
        let JsonBody(m) = JsonBody::<MessageBody>::from_request(req, &s).await?;
        (m.visibility, m.body, Vec::new())
    };
    let cmd = PostMessage { files, ..PostMessage::new(item, visibility, body) };
    let posted = s.desk().execute(&actor, &cmd).await?;
    Ok(created(PostedView { message: posted.message, attachments: posted.attachments, item: posted.item }))
}

pub async fn list_attachments(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
) -> ApiResult<Json<Vec<Attachment>>> {
    Ok(Json(s.desk().attachments(&actor, item.item()?).await?))
}

/// Uploads one file (multipart, a single `file` part) to an item.
pub async fn upload_attachment(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
    req: Request,
) -> ApiResult<(StatusCode, Json<Attachment>)> {
    let item = item.item()?;
    if !is_multipart(&req) {
        return Err(ApiError::bad_request("expected a multipart/form-data body with a 'file' part"));
    }
    let mut form = multipart(req, &s).await?;
    let mut file = None;
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        match field.name().unwrap_or_default() {
            "file" if file.is_none() => file = Some(file_part(field).await?),
            "file" => return Err(ApiError::invalid("file", "upload one file per request")),
            other => return Err(ApiError::invalid(other.to_string(), "unknown form field; expected file")),
        }
    }
    let file = file.ok_or_else(|| ApiError::invalid("file", "is required"))?;
    Ok(created(s.desk().execute(&actor, &AddAttachment { item, file }).await?))
}

/// RFC 8187 `attr-char`s stay as they are; every other byte is percent-encoded.
fn rfc8187(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `attachment; filename="ascii fallback"; filename*=UTF-8''percent-encoded`.
pub fn content_disposition(filename: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{}", rfc8187(filename))
}

/// Downloads a file. Always as an attachment, never sniffed or rendered inline: uploaded HTML
/// must not run in the API's origin.
pub async fn download_attachment(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Response> {
    let id: AttachmentId = id.id("attachment")?;
    let (attachment, bytes) = s.desk().attachment(&actor, id).await?;
    let content_type = HeaderValue::from_str(&attachment.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&content_disposition(&attachment.filename))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

pub async fn history(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
) -> ApiResult<Json<Vec<Event>>> {
    Ok(Json(s.desk().history(&actor, item.item()?).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_are_safe_and_keep_unicode() {
        assert_eq!(
            content_disposition("report 2026.pdf"),
            "attachment; filename=\"report 2026.pdf\"; filename*=UTF-8''report%202026.pdf"
        );
        let d = content_disposition("offerte \"€\".pdf");
        assert!(d.contains("filename=\"offerte ___.pdf\""), "{d}");
        assert!(d.contains("filename*=UTF-8''offerte%20%22%E2%82%AC%22.pdf"), "{d}");
        assert!(HeaderValue::from_str(&d).is_ok());
    }
}
