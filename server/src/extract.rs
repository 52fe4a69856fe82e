//! Request extractors that answer in the API's error shape: JSON bodies whose type errors name
//! *where* they are (`custom.budget`, `assignees[1].id`), query strings, path ids.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body. Malformed JSON or a missing/wrong content type is a 400; JSON that
/// parses but does not fit the expected shape is a 422 naming the offending field.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// Like [`JsonBody`], but an empty body means `T::default()` (for actions such as "close"
/// whose body only carries optional fields).
#[derive(Debug, Clone)]
pub struct OptionalJson<T>(pub T);

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads the whole body, turning the body-size limit into a 413.
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("the request body is larger than this server accepts")
        } else {
            ApiError::bad_request(format!("could not read the request body: {}", rejection.body_text()))
        }
    })
}

fn check_content_type(req: &Request) -> Result<(), ApiError> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    match content_type {
        Some(ct) if is_json(ct) => Ok(()),
        Some(ct) => {
            Err(ApiError::bad_request(format!("expected Content-Type: application/json, got '{ct}'")))
        }
        None => Err(ApiError::bad_request("expected Content-Type: application/json")),
    }
}

/// Parses JSON, reporting where a value did not fit.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize(&mut de).map_err(json_error).and_then(|value| {
        de.end().map_err(|e| ApiError::bad_request(format!("malformed JSON: {}", without_position(&e))))?;
        Ok(value)
    });
    match parsed {
        Ok(value) => Ok(value),
        // A shape error found before a syntax error further on: the body is malformed first.
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => Err(e),
                Err(syntax) => {
                    Err(ApiError::bad_request(format!("malformed JSON: {}", without_position(&syntax))))
                }
            }
        }
        Err(e) => Err(e),
    }
}

fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let inner = e.inner();
    let message = without_position(inner);
    match inner.classify() {
        Category::Data => {
            let mut field = e.path().to_string();
            if field == "." {
                field.clear();
            }
            // Unknown and missing fields are reported at the enclosing object; the field the
            // client has to fix is the named one.
            for prefix in ["unknown field `", "missing field `"] {
                if let Some(rest) = message.strip_prefix(prefix)
                    && let Some(name) = rest.split('`').next()
                    && !field.ends_with(name)
                {
                    field = if field.is_empty() { name.to_string() } else { format!("{field}.{name}") };
                }
            }
            ApiError::invalid(field, message)
        }
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request(format!("malformed JSON: {message}"))
        }
    }
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_content_type(&req)?;
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_type = req.headers().contains_key(header::CONTENT_TYPE);
        if has_type {
            check_content_type(&req)?;
        }
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !has_type {
            return Err(ApiError::bad_request("expected Content-Type: application/json"));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// The query string as ordered key/value pairs, percent-decoded.
#[derive(Debug, Clone, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|q| QueryPairs(q.0))
            .map_err(|e| ApiError::bad_request(format!("malformed query string: {}", e.body_text())))
    }
}

impl QueryPairs {
    /// Every key must be one of `known`: a misspelt filter silently ignored would return the
    /// wrong items.
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((k, _)) => {
                Err(ApiError::invalid(k.clone(), format!("unknown parameter; known: {}", known.join(", "))))
            }
            None => Ok(()),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// A parameter parsed with `parse`, whose error becomes a 422 naming the parameter.
    pub fn parse<T>(
        &self,
        key: &str,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => parse(raw.trim())
                .map(Some)
                .ok_or_else(|| ApiError::invalid(key, format!("'{raw}' is not {expected}"))),
        }
    }

    /// A comma-separated list parameter.
    pub fn list<T>(
        &self,
        key: &str,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> Result<Vec<T>, ApiError> {
        let Some(raw) = self.get(key) else { return Ok(Vec::new()) };
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| parse(s).ok_or_else(|| ApiError::invalid(key, format!("'{s}' is not {expected}"))))
            .collect()
    }

    pub fn limit(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        Ok(self
            .parse(
                "limit",
                |s| s.parse::<usize>().ok().filter(|n| (1..=max).contains(n)),
                &format!("a number from 1 to {max}"),
            )?
            .unwrap_or(default))
    }
}

/// A uuid from a path segment. Something that is not a uuid names nothing that exists: 404.
pub fn path_id<T: From<uuid::Uuid>>(raw: &str, what: &str) -> Result<T, ApiError> {
    uuid::Uuid::parse_str(raw.trim()).map(T::from).map_err(|_| ApiError::not_found(format!("{what} '{raw}'")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[allow(dead_code)]
        id: uuid::Uuid,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[allow(dead_code)]
        title: String,
        #[serde(default)]
        #[allow(dead_code)]
        people: Vec<Inner>,
        #[serde(default)]
        #[allow(dead_code)]
        custom: BTreeMap<String, serde_json::Value>,
    }

    fn check(body: &str, status: StatusCode, field: Option<&str>) {
        let err = parse_json::<Outer>(body.as_bytes()).unwrap_err();
        assert_eq!(err.status, status, "{body}: {err}");
        assert_eq!(err.field.as_deref(), field, "{body}: {err}");
    }

    #[test]
    fn json_errors_name_their_field() {
        check("{\"title\": ", StatusCode::BAD_REQUEST, None);
        check("{\"title\": \"a\"} trailing", StatusCode::BAD_REQUEST, None);
        check("{\"colour\": 1} {", StatusCode::BAD_REQUEST, None);
        check("{\"title\": \"a\"} {}", StatusCode::BAD_REQUEST, None);
        check("{\"title\": 4}", StatusCode::UNPROCESSABLE_ENTITY, Some("title"));
        check("{}", StatusCode::UNPROCESSABLE_ENTITY, Some("title"));
        check("{\"title\": \"a\", \"colour\": 1}", StatusCode::UNPROCESSABLE_ENTITY, Some("colour"));
        check(
            "{\"title\": \"a\", \"people\": [{\"id\": \"00000000-0000-0000-0000-000000000001\"}, {\"id\": \"x\"}]}",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("people[1].id"),
        );
        check(
            "{\"title\": \"a\", \"people\": [{\"id\": \"00000000-0000-0000-0000-000000000001\", \"extra\": 1}]}",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("people[0].extra"),
        );
        check("\"just text\"", StatusCode::UNPROCESSABLE_ENTITY, None);
    }

    #[test]
    fn content_types() {
        for (ct, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("multipart/form-data; boundary=x", false),
        ] {
            assert_eq!(is_json(ct), ok, "{ct}");
        }
    }

    #[test]
    fn query_pairs() {
        let q = QueryPairs(vec![("status".into(), "triage, execution".into()), ("limit".into(), "0".into())]);
        assert_eq!(q.list("status", |s| Some(s.to_string()), "a status").unwrap(), ["triage", "execution"]);
        assert_eq!(q.limit(50, 500).unwrap_err().field.as_deref(), Some("limit"));
        assert_eq!(q.only(&["status"]).unwrap_err().field.as_deref(), Some("limit"));
    }
}
