//! Errors as RFC 9457 problem details: each of the library's error kinds has
//! one HTTP status, as each has one exit code in the CLI.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer::ErrorKind;

/// An error answered as `application/problem+json`.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    kind: &'static str,
    detail: String,
}

/// The status each kind of error is answered with.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidKey | ErrorKind::InvalidInput | ErrorKind::Io => StatusCode::BAD_REQUEST,
        ErrorKind::Conflict | ErrorKind::Archived => StatusCode::CONFLICT,
        ErrorKind::IntegrityMismatch => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::BackendUnavailable | ErrorKind::Catalog | ErrorKind::NoStore | ErrorKind::KeyUnavailable => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Delivery => StatusCode::BAD_GATEWAY,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::RetentionLocked => StatusCode::LOCKED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl Problem {
    /// A problem of `status` that no library error stands for (a range
    /// beyond the object, an unknown route).
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            kind,
            detail: detail.into(),
        }
    }
}

impl Problem {
    /// A conflict as a failed precondition (412), for a request whose
    /// conditional headers made it; anything else as it is.
    pub fn conflict_as_precondition(self) -> Problem {
        match self.status {
            StatusCode::CONFLICT => Problem {
                status: StatusCode::PRECONDITION_FAILED,
                ..self
            },
            _ => self,
        }
    }

    /// A 400 for input the request got wrong (kind `invalid_input`).
    pub fn invalid_input(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "invalid_input", detail)
    }
}

impl From<coffer::Error> for Problem {
    fn from(error: coffer::Error) -> Problem {
        Problem {
            status: status_of(error.kind()),
            kind: error.kind().as_str(),
            detail: error.message().replace('\n', " "),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": format!("urn:coffer:problem:{}", self.kind),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "kind": self.kind,
        });
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"coffer\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_status() {
        let cases = [
            (ErrorKind::NotFound, 404),
            (ErrorKind::InvalidKey, 400),
            (ErrorKind::Conflict, 409),
            (ErrorKind::Unauthorized, 401),
            (ErrorKind::Forbidden, 403),
            (ErrorKind::RetentionLocked, 423),
            (ErrorKind::BackendUnavailable, 503),
            (ErrorKind::Unsupported, 501),
        ];
        for (kind, status) in cases {
            assert_eq!(status_of(kind).as_u16(), status, "{kind}");
        }
    }
}
