//! Providers wrapped for the metrics: each call to a provider is timed by connector type and
//! operation, and each token refresh counted by outcome. The registry wraps every provider it
//! builds, so no provider and no domain rule knows about metrics. Wrapping a provider creates
//! its latency histograms, empty, so they are scraped before its first call.

use std::{future::Future, sync::Arc, time::Instant};

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::{
    metrics::Metrics,
    providers::{
        Error,
        credentials::{
            Access, CredentialFields, CredentialProvider, FieldError, Identity, Parsed, Secrets,
        },
        oauth::{AuthorizationRequest, AuthorizationStart, GrantLoss, OAuthProvider, Tokens},
    },
};

/// A provider and what it is measured under.
#[derive(Debug)]
pub(crate) struct Measured<P: ?Sized> {
    inner: Arc<P>,
    connector_type: &'static str,
    metrics: Arc<Metrics>,
}

/// The operations a provider is timed under.
pub(crate) trait Operations {
    /// The `operation` label values this provider's calls can have.
    fn operations(&self) -> Vec<&'static str>;
}

impl Operations for dyn OAuthProvider {
    fn operations(&self) -> Vec<&'static str> {
        let mut operations = vec!["exchange", "identify", "refresh"];
        operations.extend(self.revokes().then_some("revoke"));
        operations
    }
}

impl Operations for dyn CredentialProvider {
    fn operations(&self) -> Vec<&'static str> {
        let mut operations = vec!["check"];
        operations.extend(self.mints_access().then_some("mint"));
        operations
    }
}

impl<P: ?Sized + Operations> Measured<P> {
    pub(crate) fn new(inner: Arc<P>, connector_type: &'static str, metrics: Arc<Metrics>) -> Self {
        metrics.provider_served(connector_type, &inner.operations());
        Self {
            inner,
            connector_type,
            metrics,
        }
    }
}

impl<P: ?Sized> Measured<P> {
    async fn timed<T>(&self, operation: &'static str, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let result = call.await;
        self.metrics
            .provider_call(self.connector_type, operation, started.elapsed());
        result
    }
}

#[async_trait::async_trait]
impl OAuthProvider for Measured<dyn OAuthProvider> {
    fn authorization_url(
        &self,
        request: AuthorizationRequest<'_>,
    ) -> Result<AuthorizationStart, Error> {
        self.inner.authorization_url(request)
    }

    async fn exchange(
        &self,
        request: AuthorizationRequest<'_>,
        code: &str,
        pkce_verifier: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<Tokens, Error> {
        self.timed(
            "exchange",
            self.inner.exchange(request, code, pkce_verifier, now),
        )
        .await
    }

    async fn identify(
        &self,
        tokens: &Tokens,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<Identity, Error> {
        self.timed("identify", self.inner.identify(tokens, nonce, now))
            .await
    }

    fn keeps_refresh_token(&self) -> bool {
        self.inner.keeps_refresh_token()
    }

    async fn refresh(
        &self,
        external_account_id: &str,
        refresh_token: Option<&SecretString>,
        now: DateTime<Utc>,
    ) -> Result<Tokens, Error> {
        let refreshed = self
            .timed(
                "refresh",
                self.inner.refresh(external_account_id, refresh_token, now),
            )
            .await;
        let outcome = match &refreshed {
            Ok(_) => "refreshed",
            Err(error) if self.inner.grant_lost(error).is_some() => "grant_lost",
            Err(_) => "failed",
        };
        self.metrics.token_refresh(self.connector_type, outcome);
        refreshed
    }

    fn grant_lost(&self, error: &Error) -> Option<GrantLoss> {
        self.inner.grant_lost(error)
    }

    fn revokes(&self) -> bool {
        self.inner.revokes()
    }

    async fn revoke(&self, refresh_token: &SecretString) -> Result<bool, Error> {
        self.timed("revoke", self.inner.revoke(refresh_token)).await
    }

    fn resource_url(&self) -> &str {
        self.inner.resource_url()
    }

    fn accepts_issuer(&self, iss: &str) -> bool {
        self.inner.accepts_issuer(iss)
    }
}

#[async_trait::async_trait]
impl CredentialProvider for Measured<dyn CredentialProvider> {
    fn secret_fields(&self) -> &'static [&'static str] {
        self.inner.secret_fields()
    }

    fn mints_access(&self) -> bool {
        self.inner.mints_access()
    }

    fn pinned(&self) -> Option<&'static crate::providers::credentials::PinnedAttribute> {
        self.inner.pinned()
    }

    fn parse(&self, fields: &CredentialFields) -> Result<Parsed, Vec<FieldError>> {
        self.inner.parse(fields)
    }

    async fn check(
        &self,
        account: Option<&Identity>,
        secrets: &Secrets,
        now: DateTime<Utc>,
    ) -> Result<Option<Identity>, Error> {
        self.timed("check", self.inner.check(account, secrets, now))
            .await
    }

    async fn mint(
        &self,
        external_account_id: &str,
        secrets: &Secrets,
        now: DateTime<Utc>,
    ) -> Result<Access, Error> {
        self.timed("mint", self.inner.mint(external_account_id, secrets, now))
            .await
    }
}
