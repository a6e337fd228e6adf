//! The interactive legs: validating an authorization (or admin consent) request and carrying
//! out the person's decision.
//!
//! Shared by the HTTP pages (`GET` shows, `POST` decides) and by the handle's
//! [`crate::Emulator::complete_authorization`] family, which plays the browser for tests that
//! have none. As at Microsoft and in RFC 6749 §4.1.2.1, a request whose client or redirect URI
//! cannot be trusted gets an error *page* (never a redirect, which would make the emulator an
//! open redirector); any later problem is redirected back with `error=`.

use std::time::SystemTime;

use axum::http::StatusCode;

use crate::aad::{AadError, known_message};
use crate::model::{Flavour, Tenant};
use crate::params::{Params, has_scope, redirect_with, split_scopes};
use crate::records::{Authority, Code};
use crate::store::Store;

/// How a request is turned away.
#[derive(Debug)]
pub(crate) enum Rejection {
    /// Shown as an HTML error page; the browser stays at the emulator.
    Page(AadError),
    /// Sent back to the (validated) redirect URI: the full `Location`.
    Redirect(String),
}

impl From<AadError> for Rejection {
    fn from(error: AadError) -> Self {
        Rejection::Page(error)
    }
}

/// A validated `…/oauth2/v2.0/authorize` request.
#[derive(Clone, Debug)]
pub(crate) struct AuthorizationRequest {
    pub(crate) authority: Authority,
    pub(crate) client_id: String,
    pub(crate) client_name: String,
    pub(crate) redirect_uri: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) state: Option<String>,
    pub(crate) code_challenge: String,
    pub(crate) nonce: Option<String>,
    pub(crate) login_hint: Option<String>,
    /// `prompt=admin_consent`: a work account signing in consents for its whole tenant.
    pub(crate) admin_consent: bool,
}

/// A validated `…/v2.0/adminconsent` request.
#[derive(Clone, Debug)]
pub(crate) struct AdminConsentRequest {
    pub(crate) client_id: String,
    pub(crate) client_name: String,
    pub(crate) redirect_uri: String,
    pub(crate) state: Option<String>,
    pub(crate) scope: Option<String>,
    /// The tenants the administrator may pick.
    pub(crate) tenants: Vec<Tenant>,
}

/// What the person chose on a page.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Decision<'a> {
    /// Accept, as this account (authorize: a user's UPN or object id) or for this tenant
    /// (admin consent: tenant id).
    Accept(&'a str),
    /// Cancel.
    Deny,
}

/// The client and redirect URI, checked before anything may be redirected.
fn trusted_client(
    store: &Store,
    segment: &str,
    params: &Params,
) -> Result<(String, String, String), AadError> {
    let client_id = params.require("client_id")?;
    let client = store
        .client(client_id)
        .ok_or_else(|| AadError::application_not_found(client_id, segment))?;
    let redirect_uri = params.require("redirect_uri")?;
    if !client.redirect_uris.iter().any(|uri| uri == redirect_uri) {
        return Err(AadError::invalid_request(
            50011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the \
                 redirect URIs configured for the application '{client_id}'. Make sure the \
                 redirect URI sent in the request matches one added to your application."
            ),
        ));
    }
    Ok((
        client.client_id.clone(),
        client.display_name.clone(),
        redirect_uri.to_owned(),
    ))
}

/// An `error=` redirect carrying `state`.
fn error_redirect(redirect_uri: &str, state: Option<&str>, error: &AadError) -> Rejection {
    let description = error.description();
    let mut pairs = vec![("error", error.error), ("error_description", &description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    Rejection::Redirect(redirect_with(redirect_uri, &pairs))
}

/// A PKCE S256 challenge, well formed.
fn check_challenge(params: &Params, code_challenge: &str) -> Result<(), AadError> {
    if params.get("code_challenge_method") != Some("S256") {
        return Err(AadError::invalid_request(
            9002325,
            "Proof Key for Code Exchange requires code_challenge_method=S256 (plain is refused).",
        ));
    }
    let well_formed = (43..=128).contains(&code_challenge.len())
        && code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return Err(AadError::invalid_request(
            501491,
            "Invalid size of Code_Challenge parameter.",
        ));
    }
    Ok(())
}

/// Validates an authorization request made at `{segment}`.
pub(crate) fn validate_authorization(
    store: &Store,
    segment: &str,
    params: &Params,
) -> Result<AuthorizationRequest, Rejection> {
    let authority = store.authority(segment)?;
    let (client_id, client_name, redirect_uri) = trusted_client(store, segment, params)?;
    let state = params.get("state");
    let fail = |error: AadError| error_redirect(&redirect_uri, state, &error);

    match params.get("response_type") {
        Some("code") => {}
        Some(other) => {
            return Err(fail(AadError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_response_type",
                700054,
                format!("response_type '{other}' is not supported; the emulator issues codes."),
            )));
        }
        None => return Err(fail(AadError::missing("response_type"))),
    }
    let mut scopes = split_scopes(params.get("scope").unwrap_or_default());
    if scopes.is_empty() {
        return Err(fail(AadError::missing("scope")));
    }
    let flavour = store
        .client(&client_id)
        .map(|client| client.flavour)
        .unwrap_or_default();
    // Other providers ask for a refresh token with a parameter of their own (Box always
    // issues one); it is recorded as the `offline_access` scope the token endpoint reads.
    let offline = match flavour {
        Flavour::Microsoft => false,
        Flavour::Google => params.get("access_type") == Some("offline"),
        Flavour::Dropbox => params.get("token_access_type") == Some("offline"),
        Flavour::Box => true,
    };
    if offline && !has_scope(&scopes, "offline_access") {
        scopes.push("offline_access".to_owned());
    }
    // Box documents no PKCE: its codes are bound to the client's secret alone.
    let code_challenge = match (flavour, params.get("code_challenge")) {
        (_, Some(challenge)) => Some(challenge),
        (Flavour::Box, None) => None,
        (_, None) => {
            return Err(fail(AadError::invalid_request(
                9002325,
                "Proof Key for Code Exchange is required: send code_challenge and \
                 code_challenge_method=S256.",
            )));
        }
    };
    if let Some(code_challenge) = code_challenge {
        check_challenge(params, code_challenge).map_err(fail)?;
    }
    if params.get("prompt") == Some("none") {
        return Err(fail(AadError::invalid_request(
            9002325,
            "Proof Key for Code Exchange is required: send code_challenge and \
             code_challenge_method=S256.",
        )));
    };
    if params.get("prompt") == Some("none") {
        // No browser session exists, so a silent request cannot succeed.
        return Err(fail(AadError::new(
            StatusCode::BAD_REQUEST,
            "login_required",
            50058,
            known_message(50058),
        )));
    }
    Ok(AuthorizationRequest {
        authority,
        client_id,
        client_name,
        redirect_uri: redirect_uri.clone(),
        scopes,
        state: state.map(str::to_owned),
        code_challenge: code_challenge.unwrap_or_default().to_owned(),
        nonce: params.get("nonce").map(str::to_owned),
        login_hint: params.get("login_hint").map(str::to_owned),
        admin_consent: params.get("prompt") == Some("admin_consent"),
    })
}

/// Carries out the decision on a validated authorization request; returns the `Location`
/// (with `code` or `error=access_denied`).
pub(crate) fn decide_authorization(
    store: &mut Store,
    segment: &str,
    request: &AuthorizationRequest,
    decision: Decision<'_>,
) -> Result<String, AadError> {
    let state = request.state.as_deref();
    let account = match decision {
        Decision::Deny => return Ok(denied(&request.redirect_uri, state)),
        Decision::Accept(account) => account,
    };
    let user = store
        .user(account)
        .filter(|user| request.authority.admits(user))
        .ok_or_else(|| {
            AadError::invalid_request(
                50020,
                format!(
                    "User account '{account}' does not exist in tenant '{segment}' and cannot \
                     access the application '{}' in that tenant.",
                    request.client_id
                ),
            )
        })?;
    let user_oid = user.object_id.clone();
    if request.admin_consent && user.kind == crate::model::AccountKind::Work {
        // The signed-in work account consents for its tenant, as an administrator would.
        let tenant_id = user.tenant_id.clone();
        let _ = store.grant_admin_consent(&tenant_id, &request.client_id);
    }
    let grant = store.grant_for(&user_oid, &request.client_id);
    let expires_at: SystemTime = store.now() + store.lifetimes.authorization_code;
    let code = store.issue_code(Code {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        scopes: request.scopes.clone(),
        grant,
        nonce: request.nonce.clone(),
        expires_at,
        redeemed: false,
    });
    let mut pairs = vec![("code", code.as_str())];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    // Google names itself in the response (RFC 9207), which lets a client spot a mix-up.
    let google = store
        .client(&request.client_id)
        .is_some_and(|client| client.flavour == Flavour::Google);
    let issuer = store.google_issuer();
    if google {
        pairs.push(("iss", issuer.as_str()));
    }
    Ok(redirect_with(&request.redirect_uri, &pairs))
}

/// Validates an admin consent request made at `{segment}`. Every problem is a page: the
/// request names no response type or PKCE that could go wrong after the redirect URI.
pub(crate) fn validate_admin_consent(
    store: &Store,
    segment: &str,
    params: &Params,
) -> Result<AdminConsentRequest, AadError> {
    let authority = store.authority(segment)?;
    let (client_id, client_name, redirect_uri) = trusted_client(store, segment, params)?;
    let tenants: Vec<Tenant> = store
        .tenants_for_admin_consent(&authority)
        .into_iter()
        .cloned()
        .collect();
    if tenants.is_empty() {
        return Err(AadError::invalid_request(
            90130,
            format!(
                "Admin consent needs a work tenant; '{segment}' has none (personal Microsoft \
                 accounts cannot consent for an organization)."
            ),
        ));
    }
    Ok(AdminConsentRequest {
        client_id,
        client_name,
        redirect_uri,
        state: params.get("state").map(str::to_owned),
        scope: params.get("scope").map(str::to_owned),
        tenants,
    })
}

/// Carries out an administrator's decision; returns the `Location`.
pub(crate) fn decide_admin_consent(
    store: &mut Store,
    request: &AdminConsentRequest,
    decision: Decision<'_>,
) -> Result<String, AadError> {
    let state = request.state.as_deref();
    let tenant_id = match decision {
        Decision::Deny => return Ok(denied(&request.redirect_uri, state)),
        Decision::Accept(tenant_id) => tenant_id,
    };
    let tenant = request
        .tenants
        .iter()
        .find(|tenant| tenant.tenant_id.eq_ignore_ascii_case(tenant_id))
        .ok_or_else(|| AadError::tenant_not_found(tenant_id))?;
    store
        .grant_admin_consent(&tenant.tenant_id, &request.client_id)
        .map_err(|error| AadError::invalid_request(90002, error.to_string()))?;
    let mut pairs = vec![
        ("tenant", tenant.tenant_id.as_str()),
        ("admin_consent", "True"),
    ];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    if let Some(scope) = request.scope.as_deref() {
        pairs.push(("scope", scope));
    }
    Ok(redirect_with(&request.redirect_uri, &pairs))
}

/// The redirect for a person who clicked "Cancel" (AADSTS65004).
fn denied(redirect_uri: &str, state: Option<&str>) -> String {
    let description = AadError::invalid_request(65004, known_message(65004)).description();
    let mut pairs = vec![
        ("error", "access_denied"),
        ("error_subcode", "cancel"),
        ("error_description", description.as_str()),
    ];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    redirect_with(redirect_uri, &pairs)
}
