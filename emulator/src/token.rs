//! The token endpoint's grants and the RFC 7009 revocation endpoint, with client
//! authentication.
//!
//! Each check answers the AADSTS code Microsoft uses for it, because a client's reaction
//! depends on the code: `invalid_grant` with 70008, 700082, 50173 or 70000 means "ask the user
//! again", while 5xx and 429 mean "try later, keep the refresh token". Where Microsoft's
//! behaviour is laxer than good practice, the emulator is strict on purpose (a rotated refresh
//! token stops working at once; a code is burnt by its first redemption attempt, even a
//! failed one) so a client that gets it wrong fails loudly in tests.

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::aad::{AadError, known_message};
use crate::model::Client;
use crate::params::{Params, has_scope, split_scopes};
use crate::records::{Authority, Subject};
use crate::store::Store;

/// A successful token response, in Microsoft's field order.
#[derive(Debug, Serialize)]
pub(crate) struct TokenResponse {
    token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    expires_in: u64,
    ext_expires_in: u64,
    access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

/// Client credentials as sent with HTTP Basic (`Authorization: Basic …`), already decoded.
pub(crate) type BasicCredentials = (String, String);

/// Answers `POST /{segment}/oauth2/v2.0/token`.
pub(crate) fn exchange(
    store: &mut Store,
    segment: &str,
    params: &Params,
    basic: Option<BasicCredentials>,
) -> Result<TokenResponse, AadError> {
    let authority = store.authority(segment)?;
    let grant_type = params.require("grant_type")?;
    let client = authenticate(store, segment, params, basic)?;
    match grant_type {
        "authorization_code" => redeem_code(store, &authority, segment, &client, params),
        "refresh_token" => refresh(store, &authority, segment, &client, params),
        "client_credentials" => client_credentials(store, &authority, segment, &client, params),
        other => Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

/// Answers `POST /oauth2/revoke` (RFC 7009): a refresh token revokes its whole grant (its
/// siblings and the access tokens issued from it, RFC 7009 §2.1); an access token only
/// itself; an unknown token is fine (§2.2).
pub(crate) fn revoke(
    store: &mut Store,
    params: &Params,
    basic: Option<BasicCredentials>,
) -> Result<(), AadError> {
    let client = authenticate(store, "common", params, basic)?;
    let token = params.require("token")?;
    let not_yours = || {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            70000,
            "The token was issued to another client.",
        )
    };
    if let Some(refresh_token) = store.refresh_tokens.get(token) {
        if refresh_token.client_id != client.client_id {
            return Err(not_yours());
        }
        let grant = refresh_token.grant;
        store.revoke_grant(grant);
    } else if let Some(access_token) = store.access_tokens.get_mut(token) {
        if access_token.client_id != client.client_id {
            return Err(not_yours());
        }
        access_token.revoked = true;
    }
    Ok(())
}

/// Identifies the calling client by HTTP Basic or `client_id`/`client_secret` in the body
/// (one method only, RFC 6749 §2.3.1); public clients send only `client_id`.
fn authenticate(
    store: &Store,
    segment: &str,
    params: &Params,
    basic: Option<BasicCredentials>,
) -> Result<Client, AadError> {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    let (client_id, secret) = match basic {
        Some((id, secret)) => {
            if body_secret.is_some() {
                return Err(AadError::malformed(
                    "Use one client authentication method: HTTP Basic or client_secret in the \
                     body, not both.",
                ));
            }
            if body_id.is_some_and(|body_id| body_id != id) {
                return Err(AadError::malformed(
                    "The client_id in the body differs from the HTTP Basic user name.",
                ));
            }
            (id, Some(secret))
        }
        None => (
            params.require("client_id")?.to_owned(),
            body_secret.map(str::to_owned),
        ),
    };
    let client = store
        .client(&client_id)
        .ok_or_else(|| AadError::application_not_found(&client_id, segment))?;
    match (client.client_secret.as_deref(), secret.as_deref()) {
        (None, None) => Ok(client.clone()),
        (None, Some(_)) => Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be \
             presented.",
        )),
        (Some(_), None) => Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or \
             'client_secret'.",
        )),
        (Some(expected), Some(given)) if expected == given => Ok(client.clone()),
        (Some(_), Some(_)) => Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is \
                 the client secret value, not the client secret ID, for a secret added to app \
                 '{client_id}'."
            ),
        )),
    }
}

/// `grant_type=authorization_code`, with PKCE (RFC 7636 §4.6) and exact `redirect_uri`.
fn redeem_code(
    store: &mut Store,
    authority: &Authority,
    segment: &str,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, AadError> {
    let value = params.require("code")?;
    let redirect_uri = params.require("redirect_uri")?;
    let now = store.now();
    let code = store.codes.get_mut(value).ok_or_else(|| {
        AadError::invalid_grant(
            9002313,
            "Invalid request. Request is malformed or invalid. The code is not one the emulator \
             issued.",
        )
    })?;
    if code.client_id != client.client_id {
        return Err(AadError::invalid_grant(
            70000,
            "The provided value for the 'code' parameter is not valid: the code was issued to \
             another client.",
        ));
    }
    if code.redeemed {
        return Err(AadError::invalid_grant_code(54005));
    }
    code.redeemed = true;
    if now >= code.expires_at {
        return Err(AadError::invalid_grant_code(70008));
    }
    if code.redirect_uri != redirect_uri {
        return Err(AadError::invalid_grant(
            500112,
            format!(
                "The reply address '{redirect_uri}' does not match the reply address '{}' \
                 provided when requesting Authorization code.",
                code.redirect_uri
            ),
        ));
    }
    // A code issued without a challenge (Box, which documents no PKCE) takes no verifier.
    let verified = if code.code_challenge.is_empty() {
        params.get("code_verifier").is_none()
    } else {
        params
            .get("code_verifier")
            .is_some_and(|verifier| pkce_s256(verifier) == code.code_challenge)
    };
    if !verified {
        return Err(AadError::invalid_grant(
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization \
             request.",
        ));
    }
    let (grant, scopes, nonce) = (code.grant, code.scopes.clone(), code.nonce.clone());
    admitted(store, authority, segment, grant)?;

    let (access_token, expires_in) =
        store.mint_access_token(&client.client_id, Subject::User { grant }, scopes.clone());
    let refresh_token = has_scope(&scopes, "offline_access")
        .then(|| store.mint_refresh_token(&client.client_id, grant, scopes.clone()));
    let id_token = store.id_token(&client.client_id, grant, &scopes, nonce.as_deref());
    Ok(TokenResponse {
        token_type: "Bearer",
        scope: Some(scopes.join(" ")),
        expires_in,
        ext_expires_in: expires_in,
        access_token,
        refresh_token,
        id_token,
    })
}

/// `grant_type=refresh_token`, rotating: the presented token is spent and a new one returned.
fn refresh(
    store: &mut Store,
    authority: &Authority,
    segment: &str,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, AadError> {
    let value = params.require("refresh_token")?;
    let now = store.now();
    let presented = store.refresh_tokens.get(value).ok_or_else(|| {
        AadError::invalid_grant(
            9002313,
            "Invalid request. Request is malformed or invalid. The refresh token is not one the \
             emulator issued.",
        )
    })?;
    if presented.client_id != client.client_id {
        return Err(AadError::invalid_grant(
            70000,
            "The provided value for the 'refresh_token' parameter is not valid: the token was \
             issued to another client.",
        ));
    }
    let grant = presented.grant;
    if store.grant_revoked(grant) {
        return Err(AadError::invalid_grant_code(50173));
    }
    if presented.rotated {
        return Err(AadError::invalid_grant(
            70008,
            format!(
                "{} This refresh token was already exchanged for a newer one (rotation).",
                known_message(70008)
            ),
        ));
    }
    if now >= presented.expires_at {
        return Err(AadError::invalid_grant_code(700082));
    }
    let granted = presented.scopes.clone();
    let scopes = match params.get("scope") {
        None => granted.clone(),
        Some(requested) => {
            let requested = split_scopes(requested);
            if let Some(missing) = requested.iter().find(|scope| !has_scope(&granted, scope)) {
                return Err(AadError::invalid_grant(
                    65001,
                    format!(
                        "The user or administrator has not consented to use the application \
                         with ID '{}' for the scope '{missing}'. Send an interactive \
                         authorization request for this user and resource.",
                        client.client_id
                    ),
                ));
            }
            requested
        }
    };
    admitted(store, authority, segment, grant)?;

    // Rotation (Microsoft, Box): the presented token is spent and a new one returned. Google
    // and Dropbox keep the refresh token and answer without one.
    let refresh_token = if client.flavour.rotates_refresh_tokens() {
        if let Some(presented) = store.refresh_tokens.get_mut(value) {
            presented.rotated = true;
        }
        Some(store.mint_refresh_token(&client.client_id, grant, granted))
    } else {
        None
    };
    let (access_token, expires_in) =
        store.mint_access_token(&client.client_id, Subject::User { grant }, scopes.clone());
    let id_token = store.id_token(&client.client_id, grant, &scopes, None);
    Ok(TokenResponse {
        token_type: "Bearer",
        scope: Some(scopes.join(" ")),
        expires_in,
        ext_expires_in: expires_in,
        access_token,
        refresh_token,
        id_token,
    })
}

/// `grant_type=client_credentials`: an app-only token for one tenant whose administrator
/// consented. Like Microsoft, the answer has no `scope`, no refresh token and no id token.
fn client_credentials(
    store: &mut Store,
    authority: &Authority,
    segment: &str,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, AadError> {
    let Authority::Tenant(tenant_id) = authority else {
        return Err(AadError::invalid_request(
            900023,
            format!(
                "Specified tenant identifier '{segment}' is not valid for the client \
                 credentials grant: use the tenant id or its domain."
            ),
        ));
    };
    if client.client_secret.is_none() {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or \
             'client_secret'.",
        ));
    }
    let scope = params.require("scope")?;
    let scopes = split_scopes(scope);
    if scopes.len() != 1 || !scopes[0].ends_with("/.default") {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows \
                 must have a scope value with /.default suffixed to the resource identifier \
                 (application ID URI)."
            ),
        ));
    }
    if !store.has_admin_consent(tenant_id, &client.client_id) {
        return Err(AadError::application_not_found(
            &client.client_id,
            tenant_id,
        ));
    }
    let subject = Subject::App {
        tenant_id: tenant_id.clone(),
    };
    let (access_token, expires_in) = store.mint_access_token(&client.client_id, subject, scopes);
    Ok(TokenResponse {
        token_type: "Bearer",
        scope: None,
        expires_in,
        ext_expires_in: expires_in,
        access_token,
        refresh_token: None,
        id_token: None,
    })
}

/// The grant is live and its user may use the `{tenant}` the call was made at.
fn admitted(
    store: &Store,
    authority: &Authority,
    segment: &str,
    grant: usize,
) -> Result<(), AadError> {
    if store.grant_revoked(grant) {
        return Err(AadError::invalid_grant_code(50173));
    }
    match store.grant_user(grant) {
        Some(user) if authority.admits(user) => Ok(()),
        Some(user) => Err(AadError::invalid_grant(
            50020,
            format!(
                "User account '{}' does not exist in tenant '{segment}'.",
                user.user_principal_name
            ),
        )),
        // The user was replaced by a registration under another object id.
        None => Err(AadError::invalid_grant_code(70000)),
    }
}

/// `BASE64URL(SHA256(verifier))`, RFC 7636 §4.2.
fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}
