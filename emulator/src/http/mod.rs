//! The HTTP surface: Microsoft's paths, the RFC 7009 revocation endpoint and the
//! `/_emulator` admin API, routed onto the shared store.
//!
//! Handlers are thin: parse, lock, call the protocol module (`authorize`, `token`) and render.

mod admin;
mod graph;
mod login;
mod others;
mod pages;
mod token;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::aad::AadError;
use crate::store::Shared;

/// Every route the emulator serves.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(login::authorize_page).post(login::authorize_decision),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(token::token))
        .route(
            "/{tenant}/v2.0/adminconsent",
            get(login::admin_consent_page).post(login::admin_consent_decision),
        )
        .route("/oauth2/revoke", post(token::revoke))
        .route("/v1.0/me", get(graph::me))
        .route("/v1.0/organization", get(graph::organization))
        .route("/google/revoke", post(others::google_revoke))
        .route(
            "/dropbox/2/users/get_current_account",
            post(others::dropbox_current_account),
        )
        .route("/dropbox/2/auth/token/revoke", post(others::dropbox_revoke))
        .route("/box/2.0/users/me", get(others::box_me))
        .route("/box/oauth2/revoke", post(token::revoke))
        .nest("/_emulator", admin::router())
        .fallback(not_found)
        .with_state(shared)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({
            "error": "not_found",
            "error_description": "The identity emulator serves no such path.",
        })),
    )
        .into_response()
}

/// A `302 Found` to `location` (Microsoft answers the authorize leg with 302).
pub(crate) fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => error_page(&AadError::malformed(
            "The redirect URI cannot be sent in a Location header.",
        )),
    }
}

/// An HTML page that must not be cached (it carries request parameters).
pub(crate) fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The error page, with the error's HTTP status.
pub(crate) fn error_page(error: &AadError) -> Response {
    page(error.status, pages::error(error))
}

/// The caller's `client-request-id`, which Microsoft echoes as the correlation id.
pub(crate) fn client_request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("client-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}
