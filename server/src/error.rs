//! The API's one error shape, `{"error":{"code","message","field"}}`, and how every failure maps
//! onto it. Storage failures are logged in full and answered with a generic message: their
//! details (paths, SQL) are for the operator, not for API clients.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tandem_core::{DeskError, Invalid, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let field = field.into();
        let reason = reason.into();
        let message = if field.is_empty() { reason } else { format!("{field}: {reason}") };
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid",
            message,
            field: Some(field).filter(|f| !f.is_empty()),
        }
    }

    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on the server; it has been logged",
        )
    }

    fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage is unavailable right now; try again shortly",
        )
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::invalid(e.field, e.reason)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        DeskError::from(e).into()
    }
}

impl From<DeskError> for ApiError {
    fn from(e: DeskError) -> Self {
        match e {
            DeskError::Invalid(invalid) => invalid.into(),
            DeskError::NotFound(what) => ApiError::not_found(what),
            DeskError::Forbidden(reason) => ApiError::forbidden(reason),
            DeskError::Conflict(reason) => ApiError::conflict(reason),
            DeskError::RateLimited(reason) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", reason)
            }
            DeskError::TooLarge { what, size, limit } => {
                ApiError::too_large(format!("{what} is {size} bytes; the limit is {limit} bytes"))
            }
            DeskError::Store(StoreError::Conflict(what)) => {
                ApiError::conflict(format!("{what}; reload and try again"))
            }
            DeskError::Store(e @ StoreError::Unavailable(_)) => {
                tracing::error!(error = %e, "storage unavailable");
                ApiError::unavailable()
            }
            DeskError::Store(e) => {
                tracing::error!(error = %e, "storage failure");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message, "field": self.field}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desk_errors_map_to_statuses() {
        let table: Vec<(DeskError, StatusCode, Option<&str>)> = vec![
            (
                DeskError::invalid("custom.budget", "must be a number"),
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("custom.budget"),
            ),
            (DeskError::NotFound("item #4".into()), StatusCode::NOT_FOUND, None),
            (DeskError::Forbidden("no".into()), StatusCode::FORBIDDEN, None),
            (DeskError::Conflict("stale".into()), StatusCode::CONFLICT, None),
            (
                DeskError::TooLarge { what: "f".into(), size: 2, limit: 1 },
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
            ),
            (
                DeskError::Store(StoreError::Unavailable("disk /x".into())),
                StatusCode::SERVICE_UNAVAILABLE,
                None,
            ),
            (DeskError::Store(StoreError::Corrupt("row 7".into())), StatusCode::INTERNAL_SERVER_ERROR, None),
            (DeskError::Store(StoreError::Conflict("item".into())), StatusCode::CONFLICT, None),
        ];
        for (error, status, field) in table {
            let api = ApiError::from(error);
            assert_eq!(api.status, status, "{api}");
            assert_eq!(api.field.as_deref(), field);
        }
    }

    #[test]
    fn storage_details_do_not_leak() {
        let api = ApiError::from(DeskError::Store(StoreError::Unavailable(
            "sqlite: /var/lib/tandem.db locked".into(),
        )));
        assert!(!api.message.contains("sqlite"), "{}", api.message);
        assert!(!api.message.contains("/var"), "{}", api.message);
    }
}
