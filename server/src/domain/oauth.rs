//! OAuth 2.0 connectors: starting and completing an authorization (new or reauthorization), and
//! keeping their tokens working.
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
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

use super::{
    Connectors,
    connector_type::{AuthMethod, ConnectorTypeId},
    error::{Error, Result},
    model::{
        AccountId, Connector, ConnectorId, ConnectorName, DisplayName, ExternalAccount, Labels,
    },
};
use crate::{
    persistence::{AttemptRow, Consumed},
    providers::{
        self,
        microsoft::{Identity, OAuthApp, Tokens},
    },
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
    /// `tenant` (admin consent).
    pub tenant: Option<String>,
    /// `admin_consent` (admin consent).
    pub admin_consent: Option<String>,
    /// The browser brought it to the callback (rather than the orchestrator calling
    /// `CompleteAuthorization`): refused for authorizations the orchestrator completes.
    pub from_browser: bool,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("has_code", &self.code.is_some())
            .field("error", &self.error)
            .field("tenant", &self.tenant)
            .field("admin_consent", &self.admin_consent)
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

fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// The OpenID Connect `nonce` of an authorization: derived from its `state`, which only the
/// service and the browser that brings the state back know, so nothing extra is stored.
fn nonce_of(state: &str) -> String {
    hex::encode(Sha256::digest(format!("nonce/{state}").as_bytes()))
}

pub(crate) fn attempt_context(state_hash: &str) -> Vec<u8> {
    format!("authorization_attempt/{state_hash}/pkce_verifier").into_bytes()
}

impl Connectors {
    pub(super) fn app(&self, connector_type: ConnectorTypeId) -> Result<&OAuthApp> {
        if connector_type.info().auth_method.uses_credentials() {
            return Err(Error::CredentialsRequired(connector_type));
        }
        self.oauth
            .apps
            .get(&connector_type)
            .ok_or(Error::OAuthNotConfigured(connector_type))
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
        let connector = self.get(name).await?;
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
        let app = self.app(connector_type)?;
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
        state_bytes.extend_from_slice(&self.sealer.state_tag(&random));
        let state = hex::encode(state_bytes);
        let hash = state_hash(&state);
        // Office 365 is linked by an administrator signing in with `prompt=admin_consent`: the
        // consent covers the tenant, and the tenant is then taken from the administrator's own
        // id token, never from a URL parameter anyone can edit.
        let prompt = match connector_type.info().auth_method {
            AuthMethod::OAuth2AdminConsent => "admin_consent",
            _ => "select_account",
        };
        let started = self.microsoft.authorization_url(
            app,
            &self.oauth.redirect_uri,
            &state,
            &nonce_of(&state),
            prompt,
        )?;
        let (url, verifier) = (started.url, started.pkce_verifier);
        let now = self.clock.now();
        let expire_time = now + self.oauth.attempt_lifetime;
        self.store
            .insert_attempt(AttemptRow {
                pkce_verifier: self
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
    fn callback_may_complete(&self, connector_type: ConnectorTypeId) -> bool {
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
        self.sealer.check_state_tag(random, tag)
    }

    /// What the callback does with a `state` the browser brought back, without using it up.
    pub async fn callback_step(&self, state: &str) -> Result<CallbackStep> {
        if !self.issued_state(state) {
            return Err(Error::AuthorizationStateInvalid("unknown"));
        }
        let attempt = match self
            .store
            .peek_attempt(&state_hash(state), self.clock.now().timestamp_micros())
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
        let connector_type = ConnectorTypeId::parse(&attempt.connector_type).ok_or_else(corrupt)?;
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

    /// Completes an authorization with the provider's redirect parameters. `may_access` says
    /// whether the caller may act on the account the state is bound to (the browser callback
    /// holds the state itself as proof and passes `|_| true`); a state of another account
    /// answers as unknown.
    pub async fn complete_authorization(
        &self,
        callback: Callback,
        may_access: impl Fn(&AccountId) -> bool,
    ) -> Completion {
        if !self.issued_state(&callback.state) {
            return failed(None, Error::AuthorizationStateInvalid("unknown"));
        }
        let now = self.clock.now();
        let attempt = match self
            .store
            .consume_attempt(
                &state_hash(&callback.state),
                now.timestamp_micros(),
                |account| AccountId::new(account).is_ok_and(|account| may_access(&account)),
            )
            .await
        {
            Ok(Consumed::Attempt(attempt)) => *attempt,
            Ok(Consumed::Unknown) => {
                return failed(None, Error::AuthorizationStateInvalid("unknown"));
            }
            Ok(Consumed::AlreadyUsed) => {
                return failed(None, Error::AuthorizationStateInvalid("already used"));
            }
            Ok(Consumed::Expired) => return failed(None, Error::AuthorizationExpired),
            Err(error) => return failed(None, error.into()),
        };
        let return_url = attempt.return_url.clone();
        let callback_may_complete = ConnectorTypeId::parse(&attempt.connector_type)
            .is_some_and(|connector_type| self.callback_may_complete(connector_type));
        if callback.from_browser && (attempt.orchestrator_completes || !callback_may_complete) {
            // Only reachable if the callback's check lost a race, or by a browser posting the
            // confirmation form for an attempt the orchestrator completes; never link here.
            return failed(
                return_url,
                Error::AuthorizationStateInvalid("completed by the orchestrator"),
            );
        }
        // The state is used up: the rest runs in its own task, so a caller that goes away (its
        // deadline) does not lose a link the provider already granted, and a transient failure
        // is reported as an interrupted authorization to start again (the same redirect cannot
        // be retried).
        let this = self.clone();
        let finished = tokio::spawn(async move { this.finish(attempt, callback, now).await })
            .await
            .unwrap_or_else(|error| {
                Err(Error::Internal(format!(
                    "authorization task failed: {error}"
                )))
            });
        let result = finished.map_err(|error| match error {
            Error::ProviderUnavailable { retry_after, .. } => {
                Error::AuthorizationInterrupted { retry_after }
            }
            Error::StorageUnavailable | Error::ConcurrentModification(_) => {
                Error::AuthorizationInterrupted {
                    retry_after: std::time::Duration::from_secs(5),
                }
            }
            other => other,
        });
        Completion { result, return_url }
    }

    async fn finish(
        &self,
        attempt: AttemptRow,
        callback: Callback,
        now: DateTime<Utc>,
    ) -> Result<Connector> {
        let corrupt = || {
            Error::Internal(format!(
                "authorization attempt {} is corrupt",
                attempt.state_hash
            ))
        };
        let connector_type = ConnectorTypeId::parse(&attempt.connector_type).ok_or_else(corrupt)?;
        let account = AccountId::new(&attempt.account).map_err(|_| corrupt())?;
        if let Some(error) = callback.error {
            let description = callback.error_description.unwrap_or_default();
            return Err(if error == "access_denied" {
                Error::AuthorizationDenied(description)
            } else {
                Error::AuthorizationCodeRejected(format!("{error}: {description}"))
            });
        }
        let app = self.app(connector_type)?;
        let (tokens, identity) = match connector_type.info().auth_method {
            AuthMethod::OAuth2AdminConsent => {
                let signed_in = self.exchange(app, &attempt, callback.code, now).await?;
                // The tenant of the administrator who signed in and consented; the callback's
                // `tenant` parameter is ignored. A client-credentials token for it proves the
                // consent, and the app-only tokens are what the connector keeps.
                let tenant = self.microsoft.signed_in_tenant(
                    &signed_in,
                    &app.client_id,
                    &nonce_of(&callback.state),
                    now,
                )?;
                let tokens = self
                    .microsoft
                    .app_token(app, &tenant, now)
                    .await
                    .map_err(code_rejected)?;
                let identity = self.microsoft.tenant(&tenant, &tokens).await?;
                (tokens, identity)
            }
            _ => {
                let tokens = self.exchange(app, &attempt, callback.code, now).await?;
                if tokens.refresh_token.is_none() {
                    // Without one the connector would stop working within the hour.
                    return Err(Error::AuthorizationCodeRejected(
                        "the provider granted no refresh token (offline_access)".into(),
                    ));
                }
                let identity = self
                    .microsoft
                    .signed_in_user(&tokens, &app.client_id, &nonce_of(&callback.state), now)
                    .await?;
                (tokens, identity)
            }
        };
        match attempt.connector_id {
            Some(id) => {
                let name = ConnectorName {
                    account,
                    connector: ConnectorId::new(&id).map_err(|_| corrupt())?,
                };
                self.finish_reauthorization(&name, identity, tokens).await
            }
            None => {
                let display_name = match attempt.display_name {
                    Some(name) => Some(DisplayName::new(&name).map_err(|_| corrupt())?),
                    None => None,
                };
                self.finish_new(account, connector_type, display_name, identity, tokens, now)
                    .await
            }
        }
    }

    /// Redeems the authorization code of an attempt with its PKCE verifier.
    async fn exchange(
        &self,
        app: &OAuthApp,
        attempt: &AttemptRow,
        code: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Tokens> {
        let code = code
            .filter(|code| !code.is_empty())
            .ok_or_else(|| Error::invalid("code", "is required"))?;
        let corrupt = || {
            Error::Internal(format!(
                "authorization attempt {} is corrupt",
                attempt.state_hash
            ))
        };
        let verifier = self
            .sealer
            .open(
                &attempt.pkce_verifier,
                &attempt_context(&attempt.state_hash),
            )
            .map_err(|error| Error::Internal(error.to_string()))?;
        let verifier = SecretString::from(
            String::from_utf8(verifier.expose_secret().to_vec()).map_err(|_| corrupt())?,
        );
        self.microsoft
            .exchange_code(app, &self.oauth.redirect_uri, &code, &verifier, now)
            .await
            .map_err(code_rejected)
    }

    async fn finish_new(
        &self,
        account: AccountId,
        connector_type: ConnectorTypeId,
        display_name: Option<DisplayName>,
        identity: Identity,
        tokens: Tokens,
        now: DateTime<Utc>,
    ) -> Result<Connector> {
        let external_account = ExternalAccount {
            id: identity.id,
            label: identity.label,
            host_key_fingerprint: None,
        };
        let connector = self.linked_now(
            account,
            connector_type,
            display_name,
            external_account,
            Labels::default(),
            now,
        );
        let secrets = self.seal_tokens(&connector.name.connector, &tokens);
        // The fresh tokens are dropped with `tokens` when the account is already linked.
        self.insert_new(connector, secrets).await
    }

    async fn finish_reauthorization(
        &self,
        name: &ConnectorName,
        identity: Identity,
        tokens: Tokens,
    ) -> Result<Connector> {
        let current = self.get(name).await?;
        if current.external_account.id != identity.id {
            return Err(Error::AccountMismatch {
                name: name.clone(),
                expected: current.external_account.id,
                given: identity.id,
            });
        }
        let connector = self
            .renew(name, None, || self.seal_tokens(&name.connector, &tokens))
            .await?;
        tracing::info!(connector = %name, "connector reauthorized through OAuth 2.0");
        Ok(connector)
    }
}

fn failed(return_url: Option<String>, error: Error) -> Completion {
    Completion {
        return_url,
        result: Err(error),
    }
}

/// During a code exchange, `invalid_grant` means the code is wrong, used, or not bound to our
/// PKCE verifier, not that a connector lost its grant.
fn code_rejected(error: providers::Error) -> Error {
    match error {
        providers::Error::InvalidGrant { description, .. } => {
            Error::AuthorizationCodeRejected(description)
        }
        providers::Error::CredentialsRejected(description) => {
            Error::AuthorizationCodeRejected(description)
        }
        other => other.into(),
    }
}
