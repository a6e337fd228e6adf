//! `POST /{tenant}/oauth2/v2.0/token` and `POST /oauth2/revoke`: counting, injected failures,
//! HTTP Basic client credentials, then the protocol in [`crate::token`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::client_request_id;
use crate::aad::AadError;
use crate::knobs::Failure;
use crate::model::Flavour;
use crate::params::Params;
use crate::store::{Shared, Store};
use crate::token::{self as protocol, BasicCredentials};

/// The token endpoint.
pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let correlation_id = client_request_id(&headers);
    let params = Params::parse(&body);
    let failure = {
        let mut store = shared.lock();
        let counters = &mut store.counters;
        counters.token += 1;
        match params
            .as_ref()
            .ok()
            .and_then(|params| params.get("grant_type"))
        {
            Some("authorization_code") => counters.authorization_code += 1,
            Some("refresh_token") => counters.refresh += 1,
            Some("client_credentials") => counters.client_credentials += 1,
            _ => {}
        }
        let failure = store.failures.token.pop_front();
        if failure.is_some() {
            store.counters.injected_failures += 1;
        }
        failure
    };
    if let Some(failure) = failure {
        return inject(&shared, failure, correlation_id).await;
    }
    let delay = shared.lock().failures.token_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let mut store = shared.lock();
    let now = store.now();
    let flavour = flavour_of(&store, &headers, params.as_ref().ok());
    let result = params.and_then(|params| {
        let basic = basic_credentials(&headers)?;
        protocol::exchange(&mut store, &tenant, &params, basic)
    });
    match result {
        Ok(tokens) => {
            store.counters.tokens_issued += 1;
            let mut response = axum::Json(tokens).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) if error.error == "invalid_grant" && flavour != Flavour::Microsoft => {
            provider_invalid_grant(flavour, &error)
        }
        Err(error) => error.into_json_response(now, correlation_id),
    }
}

/// The flavour of the calling client (by HTTP Basic or `client_id`), Microsoft when unknown.
fn flavour_of(store: &Store, headers: &HeaderMap, params: Option<&Params>) -> Flavour {
    let basic = basic_credentials(headers).ok().flatten().map(|(id, _)| id);
    let client_id = basic.or_else(|| params?.get("client_id").map(str::to_owned));
    client_id
        .and_then(|id| store.client(&id).map(|client| client.flavour))
        .unwrap_or_default()
}

/// `invalid_grant` as the other providers word it (RFC 6749 §5.2 shape, no AADSTS extras):
/// Google does not tell an expired grant from a revoked one; Box does.
fn provider_invalid_grant(flavour: Flavour, error: &AadError) -> Response {
    let expired = matches!(error.code, 70008 | 700082 | 700084);
    let description = match (flavour, expired) {
        (Flavour::Google, _) => "Token has been expired or revoked.",
        (Flavour::Box, true) => "Refresh token has expired",
        (Flavour::Box, false) => "Invalid refresh token",
        (_, true) => "refresh token has expired",
        (_, false) => "refresh token is invalid or revoked",
    };
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({
            "error": "invalid_grant",
            "error_description": description,
        })),
    )
        .into_response()
}

/// The RFC 7009 revocation endpoint: `200` with an empty body when done.
pub(super) async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let correlation_id = client_request_id(&headers);
    if let Some(failure) = revocation_failure(&shared) {
        return inject(&shared, failure, correlation_id).await;
    }
    let delay = shared.lock().failures.token_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let mut store = shared.lock();
    let now = store.now();
    let result = Params::parse(&body).and_then(|params| {
        let basic = basic_credentials(&headers)?;
        protocol::revoke(&mut store, &params, basic)
    });
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => error.into_json_response(now, correlation_id),
    }
}

/// Counts a revocation call (at any provider's revocation endpoint) and takes an injected
/// failure, if one is queued.
pub(super) fn revocation_failure(shared: &Shared) -> Option<Failure> {
    let mut store = shared.lock();
    store.counters.revoke += 1;
    let failure = store.failures.revoke.pop_front();
    if failure.is_some() {
        store.counters.injected_failures += 1;
    }
    failure
}

/// Answers with an injected failure; `Timeout` holds the request until the emulator stops.
pub(super) async fn inject(
    shared: &Shared,
    failure: Failure,
    correlation_id: Option<String>,
) -> Response {
    let error = match failure {
        Failure::Status500 => AadError::server_error(),
        Failure::Status429 { retry_after } => AadError::throttled(retry_after),
        Failure::InvalidGrant { aadsts } => AadError::invalid_grant_code(aadsts),
        Failure::UnsupportedTokenType => AadError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_token_type",
            9002313,
            "The authorization server does not support the revocation of the presented token type.",
        ),
        Failure::Timeout => {
            let mut shutdown = shared.shutdown.clone();
            // An error means the emulator is gone: answer as at shutdown.
            let _ = shutdown.wait_for(|stopping| *stopping).await;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let now = shared.lock().now();
    error.into_json_response(now, correlation_id)
}

/// Decodes `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749
/// §2.3.1 form-encodes both halves before base64). Other schemes are ignored.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<BasicCredentials>, AadError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || {
        AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "The HTTP Basic authorization header is malformed.",
        )
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(malformed)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |text: &str| {
        percent_encoding::percent_decode_str(&text.replace('+', " "))
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| malformed())
    };
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(raw));
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // RFC 6749 §2.3.1: what the oauth2 crate sends for id "my app" and secret "a+b/c=:d".
        let decoded = basic_credentials(&basic("my+app:a%2Bb%2Fc%3D%3Ad")).unwrap();
        assert_eq!(decoded, Some(("my app".into(), "a+b/c=:d".into())));
    }

    #[test]
    fn other_schemes_are_ignored_and_garbage_is_invalid_client() {
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(basic_credentials(&bearer).unwrap(), None);
        let mut garbage = HeaderMap::new();
        garbage.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(
            basic_credentials(&garbage).unwrap_err().error,
            "invalid_client"
        );
        assert!(basic_credentials(&basic("no-colon")).is_err());
    }
}
