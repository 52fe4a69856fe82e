//! Public web forms, one per item type that has one ([`tandem_core::WebForm`] in the portal
//! settings), generated from the type's custom fields.
//!
//! - `GET /forms/{ws}/{type}` renders the form; `POST` submits it (multipart, so files can
//!   come along) and answers with the thanks page or the form again with each error beside its
//!   field.
//! - Every field is checked with the core's `validate_values` (the API's validation) so all
//!   errors show at once; the submission itself is `SubmitForm`, which validates again in the
//!   commit's decision. Nothing is created unless everything is valid.
//! - Guards: a CSRF token (the session's, or a guest's signed one bound to a cookie), a per-IP
//!   rate limit, a honeypot field, upload size, count and type limits.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use tandem_core::commands::{Guest, NewFile, PortalFace, SubmitForm};
use tandem_core::fields::validate_values;
use tandem_core::hierarchy::validate_title;
use tandem_core::people::normalise_email;
use tandem_core::{Actor, DeskError, FieldDef, FieldKind, ItemType, ItemTypeId, WebForm, WorkspaceId};

use crate::WebState;
use crate::page::{
    CSRF_FIELD, ClientIp, HONEYPOT_FIELD, PageError, PageResult, csrf_for, csrf_ok, csrf_refused, face,
    guard_fields, layout, too_many, with_cookie, workspace,
};
use crate::state::{Bucket, PortalSession};

pub(crate) fn routes(body_limit: usize) -> Router<WebState> {
    Router::new()
        .route("/forms/{ws}/{item_type}", get(show).post(submit).layer(DefaultBodyLimit::max(body_limit)))
        .route("/forms/{ws}/{item_type}/thanks", get(thanks))
}

/// File names a form accepts: documents, images, spreadsheets, archives — nothing a browser
/// would run or render as a page.
const ALLOWED_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "heic", "pdf", "txt", "log", "csv", "doc", "docx", "xls", "xlsx",
    "ppt", "pptx", "odt", "ods", "odp", "rtf", "zip", "eml", "msg",
];

/// Checks an upload's name and type against the allow-list; the reason when refused.
pub(crate) fn check_upload(filename: &str, content_type: &str) -> Result<(), String> {
    let ext = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    if !ALLOWED_EXTENSIONS.contains(&ext.as_str()) {
        return Err(format!(
            "'{filename}' is not a file type this form accepts ({})",
            ALLOWED_EXTENSIONS.join(", ")
        ));
    }
    let ct = content_type.to_ascii_lowercase();
    if ct.contains("html")
        || ct.contains("javascript")
        || ct.contains("svg")
        || ct.contains("xml") && !ct.contains("officedocument")
    {
        return Err(format!("'{filename}' has a content type this form does not accept ({content_type})"));
    }
    Ok(())
}

/// A byte count for people: `2000 bytes`, `1.5 MB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else if bytes < MB {
        format!("{:.0} KB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    }
}

/// What a submitted form said, kept to render it again.
#[derive(Debug, Default, Clone)]
pub(crate) struct Submitted {
    pub csrf: String,
    pub honeypot: String,
    pub name: String,
    pub email: String,
    pub title: String,
    pub description: String,
    /// Raw values per custom field key (several for a multi-choice).
    pub custom: BTreeMap<String, Vec<String>>,
    pub files: Vec<NewFile>,
}

/// Errors by field (`title`, `custom.due`, `files`...); `""` for the form as a whole.
type Errors = BTreeMap<String, String>;

fn multipart_error(e: MultipartError) -> PageError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        PageError::new(StatusCode::PAYLOAD_TOO_LARGE, "The upload is larger than this form accepts.")
    } else {
        PageError::new(StatusCode::BAD_REQUEST, format!("The form could not be read: {}", e.body_text()))
    }
}

/// Reads a multipart form; files over the limits or of refused types become errors.
pub(crate) async fn read_form(
    state: &WebState,
    mut form: Multipart,
    errors: &mut Errors,
) -> PageResult<Submitted> {
    let mut s = Submitted::default();
    let max_bytes = state.limits.max_upload_bytes.min(state.desk.limits().max_attachment_bytes);
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "files" {
            let filename = field.file_name().unwrap_or_default().to_string();
            let content_type = field.content_type().unwrap_or("application/octet-stream").to_string();
            let bytes = field.bytes().await.map_err(multipart_error)?;
            if filename.is_empty() && bytes.is_empty() {
                continue; // an empty file input
            }
            if bytes.len() as u64 > max_bytes {
                errors
                    .insert("files".into(), format!("'{filename}' is larger than {}", human_size(max_bytes)));
                continue;
            }
            if let Err(reason) = check_upload(&filename, &content_type) {
                errors.insert("files".into(), reason);
                continue;
            }
            if s.files.len() >= state.limits.max_files {
                errors.insert("files".into(), format!("at most {} files", state.limits.max_files));
                continue;
            }
            s.files.push(NewFile { filename, content_type, bytes: Arc::from(&bytes[..]) });
            continue;
        }
        let text = field.text().await.map_err(multipart_error)?;
        match name.as_str() {
            CSRF_FIELD => s.csrf = text,
            HONEYPOT_FIELD => s.honeypot = text,
            "name" => s.name = text,
            "email" => s.email = text,
            "title" => s.title = text,
            "description" => s.description = text,
            other => {
                if let Some(key) = other.strip_prefix("custom.") {
                    s.custom.entry(key.to_string()).or_default().push(text);
                }
                // Anything else is not ours: ignored, like a browser would.
            }
        }
    }
    Ok(s)
}

/// The JSON value a field's raw form input stands for; `None` when left empty.
fn form_value(def: &FieldDef, raw: Option<&Vec<String>>) -> Option<Value> {
    let raw = raw.map(|v| v.as_slice()).unwrap_or_default();
    match def.kind {
        FieldKind::MultiChoice => {
            let picked: Vec<Value> =
                raw.iter().filter(|v| !v.is_empty()).map(|v| Value::String(v.clone())).collect();
            (!picked.is_empty()).then_some(Value::Array(picked))
        }
        FieldKind::Checkbox => raw.first().map(|v| Value::String(v.clone())),
        _ => raw.first().filter(|v| !v.trim().is_empty()).map(|v| Value::String(v.clone())),
    }
}

/// Every error at once: each field on its own through the core's validation, then the
/// subject and, for guests, who is asking.
fn check(t: &ItemType, form: &WebForm, s: &Submitted, guest: bool) -> (BTreeMap<String, Value>, Errors) {
    let mut errors = Errors::new();
    let mut custom = BTreeMap::new();
    for def in t.fields.iter().filter(|f| !f.internal) {
        let value = form_value(def, s.custom.get(&def.key));
        let submitted: BTreeMap<String, Value> =
            value.clone().map(|v| (def.key.clone(), v)).into_iter().collect();
        match validate_values(std::slice::from_ref(def), &BTreeMap::new(), &submitted) {
            Ok(_) => {
                if let Some(v) = value {
                    custom.insert(def.key.clone(), v);
                }
            }
            Err(e) => {
                errors.insert(e.field, e.reason);
            }
        }
    }
    if !form.survey
        && let Err(e) = validate_title("title", &s.title, 300)
    {
        errors.insert(e.field, e.reason);
    }
    if guest {
        if let Err(e) = validate_title("name", &s.name, 200) {
            errors.insert(e.field, e.reason);
        }
        if let Err(e) = normalise_email("email", &s.email) {
            errors.insert(e.field, e.reason);
        }
    }
    (custom, errors)
}

async fn show(
    State(state): State<WebState>,
    Path((ws, item_type)): Path<(String, String)>,
    headers: HeaderMap,
) -> PageResult<Response> {
    let ws = workspace(&ws)?;
    let face = face(&state, ws).await?;
    let t = item_type.parse::<ItemTypeId>().map_err(|_| PageError::not_found())?;
    let (t, form) = face.form(t).cloned().ok_or_else(PageError::not_found)?;
    let session = state.sign_in.session(ws, &headers).await;
    let csrf = csrf_for(&state, ws, &headers, session.as_ref());
    let page = render(&face, &t, &form, session.as_ref(), &csrf.token, &Submitted::default(), &Errors::new());
    Ok(with_cookie(&csrf, page))
}

async fn submit(
    State(state): State<WebState>,
    Path((ws, item_type)): Path<(String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: Multipart,
) -> PageResult<Response> {
    let ws = workspace(&ws)?;
    let face = face(&state, ws).await?;
    let t = item_type.parse::<ItemTypeId>().map_err(|_| PageError::not_found())?;
    let (t, form_def) = face.form(t).cloned().ok_or_else(PageError::not_found)?;
    if !state.rate.allow(Bucket::Submit, ip, state.limits.submissions_per_minute) {
        return Err(too_many());
    }
    let session = state.sign_in.session(ws, &headers).await;
    let mut errors = Errors::new();
    let submitted = read_form(&state, form, &mut errors).await?;
    if !csrf_ok(&state, ws, &headers, session.as_ref(), &submitted.csrf) {
        return Err(csrf_refused());
    }
    let thanks = |number: Option<i64>| {
        let n = number.map(|n| format!("?n={n}")).unwrap_or_default();
        Redirect::to(&format!("/forms/{ws}/{}/thanks{n}", t.id)).into_response()
    };
    if !submitted.honeypot.is_empty() {
        // A bot: answered like a success, so it learns nothing; nothing is stored.
        tracing::info!(workspace = %ws, "a web form submission filled the honeypot; dropped");
        return Ok(thanks(None));
    }
    let guest = session.is_none();
    if guest && !face.settings.open_forms {
        let to = format!("/portal/{ws}/sign-in?next=/forms/{ws}/{}", t.id);
        return Ok(Redirect::to(&to).into_response());
    }
    if !form_def.attachments && !submitted.files.is_empty() {
        errors.insert("files".into(), "this form takes no attachments".into());
    }
    let (custom, more) = check(&t, &form_def, &submitted, guest);
    errors.extend(more);
    let csrf = csrf_for(&state, ws, &headers, session.as_ref());
    let again = |errors: &Errors| {
        let page = render(&face, &t, &form_def, session.as_ref(), &csrf.token, &submitted, errors);
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    };
    if !errors.is_empty() {
        return Ok(again(&errors));
    }
    let command = SubmitForm {
        item_type: t.id,
        title: submitted.title.clone(),
        description: submitted.description.clone(),
        custom,
        files: submitted.files.clone(),
        guest: guest.then(|| Guest { name: submitted.name.clone(), email: submitted.email.clone() }),
    };
    let actor = match &session {
        Some(s) => s.actor.clone(),
        None => Actor::system(ws),
    };
    match state.desk.execute(&actor, &command).await {
        Ok(item) => {
            // A guest cannot open the item (they have not signed in), so the number is all
            // the thanks page shows; a signed-in requester goes to it.
            if session.is_some() {
                Ok(Redirect::to(&format!("/portal/{ws}/requests/{}?submitted=1", item.number))
                    .into_response())
            } else {
                Ok(thanks(Some(item.number)))
            }
        }
        Err(DeskError::Invalid(e)) => {
            let field = if e.field.starts_with("files") { "files".to_string() } else { e.field };
            Ok(again(&BTreeMap::from([(field, e.reason)])))
        }
        Err(DeskError::TooLarge { what, limit, .. }) => Ok(again(&BTreeMap::from([(
            "files".to_string(),
            format!("{what} is larger than {limit} bytes"),
        )]))),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct ThanksQuery {
    n: Option<i64>,
}

async fn thanks(
    State(state): State<WebState>,
    Path((ws, item_type)): Path<(String, String)>,
    Query(q): Query<ThanksQuery>,
    headers: HeaderMap,
) -> PageResult<Markup> {
    let ws = workspace(&ws)?;
    let face = face(&state, ws).await?;
    let t = item_type.parse::<ItemTypeId>().map_err(|_| PageError::not_found())?;
    let (t, form) = face.form(t).cloned().ok_or_else(PageError::not_found)?;
    let session = state.sign_in.session(ws, &headers).await;
    let heading = form.title.clone().unwrap_or_else(|| t.name.clone());
    Ok(layout(
        &face,
        "Thank you",
        session.as_ref(),
        html! {
            h1 { "Thank you" }
            div.notice role="status" {
                @if form.survey { "Your answers to " (heading) " were recorded." }
                @else { "We received your request" }
                @if let Some(n) = q.n { " (#" (n) ")" }
                "."
            }
            p { a href={ "/portal/" (ws) } { "Back to " (face.name()) } }
        },
    ))
}

fn input_id(key: &str) -> String {
    format!("f-{key}")
}

/// One labelled input with its help and error; `aria-describedby` ties both to it.
fn field_row(
    id: &str,
    label: &str,
    required: bool,
    help: Option<&str>,
    error: Option<&String>,
    input: Markup,
) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) @if required { " " span.required aria-hidden="true" { "*" } } }
            @if let Some(help) = help { p.help id={ (id) "-help" } { (help) } }
            (input)
            @if let Some(e) = error { p.error id={ (id) "-error" } role="alert" { (e) } }
        }
    }
}

fn described_by(id: &str, help: bool, error: bool) -> Option<String> {
    let mut parts = Vec::new();
    if help {
        parts.push(format!("{id}-help"));
    }
    if error {
        parts.push(format!("{id}-error"));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn custom_field(def: &FieldDef, s: &Submitted, errors: &Errors) -> Markup {
    let id = input_id(&def.key);
    let name = format!("custom.{}", def.key);
    let error = errors.get(&name);
    let help = def.help.as_deref();
    let describe = described_by(&id, help.is_some(), error.is_some());
    let invalid = error.map(|_| "true");
    let values = s.custom.get(&def.key).cloned().unwrap_or_default();
    let first = values.first().cloned().unwrap_or_default();
    let required = def.required;
    match def.kind {
        FieldKind::MultiChoice | FieldKind::Checkbox => {
            let options: Vec<String> =
                if def.kind == FieldKind::Checkbox { vec!["true".into()] } else { def.rules.options.clone() };
            html! {
                div.field {
                    fieldset aria-describedby=[describe.as_deref()] aria-invalid=[invalid] id=(id) {
                        legend { (def.label) @if required { " " span.required aria-hidden="true" { "*" } } }
                        @if let Some(help) = help { p.help id={ (id) "-help" } { (help) } }
                        @for (i, option) in options.iter().enumerate() {
                            @let oid = format!("{id}-{i}");
                            label.option for=(oid) {
                                input type="checkbox" id=(oid) name=(name) value=(option) checked[values.contains(option)];
                                @if def.kind == FieldKind::Checkbox { "Yes" } @else { (option) }
                            }
                        }
                        @if let Some(e) = error { p.error id={ (id) "-error" } role="alert" { (e) } }
                    }
                }
            }
        }
        FieldKind::Choice => field_row(
            &id,
            &def.label,
            required,
            help,
            error,
            html! {
                select id=(id) name=(name) required[required] aria-describedby=[describe.as_deref()] aria-invalid=[invalid] {
                    option value="" { "Choose…" }
                    @for option in &def.rules.options {
                        option value=(option) selected[&first == option] { (option) }
                    }
                }
            },
        ),
        FieldKind::LongText => field_row(
            &id,
            &def.label,
            required,
            help,
            error,
            html! {
                textarea id=(id) name=(name) required[required] aria-describedby=[describe.as_deref()] aria-invalid=[invalid] { (first) }
            },
        ),
        kind => {
            let input_type = match kind {
                FieldKind::Number => "number",
                FieldKind::Date => "date",
                FieldKind::Datetime => "text",
                FieldKind::Url => "url",
                FieldKind::Email => "email",
                _ => "text",
            };
            field_row(
                &id,
                &def.label,
                required,
                help,
                error,
                html! {
                    input type=(input_type) id=(id) name=(name) value=(first) step=[(kind == FieldKind::Number).then_some("any")]
                        required[required] aria-describedby=[describe.as_deref()] aria-invalid=[invalid];
                },
            )
        }
    }
}

fn plain_input(id: &str, name: &str, kind: &str, value: &str, error: Option<&String>) -> Markup {
    let describe = described_by(id, false, error.is_some());
    html! {
        input type=(kind) id=(id) name=(name) value=(value) required aria-describedby=[describe.as_deref()] aria-invalid=[error.map(|_| "true")];
    }
}

fn render(
    face: &PortalFace,
    t: &ItemType,
    form: &WebForm,
    session: Option<&PortalSession>,
    csrf: &str,
    s: &Submitted,
    errors: &Errors,
) -> Markup {
    let ws: WorkspaceId = face.workspace.id;
    let heading = form.title.clone().unwrap_or_else(|| t.name.clone());
    let needs_sign_in = session.is_none() && !face.settings.open_forms;
    layout(
        face,
        &heading,
        session,
        html! {
            h1 { (heading) }
            @if let Some(intro) = &form.intro { p.intro { (intro) } }
            @if needs_sign_in {
                div.notice { "Please " a href={ "/portal/" (ws) "/sign-in?next=/forms/" (ws) "/" (t.id) } { "sign in" } " to submit this form." }
            }
            @if !errors.is_empty() {
                div.error role="alert" id="form-errors" { "Please correct the " (errors.len()) " problem(s) marked below." }
            }
            form.card method="post" action={ "/forms/" (ws) "/" (t.id) } enctype="multipart/form-data" novalidate {
                (guard_fields(csrf))
                @if session.is_none() && face.settings.open_forms {
                    (field_row("f-name", "Your name", true, None, errors.get("name"), plain_input("f-name", "name", "text", &s.name, errors.get("name"))))
                    (field_row("f-email", "Your email address", true, None, errors.get("email"), plain_input("f-email", "email", "email", &s.email, errors.get("email"))))
                }
                @if !form.survey {
                    (field_row("f-title", "Subject", true, None, errors.get("title"), plain_input("f-title", "title", "text", &s.title, errors.get("title"))))
                    @let describe = described_by("f-description", false, errors.contains_key("description"));
                    (field_row("f-description", "Description", false, None, errors.get("description"), html! {
                        textarea id="f-description" name="description" aria-describedby=[describe.as_deref()] { (s.description) }
                    }))
                }
                @for def in t.fields.iter().filter(|f| !f.internal) {
                    (custom_field(def, s, errors))
                }
                @if form.attachments {
                    @let describe = described_by("f-files", true, errors.contains_key("files"));
                    div.field {
                        label for="f-files" { "Attachments" }
                        p.help id="f-files-help" { "Up to 5 files: documents, images, spreadsheets or archives." }
                        input type="file" id="f-files" name="files" multiple aria-describedby=[describe.as_deref()] aria-invalid=[errors.get("files").map(|_| "true")];
                        @if let Some(e) = errors.get("files") { p.error id="f-files-error" role="alert" { (e) } }
                    }
                }
                @if let Some(e) = errors.get("") { p.error role="alert" { (e) } }
                button type="submit" { @if form.survey { "Send answers" } @else { "Submit request" } }
            }
        },
    )
}
