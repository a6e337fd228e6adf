//! Completing an OAuth 2.0 authorization: using up the `state`, redeeming the code through the
//! type's provider, naming the account, and linking a new connector or renewing the one being
//! reauthorized (the same external account only).

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};

use super::{
    Authorizations,
    connector_type::ConnectorTypeId,
    error::{Error, Result},
    model::{AccountId, Connector, ConnectorId, ConnectorName, DisplayName, Labels},
    oauth::{Callback, Completion, attempt_context, nonce_of, state_hash},
};
use crate::{
    persistence::{AttemptRow, Consumed},
    providers::{
        self,
        oauth::{AuthorizationRequest, Identity, OAuthProvider, Tokens},
    },
};

impl Authorizations {
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
        let now = self.records.clock.now();
        let attempt = match self
            .records
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
        let callback_may_complete = self
            .records
            .catalogue
            .parse(&attempt.connector_type)
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
        let connector_type = self
            .records
            .catalogue
            .parse(&attempt.connector_type)
            .ok_or_else(corrupt)?;
        let account = AccountId::new(&attempt.account).map_err(|_| corrupt())?;
        if let Some(error) = callback.error {
            let description = callback.error_description.unwrap_or_default();
            return Err(if error == "access_denied" {
                Error::AuthorizationDenied(description)
            } else {
                Error::AuthorizationCodeRejected(format!("{error}: {description}"))
            });
        }
        let provider = self.oauth.provider(connector_type)?;
        // Mix-up defence (RFC 9207): a response naming another issuer carries another
        // authorization server's code, which must not reach this provider's token endpoint.
        if let Some(iss) = &callback.iss
            && !provider.accepts_issuer(iss)
        {
            return Err(Error::AuthorizationCodeRejected(format!(
                "the authorization response was issued by `{iss}`, not by this connector type's provider; nothing was redeemed"
            )));
        }
        let nonce = nonce_of(&callback.state);
        let request = AuthorizationRequest {
            redirect_uri: &self.oauth.redirect_uri,
            state: &callback.state,
            nonce: &nonce,
        };
        let tokens = self
            .exchange(provider, request, &attempt, callback.code, now)
            .await?;
        if provider.keeps_refresh_token() && tokens.refresh_token.is_none() {
            // Without one the connector would stop working within the hour.
            return Err(Error::AuthorizationCodeRejected(
                "the provider granted no refresh token (offline_access)".into(),
            ));
        }
        let identity = provider.identify(&tokens, &nonce, now).await?;
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
        provider: &dyn OAuthProvider,
        request: AuthorizationRequest<'_>,
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
            .records
            .sealer
            .open(
                &attempt.pkce_verifier,
                &attempt_context(&attempt.state_hash),
            )
            .map_err(|error| Error::Internal(error.to_string()))?;
        let verifier = SecretString::from(
            String::from_utf8(verifier.expose_secret().to_vec()).map_err(|_| corrupt())?,
        );
        provider
            .exchange(request, &code, &verifier, now)
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
        let connector = self.records.linked_now(
            account,
            connector_type,
            display_name,
            identity,
            Labels::default(),
            now,
        );
        let secrets = self.records.seal_tokens(&connector.name.connector, &tokens);
        // The fresh tokens are dropped with `tokens` when the account is already linked.
        self.records.insert_new(connector, secrets).await
    }

    async fn finish_reauthorization(
        &self,
        name: &ConnectorName,
        identity: Identity,
        tokens: Tokens,
    ) -> Result<Connector> {
        let current = self.records.get(name).await?;
        if current.external_account.id != identity.id {
            return Err(Error::AccountMismatch {
                name: name.clone(),
                expected: current.external_account.id,
                given: identity.id,
            });
        }
        let connector = self
            .records
            .renew(name, None, || {
                self.records.seal_tokens(&name.connector, &tokens)
            })
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
