//! Microsoft identity platform errors: an `AADSTS` code with its OAuth 2.0 `error`, shaped as
//! Microsoft answers them, so a client's error parsing is tested against the real shape:
//!
//! ```json
//! {"error": "invalid_grant",
//!  "error_description": "AADSTS70008: The provided authorization code or refresh token has expired…\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: 2026-01-02 03:04:05Z",
//!  "error_codes": [70008], "timestamp": "2026-01-02 03:04:05Z",
//!  "trace_id": "…", "correlation_id": "…"}
//! ```
//!
//! The same type feeds the HTML error pages of the sign-in and admin consent pages.

use std::time::SystemTime;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One refusal: HTTP status, OAuth 2.0 error, AADSTS code and message.
#[derive(Clone, Debug)]
pub(crate) struct AadError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) code: u32,
    pub(crate) message: String,
    /// `Retry-After` seconds, for throttling.
    pub(crate) retry_after: Option<u64>,
}

impl AadError {
    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        message: impl Into<String>,
    ) -> Self {
        AadError {
            status,
            error,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn invalid_request(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", code, message)
    }

    pub(crate) fn invalid_grant(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", code, message)
    }

    /// `invalid_grant` with Microsoft's text for `code` (used by injected failures too).
    pub(crate) fn invalid_grant_code(code: u32) -> Self {
        Self::invalid_grant(code, known_message(code))
    }

    /// A required parameter is missing (AADSTS900144).
    pub(crate) fn missing(parameter: &str) -> Self {
        Self::invalid_request(
            900144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }

    /// The request could not be parsed, or names a parameter twice.
    pub(crate) fn malformed(detail: &str) -> Self {
        Self::invalid_request(
            9002313,
            format!("Invalid request. Request is malformed or invalid. {detail}"),
        )
    }

    /// The `{tenant}` path segment names no known tenant (AADSTS90002).
    pub(crate) fn tenant_not_found(segment: &str) -> Self {
        Self::invalid_request(
            90002,
            format!(
                "Tenant '{segment}' not found. Check to make sure you have the correct tenant \
                 ID and are signing into the correct cloud."
            ),
        )
    }

    /// The client id is not registered, or (client credentials) not consented in the tenant.
    pub(crate) fn application_not_found(client_id: &str, directory: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{directory}'. This can happen if the application has not been installed by \
                 the administrator of the tenant or consented to by any user in the tenant. You \
                 may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    pub(crate) fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            50000,
            known_message(50000),
        )
    }

    pub(crate) fn throttled(retry_after: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            90055,
            known_message(90055),
        );
        error.retry_after = Some(retry_after);
        error
    }

    /// Renders Microsoft's JSON error at emulator time `now`. `correlation_id` is the caller's
    /// `client-request-id` header when it sent one, as Microsoft echoes it.
    pub(crate) fn into_json_response(
        self,
        now: SystemTime,
        correlation_id: Option<String>,
    ) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: &'static str,
            error_description: String,
            error_codes: [u32; 1],
            timestamp: String,
            trace_id: String,
            correlation_id: String,
        }
        let timestamp = format_timestamp(now);
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = correlation_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let body = Body {
            error: self.error,
            error_description: format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\n\
                 Timestamp: {timestamp}",
                self.code, self.message
            ),
            error_codes: [self.code],
            timestamp,
            trace_id,
            correlation_id,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"identity-emulator\""),
            );
        }
        response
    }

    /// `AADSTS{code}: {message}`, as the error pages and redirects show it.
    pub(crate) fn description(&self) -> String {
        format!("AADSTS{}: {}", self.code, self.message)
    }
}

/// Microsoft's `timestamp` format: `2026-01-02 03:04:05Z`.
pub(crate) fn format_timestamp(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time)
        .format("%Y-%m-%d %H:%M:%SZ")
        .to_string()
}

/// Microsoft's text for the AADSTS codes a client is likely to meet; a generic sentence for
/// the others (an injected failure may use any code).
pub(crate) fn known_message(code: u32) -> &'static str {
    match code {
        50000 => "There was an error issuing a token or an issue with our sign-in service.",
        50058 => "A silent sign-in request was sent but no user is signed in.",
        50076 => {
            "Due to a configuration change made by your administrator, or because you moved to \
             a new location, you must use multi-factor authentication to access the resource."
        }
        50173 => {
            "The provided grant has expired due to it being revoked, a fresh auth token is \
             needed. The user might have changed or reset their password. The grant was issued \
             on a date before the revocation."
        }
        54005 => {
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code \
             or use an existing refresh token."
        }
        65001 => {
            "The user or administrator has not consented to use the application. Send an \
             interactive authorization request for this user and resource."
        }
        65004 => "User declined to consent to access the app.",
        70000 => "The provided grant is invalid or malformed.",
        70008 => {
            "The provided authorization code or refresh token has expired due to inactivity. \
             Send a new interactive authorization request for this user and resource."
        }
        90055 => {
            "TenantThrottlingError - There are too many incoming requests. This exception is \
             thrown for blocked tenants."
        }
        700082 => {
            "The refresh token has expired due to inactivity. The token was inactive longer \
             than the refresh token lifetime."
        }
        _ => "The provided grant is invalid (failure injected by the identity emulator).",
    }
}
