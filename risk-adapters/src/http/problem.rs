//! Errors as `application/problem+json` (RFC 9457), naming the field at fault.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type (`about:blank` or a `urn:riskgate:` name).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    /// A problem with `status`, a `urn:riskgate:problem:{kind}` type and `detail`.
    #[must_use]
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:riskgate:problem:{kind}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
        }
    }

    /// Names the field at fault.
    #[must_use]
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 401: no or wrong bearer token.
    #[must_use]
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "admin routes need `Authorization: Bearer <token>` with a token from --admin-token-file",
        )
        .field("Authorization")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let unauthorized = status == StatusCode::UNAUTHORIZED;
        let mut response = (status, axum::Json(self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        let detail = e.to_string();
        match e {
            StoreError::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, "not-found", detail),
            StoreError::VersionMismatch { .. } => {
                Self::new(StatusCode::PRECONDITION_FAILED, "version-mismatch", detail)
                    .field("If-Match")
            }
            StoreError::Conflict { field, .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", detail).field(field)
            }
            StoreError::Invalid { field, .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail).field(field)
            }
            _ => {
                tracing::error!(error = %detail, "store failure");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "store-unavailable", detail)
            }
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for Problem {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection as J;
        let detail = e.body_text();
        let (status, kind) = match e {
            J::JsonDataError(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            J::MissingJsonContentType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "media-type"),
            _ => (StatusCode::BAD_REQUEST, "malformed"),
        };
        // serde_path_to_error's text starts with the path: "threshold: invalid type ...".
        let field = detail
            .split_once(": ")
            .and_then(|(_, rest)| rest.split_once(": "))
            .map(|(path, _)| path.to_owned())
            .filter(|p| !p.contains(' ') && !p.is_empty() && p != ".");
        let problem = Self::new(status, kind, detail);
        match field {
            Some(f) => problem.field(f),
            None => problem.field("body"),
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for Problem {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", e.body_text()).field("path")
    }
}

impl From<axum::extract::rejection::QueryRejection> for Problem {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", e.body_text()).field("query")
    }
}
