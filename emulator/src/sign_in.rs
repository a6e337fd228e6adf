//! Sign-in decisions made without a browser: the handle's `complete_authorization` family and
//! the admin API's `POST /_emulator/authorize` (and admin consent) both come here, beside the
//! decisions `authorize` makes for a browser, so neither the handle nor the HTTP layer depends
//! on the other.

use crate::aad::AadError;
use crate::authorize::{self, Decision, Rejection};
use crate::params::Params;
use crate::store::Shared;

/// What a simulated browser step ([`Emulator::complete_authorization`] and friends) ran into
/// instead of a redirect: the error page a person would have seen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("AADSTS{aadsts}: {message}")]
pub struct SignInError {
    /// The AADSTS code on the page (e.g. 50011 for an unregistered redirect URI).
    pub aadsts: u32,
    /// The page's message.
    pub message: String,
}

impl From<AadError> for SignInError {
    fn from(error: AadError) -> Self {
        SignInError {
            aadsts: error.code,
            message: error.message,
        }
    }
}

/// Carries out a decision on an authorization URL without a browser (the handle's
/// `complete_authorization` family and `POST /_emulator/authorize`).
pub(crate) fn authorization_decision(
    shared: &Shared,
    url: &str,
    decision: Decision<'_>,
) -> Result<String, SignInError> {
    let (segment, params) = split_url(url, &["oauth2", "v2.0", "authorize"])?;
    let mut store = shared.lock();
    store.counters.authorize_decisions += 1;
    let request = match authorize::validate_authorization(&store, &segment, &params) {
        Ok(request) => request,
        Err(Rejection::Page(error)) => return Err(error.into()),
        Err(Rejection::Redirect(location)) => return Ok(location),
    };
    Ok(authorize::decide_authorization(
        &mut store, &segment, &request, decision,
    )?)
}

/// Carries out a decision on an admin consent URL without a browser.
pub(crate) fn admin_consent_decision(
    shared: &Shared,
    url: &str,
    decision: Decision<'_>,
) -> Result<String, SignInError> {
    let (segment, params) = split_url(url, &["v2.0", "adminconsent"])?;
    let mut store = shared.lock();
    store.counters.adminconsent_decisions += 1;
    let request = authorize::validate_admin_consent(&store, &segment, &params)?;
    Ok(authorize::decide_admin_consent(
        &mut store, &request, decision,
    )?)
}

/// Splits `…/{tenant}/{rest…}?query` into the tenant segment and the parameters.
fn split_url(url: &str, rest: &[&str]) -> Result<(String, Params), SignInError> {
    let wrong = || SignInError {
        aadsts: 9002313,
        message: format!("'{url}' is not a {} URL of the emulator.", rest.join("/")),
    };
    let parsed = url::Url::parse(url).map_err(|_| wrong())?;
    let segments: Vec<&str> = parsed
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    match segments.split_first() {
        Some((tenant, tail)) if tail == rest => {
            let params = Params::parse(parsed.query().unwrap_or_default().as_bytes())?;
            Ok(((*tenant).to_owned(), params))
        }
        _ => Err(wrong()),
    }
}
