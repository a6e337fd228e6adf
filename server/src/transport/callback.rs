//! The OAuth 2.0 redirect URI: `GET /oauth/callback`, served as plain HTTP/1.1 on the gRPC port.
//!
//! The provider sends the user's browser here. The service completes the authorization, then
//! redirects to the return URL the authorization was started with (which matched the
//! configured allowlist exactly, so this is never an open redirect), adding `connector=<name>`
//! or `error=<REASON>`; without a return URL it shows a small page saying what happened. An
//! authorization started with `orchestrator_completes` is not completed here: the browser is
//! forwarded to its return URL with the provider's parameters, for the orchestrator to check
//! its own session and call `CompleteAuthorization`.

use axum::{
    Router,
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;
use tonic_types::StatusExt as _;

use crate::domain::{Callback, Connectors, Error};

/// The path of the redirect URI.
pub(crate) const CALLBACK_PATH: &str = "/oauth/callback";

/// The HTTP routes served beside gRPC.
pub(crate) fn router(connectors: Connectors) -> Router {
    Router::new()
        .route(CALLBACK_PATH, get(callback))
        .with_state(connectors)
}

// No `Debug`: it holds the authorization code.
#[derive(Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    tenant: Option<String>,
    admin_consent: Option<String>,
}

async fn callback(
    State(connectors): State<Connectors>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(state) = query.state.clone().filter(|state| !state.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Link failed",
            "This page was opened without an authorization state. Start linking the account again.",
        );
    };
    match connectors.forward_target(&state).await {
        Ok(Some(return_url)) => return forward(&return_url, &state, &query),
        Ok(None) => {}
        Err(error) => {
            let _logged = reason_of(error);
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again later",
                "The service is temporarily unavailable. Start linking the account again in a moment.",
            );
        }
    }
    let completion = connectors
        .complete_authorization(
            Callback {
                state,
                code: query.code,
                error: query.error,
                error_description: query.error_description,
                tenant: query.tenant,
                admin_consent: query.admin_consent,
                from_browser: true,
            },
            |_| true,
        )
        .await;
    match (completion.return_url, completion.result) {
        (Some(return_url), result) => {
            let (key, value) = match result {
                Ok(connector) => ("connector", connector.name.to_string()),
                Err(error) => ("error", reason_of(error)),
            };
            match url::Url::parse(&return_url) {
                Ok(mut url) => {
                    url.query_pairs_mut().append_pair(key, &value);
                    no_store(Redirect::to(url.as_str()).into_response())
                }
                Err(_) => page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Link failed",
                    "The return URL is not valid.",
                ),
            }
        }
        (None, Ok(connector)) => page(
            StatusCode::OK,
            "Account linked",
            &format!(
                "“{}” is linked. You can close this window.",
                connector.display_name.as_str()
            ),
        ),
        (None, Err(error)) => {
            let (status, title) = match &error {
                Error::AlreadyExists { .. } => (StatusCode::CONFLICT, "Account already linked"),
                Error::AuthorizationDenied(_) => (StatusCode::FORBIDDEN, "Access not granted"),
                Error::AuthorizationExpired => (StatusCode::GONE, "Link expired"),
                Error::AuthorizationStateInvalid(_) => (StatusCode::BAD_REQUEST, "Link not valid"),
                Error::AccountMismatch { .. } => (StatusCode::CONFLICT, "Different account"),
                Error::ProviderUnavailable { .. }
                | Error::StorageUnavailable
                | Error::AuthorizationInterrupted { .. } => {
                    (StatusCode::SERVICE_UNAVAILABLE, "Try again later")
                }
                _ => (StatusCode::BAD_REQUEST, "Link failed"),
            };
            // Fixed words per outcome: the page is for a person, and error texts name resources
            // and account ids that a browser has no business seeing.
            let message = match &error {
                Error::AlreadyExists { .. } => {
                    "This account is already linked. Reauthorize the existing connector instead of adding it again."
                }
                Error::AuthorizationDenied(_) => "Access was not granted, so nothing was linked.",
                Error::AuthorizationExpired => {
                    "This link expired. Start linking the account again."
                }
                Error::AuthorizationStateInvalid(_) => {
                    "This link is not valid (already used or unknown). Start linking the account again."
                }
                Error::AccountMismatch { .. } => {
                    "You signed in with a different account than the one this connector is linked to. Sign in with the original account."
                }
                Error::ProviderUnavailable { .. }
                | Error::StorageUnavailable
                | Error::AuthorizationInterrupted { .. } => {
                    "The service is temporarily unavailable. Start linking the account again in a moment."
                }
                _ => "The account could not be linked. Start linking it again.",
            };
            let _logged = reason_of(error);
            page(status, title, message)
        }
    }
}

/// Sends the browser on to the orchestrator with the provider's parameters, unchanged.
fn forward(return_url: &str, state: &str, query: &CallbackQuery) -> Response {
    let Ok(mut url) = url::Url::parse(return_url) else {
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Link failed",
            "The return URL is not valid.",
        );
    };
    {
        let mut pairs = url.query_pairs_mut();
        pairs.append_pair("state", state);
        for (name, value) in [
            ("code", &query.code),
            ("error", &query.error),
            ("error_description", &query.error_description),
            ("tenant", &query.tenant),
            ("admin_consent", &query.admin_consent),
        ] {
            if let Some(value) = value {
                pairs.append_pair(name, value);
            }
        }
    }
    no_store(Redirect::to(url.as_str()).into_response())
}

/// The stable ErrorInfo reason of an error, exactly as the gRPC API answers it (the mapping
/// also logs internal errors).
fn reason_of(error: Error) -> String {
    tonic::Status::from(error)
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_else(|| "INTERNAL".to_owned())
}

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1 id=\"title\">{title}</h1><p id=\"message\">{message}</p></body></html>",
        title = escape(title),
        message = escape(message),
    );
    let mut response = (status, Html(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    no_store(response)
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
