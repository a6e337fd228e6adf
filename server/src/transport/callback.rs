//! The OAuth 2.0 redirect URI: `/oauth/callback`, served as plain HTTP/1.1 on the gRPC port.
//!
//! The provider sends the user's browser here. By default the callback links nothing: whoever
//! opens an authorization URL signs in as themselves, so a link completed here would attach
//! *their* account to the customer account that started it (login CSRF, RFC 9700 §4.7). The
//! browser is forwarded to the return URL with the provider's parameters, and the orchestrator,
//! which knows which of its users started the authorization, calls `CompleteAuthorization`.
//! Without a return URL (an orchestrator that catches the redirect itself) a page says to go
//! back to the application.
//!
//! A deployment may opt in to linking here (`callback_completes_authorizations`): the `GET`
//! then shows a page naming the customer account being linked, and only the user's `POST` of
//! that page's form completes the link. Office 365 (tenant-wide consent) never completes here.
//!
//! A request whose `state` is not one we issued (64 hex digits carrying a MAC under the master
//! key's state sub-key) is refused before any database query, so junk requests, forged states
//! included, cost next to nothing.

use axum::{
    Form, Router,
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;
use tonic_types::StatusExt as _;

use crate::domain::{Authorizations, Callback, CallbackStep, Error};

/// The path of the redirect URI.
pub(crate) const CALLBACK_PATH: &str = "/oauth/callback";

/// The HTTP routes served beside gRPC.
pub(crate) fn router(authorizations: Authorizations) -> Router {
    Router::new()
        .route(CALLBACK_PATH, get(callback).post(confirmed))
        .with_state(authorizations)
        .layer(axum::middleware::map_response(never_framed))
}

/// No callback answer may be framed (clickjacking a confirmation, or a page that looks like
/// this service's inside someone else's): every one, the error pages and axum's own
/// rejections included, carries `frame-ancestors 'none'` and `X-Frame-Options: DENY`.
async fn never_framed(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
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
    iss: Option<String>,
}

/// The confirmation form's fields (`POST`). No `Debug`: it holds the authorization code.
#[derive(Deserialize)]
struct ConfirmForm {
    state: String,
    code: String,
    /// The provider's `iss` (RFC 9207), carried through the page.
    #[serde(default)]
    iss: String,
    /// `confirm` links the account; anything else cancels.
    decision: String,
}

async fn callback(
    State(authorizations): State<Authorizations>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(state) = query.state.clone().filter(|state| !state.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Link failed",
            "This page was opened without an authorization state. Start linking the account again.",
        );
    };
    if !authorizations.issued_state(&state) {
        return outcome_page(None, Err(Error::AuthorizationStateInvalid("unknown")));
    }
    match authorizations.callback_step(&state).await {
        Ok(CallbackStep::Forward(return_url)) => forward(&return_url, &state, &query),
        Ok(CallbackStep::ReturnToApplication) => page(
            StatusCode::OK,
            "Return to the application",
            "Sign-in is finished. Go back to the application you started from to finish linking the account.",
        ),
        // Refusals link nothing, so they need no confirmation.
        Ok(CallbackStep::Confirm { .. }) if query.error.is_some() => {
            complete(
                &authorizations,
                state,
                query.code,
                query.error,
                query.error_description,
                query.iss,
            )
            .await
        }
        Ok(CallbackStep::Confirm {
            account,
            connector_type,
        }) => confirmation_page(
            account.as_str(),
            connector_type.info().display_name,
            &state,
            query.code.as_deref().unwrap_or_default(),
            query.iss.as_deref().unwrap_or_default(),
        ),
        Err(error) => outcome_page(None, Err(error)),
    }
}

/// The user's answer to the confirmation page.
async fn confirmed(
    State(authorizations): State<Authorizations>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    if !authorizations.issued_state(&form.state) {
        return outcome_page(None, Err(Error::AuthorizationStateInvalid("unknown")));
    }
    if form.decision == "confirm" {
        let iss = Some(form.iss).filter(|iss| !iss.is_empty());
        complete(
            &authorizations,
            form.state,
            Some(form.code),
            None,
            None,
            iss,
        )
        .await
    } else {
        // Cancelling uses the state up, as a refusal at the provider would.
        complete(
            &authorizations,
            form.state,
            None,
            Some("access_denied".to_owned()),
            Some("the user cancelled at the confirmation page".to_owned()),
            None,
        )
        .await
    }
}

async fn complete(
    authorizations: &Authorizations,
    state: String,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
) -> Response {
    let completion = authorizations
        .complete_authorization(
            Callback {
                state,
                code,
                error,
                error_description,
                iss,
                from_browser: true,
            },
            |_| true,
        )
        .await;
    if let Ok(linked) = &completion.result {
        // No API key: the user confirmed in the browser.
        crate::audit::changed(
            "authorization_completed",
            "oauth-callback",
            &linked.name.to_string(),
        );
    }
    outcome_page(completion.return_url, completion.result)
}

/// The page that asks the user to confirm a link, naming the customer account it is for.
fn confirmation_page(
    account: &str,
    connector_type: &str,
    state: &str,
    code: &str,
    iss: &str,
) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Confirm the link</title></head>\
         <body><h1 id=\"title\">Confirm the link</h1>\
         <p id=\"message\">Link the {connector_type} account you just signed in with to customer account \
         <strong id=\"account\">{account}</strong>? Only confirm if you started linking this account yourself.</p>\
         <form method=\"post\" action=\"{CALLBACK_PATH}\">\
         <input type=\"hidden\" name=\"state\" value=\"{state}\">\
         <input type=\"hidden\" name=\"code\" value=\"{code}\">\
         <input type=\"hidden\" name=\"iss\" value=\"{iss}\">\
         <button id=\"confirm\" type=\"submit\" name=\"decision\" value=\"confirm\">Link the account</button> \
         <button id=\"cancel\" type=\"submit\" name=\"decision\" value=\"cancel\">Cancel</button>\
         </form></body></html>",
        connector_type = escape(connector_type),
        account = escape(account),
        state = escape(state),
        code = escape(code),
        iss = escape(iss),
    );
    let mut response = (StatusCode::OK, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        // No `form-action`: browsers apply it to the redirect that follows the post, which goes
        // to the (allowlisted) return URL on another origin.
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    // The page carries the authorization code: no referrer, no framing, no caching.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    no_store(response)
}

/// Where a completion leaves the browser: the return URL with `connector` or `error`, or a
/// page saying what happened.
fn outcome_page(
    return_url: Option<String>,
    result: Result<crate::domain::model::Connector, Error>,
) -> Response {
    match (return_url, result) {
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
            ("iss", &query.iss),
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
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
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
