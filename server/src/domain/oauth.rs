//! OAuth 2.0 connectors: starting an authorization (new or reauthorization) and what the
//! callback does with the `state` that comes back; completing it is in `oauth_completion`, the
//! tokens in `oauth_tokens`. [`Authorizations`] is the service that does it. Every provider-specific step goes through the type's
//! [`OAuthProvider`].
//!
//! The rules that peers get wrong live here:
//! - a `state` is random, stored only as a hash, bound to the account, the connector type and
//!   (for a reauthorization) the connector, works once, and expires;
//! - the external account is identified by stable ids, never by e-mail; a customer account links
//!   an external account once; a reauthorization must come back with the same account;
//! - a refresh is single-flight (an in-process lock, plus a row lock on PostgreSQL so several
//!   processes refresh once), and the rotated refresh token is committed before the access token
//!   is handed out;
//! - `invalid_grant` deauthorizes (tokens erased); transient failures never do.

use chrono::{DateTime, Utc};
use rand::RngCore as _;
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};

use super::{
    connector_type::{AuthMethod, ConnectorTypeId},
    error::{Error, Result},
    model::{AccountId, Connector, ConnectorId, ConnectorName, DisplayName},
    records::Records,
    settings::OAuthSettings,
};
use crate::{
    persistence::{AttemptRow, Consumed},
    providers::oauth::AuthorizationRequest,
};

/// Where the callback sends the browser when an authorization comes back, and who completes it.
#[derive(Debug, Clone, Default)]
pub struct ReturnTo {
    /// A configured return URL; without one the callback shows a page.
    pub url: Option<String>,
    /// The callback does not complete the authorization: it forwards the provider's parameters
    /// to `url`, and the orchestrator, having checked the browser is its signed-in user's,
    /// calls `CompleteAuthorization` with them (this binds the link to that user's session).
    pub orchestrator_completes: bool,
}

/// What the callback does with a `state` the browser brought back.
#[derive(Debug)]
pub enum CallbackStep {
    /// The orchestrator completes it: send the browser to this return URL with the provider's
    /// parameters.
    Forward(String),
    /// The orchestrator completes it and gave no return URL (it runs the browser leg itself):
    /// link nothing and tell the user to go back to the application.
    ReturnToApplication,
    /// The service completes it once the user confirms linking to this customer account.
    Confirm {
        /// The customer account the link is for.
        account: AccountId,
        /// The connector type being linked.
        connector_type: ConnectorTypeId,
    },
}

/// A started authorization.
#[derive(Debug)]
pub struct StartedAuthorization {
    /// Where to send the browser.
    pub url: String,
    /// When the link stops working.
    pub expire_time: DateTime<Utc>,
}

/// The parameters the provider sent to the redirect URI. `Debug` hides the code and state.
#[derive(Default)]
pub struct Callback {
    /// `state`.
    pub state: String,
    /// `code`, on consent.
    pub code: Option<String>,
    /// `error`, when not granted.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
    /// `iss` (RFC 9207), when the provider sent one.
    pub iss: Option<String>,
    /// The browser brought it to the callback (rather than the orchestrator calling
    /// `CompleteAuthorization`): refused for authorizations the orchestrator completes.
    pub from_browser: bool,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("has_code", &self.code.is_some())
            .field("error", &self.error)
            .field("iss", &self.iss)
            .finish_non_exhaustive()
    }
}

/// How a completion ended, with where the browser should go next.
#[derive(Debug)]
pub struct Completion {
    /// The return URL the authorization was started with, once the state is known.
    pub return_url: Option<String>,
    /// The connector, or why not.
    pub result: Result<Connector>,
}

/// Random bytes in a `state`; the rest is their MAC ([`Sealer::state_tag`]).
const STATE_RANDOM_LEN: usize = 16;

pub(super) fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// The OpenID Connect `nonce` of an authorization: derived from its `state`, which only the
/// service and the browser that brings the state back know, so nothing extra is stored.
pub(super) fn nonce_of(state: &str) -> String {
    hex::encode(Sha256::digest(format!("nonce/{state}").as_bytes()))
}

pub(crate) fn attempt_context(state_hash: &str) -> Vec<u8> {
    format!("authorization_attempt/{state_hash}/pkce_verifier").into_bytes()
}

/// The service that links OAuth 2.0 connectors: it starts authorizations, tells the callback
/// what to do with a `state`, and completes them. It owns the OAuth 2.0 settings and shares the
/// connector records; the callback router holds only this service.
#[derive(Debug, Clone)]
pub struct Authorizations {
    pub(super) records: Records,
    pub(super) oauth: OAuthSettings,
}

impl Authorizations {
    pub(super) fn new(records: Records, oauth: OAuthSettings) -> Self {
        Self { records, oauth }
    }

    fn check_return_url(&self, return_url: Option<&str>) -> Result<()> {
        match return_url {
            Some(url) if !self.oauth.return_urls.iter().any(|allowed| allowed == url) => {
                Err(Error::invalid(
                    "return_url",
                    "is not one of the return URLs this service is configured with (exact match)",
                ))
            }
            _ => Ok(()),
        }
    }

    /// Starts linking a new connector of an OAuth 2.0 type.
    pub async fn start_authorization(
        &self,
        account: AccountId,
        connector_type: ConnectorTypeId,
        display_name: Option<DisplayName>,
        return_to: ReturnTo,
    ) -> Result<StartedAuthorization> {
        self.start(account, connector_type, None, display_name, return_to)
            .await
    }

    /// Starts reauthorizing an OAuth 2.0 connector.
    pub async fn start_reauthorization(
        &self,
        name: &ConnectorName,
        return_to: ReturnTo,
    ) -> Result<StartedAuthorization> {
        let connector = self.records.get(name).await?;
        self.start(
            name.account.clone(),
            connector.connector_type,
            Some(name.connector.clone()),
            None,
            return_to,
        )
        .await
    }

    async fn start(
        &self,
        account: AccountId,
        connector_type: ConnectorTypeId,
        connector: Option<ConnectorId>,
        display_name: Option<DisplayName>,
        return_to: ReturnTo,
    ) -> Result<StartedAuthorization> {
        let provider = self.oauth.provider(connector_type)?;
        let ReturnTo {
            url: return_url,
            orchestrator_completes,
        } = return_to;
        self.check_return_url(return_url.as_deref())?;
        if orchestrator_completes && return_url.is_none() {
            return Err(Error::invalid(
                "return_url",
                "is required when orchestrator_completes is set (the browser is sent there)",
            ));
        }
        let orchestrator_completes =
            orchestrator_completes || !self.callback_may_complete(connector_type);
        let mut random = [0u8; STATE_RANDOM_LEN];
        rand::rng().fill_bytes(&mut random);
        let mut state_bytes = random.to_vec();
        state_bytes.extend_from_slice(&self.records.sealer.state_tag(&random));
        let state = hex::encode(state_bytes);
        let hash = state_hash(&state);
        let started = provider.authorization_url(AuthorizationRequest {
            redirect_uri: &self.oauth.redirect_uri,
            state: &state,
            nonce: &nonce_of(&state),
        })?;
        let (url, verifier) = (started.url, started.pkce_verifier);
        let now = self.records.clock.now();
        let expire_time = now + self.oauth.attempt_lifetime;
        self.records
            .store
            .insert_attempt(AttemptRow {
                pkce_verifier: self
                    .records
                    .sealer
                    .seal(verifier.expose_secret().as_bytes(), &attempt_context(&hash)),
                state_hash: hash,
                account: account.as_str().to_owned(),
                connector_type: connector_type.as_str().to_owned(),
                connector_id: connector.map(|id| id.as_str().to_owned()),
                display_name: display_name.map(|name| name.as_str().to_owned()),
                return_url,
                orchestrator_completes,
                create_time: now.timestamp_micros(),
                expire_time: expire_time.timestamp_micros(),
            })
            .await?;
        Ok(StartedAuthorization { url, expire_time })
    }

    /// Whether the callback may complete an authorization of this type itself (after the
    /// user's confirmation): only when the deployment opted in, and never for a tenant-wide
    /// admin consent.
    pub(super) fn callback_may_complete(&self, connector_type: ConnectorTypeId) -> bool {
        self.oauth.callback_completes
            && connector_type.info().auth_method != AuthMethod::OAuth2AdminConsent
    }

    /// Whether `state` is one this service issued: 64 lowercase hex digits, 16 random bytes
    /// followed by their MAC under a configured master key's state sub-key. A forged or
    /// mistyped state is refused with this check alone, before any database query, so a flood
    /// of them costs next to nothing.
    pub fn issued_state(&self, state: &str) -> bool {
        if state.len() != 2 * (STATE_RANDOM_LEN + crate::crypto::STATE_TAG_LEN)
            || !state
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
        {
            return false;
        }
        let Ok(bytes) = hex::decode(state) else {
            return false;
        };
        let (random, tag) = bytes.split_at(STATE_RANDOM_LEN);
        self.records.sealer.check_state_tag(random, tag)
    }

    /// What the callback does with a `state` the browser brought back, without using it up.
    pub async fn callback_step(&self, state: &str) -> Result<CallbackStep> {
        if !self.issued_state(state) {
            return Err(Error::AuthorizationStateInvalid("unknown"));
        }
        let attempt = match self
            .records
            .store
            .peek_attempt(
                &state_hash(state),
                self.records.clock.now().timestamp_micros(),
            )
            .await?
        {
            Consumed::Attempt(attempt) => *attempt,
            Consumed::Unknown => return Err(Error::AuthorizationStateInvalid("unknown")),
            Consumed::AlreadyUsed => return Err(Error::AuthorizationStateInvalid("already used")),
            Consumed::Expired => return Err(Error::AuthorizationExpired),
        };
        let corrupt = || {
            Error::Internal(format!(
                "authorization attempt {} is corrupt",
                attempt.state_hash
            ))
        };
        let connector_type = self
            .records
            .catalogue
            .parse(&attempt.connector_type)
            .ok_or_else(corrupt)?;
        if attempt.orchestrator_completes || !self.callback_may_complete(connector_type) {
            return Ok(match attempt.return_url {
                Some(url) => CallbackStep::Forward(url),
                None => CallbackStep::ReturnToApplication,
            });
        }
        Ok(CallbackStep::Confirm {
            account: AccountId::new(&attempt.account).map_err(|_| corrupt())?,
            connector_type,
        })
    }
}
