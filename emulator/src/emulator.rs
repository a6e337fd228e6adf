//! The running emulator: [`EmulatorBuilder`] starts it, [`Emulator`] is the handle a test
//! holds to read its URLs, register things, turn the knobs and read the counters.
//!
//! Like mini-redis, the library does all the work and the binary only parses arguments. The
//! server runs on the caller's tokio runtime and stops when the handle is shut down or
//! dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::authorize::Decision;
use crate::config::{AdminConsent, EmulatorConfig};
use crate::fixtures;
use crate::knobs::{Counters, Failure, IdTokenForgery, Lifetimes};
use crate::model::{Client, Tenant, User};
use crate::records::RegistrationError;
use crate::sign_in::{SignInError, admin_consent_decision, authorization_decision};
use crate::store::{Shared, Store};

/// The emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A configured registration is invalid.
    #[error(transparent)]
    Registration(#[from] RegistrationError),
}

/// Configures an emulator before it starts; from [`Emulator::builder`].
#[derive(Clone, Debug, Default)]
pub struct EmulatorBuilder {
    config: EmulatorConfig,
    lifetimes: Lifetimes,
}

impl EmulatorBuilder {
    /// A builder starting from a configuration (e.g. [`EmulatorConfig::from_file`]).
    pub fn from_config(config: EmulatorConfig) -> Self {
        let lifetimes = config.lifetimes();
        EmulatorBuilder { config, lifetimes }
    }

    /// Listens on `addr` instead of `127.0.0.1:0`.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.listen = addr;
        self
    }

    /// Starts without [`fixtures`]: only what is registered explicitly exists.
    pub fn without_default_fixtures(mut self) -> Self {
        self.config.default_fixtures = false;
        self
    }

    /// Adds a redirect URI to the default client ([`fixtures::CLIENT_ID`]).
    pub fn redirect_uri(mut self, redirect_uri: impl Into<String>) -> Self {
        self.config.redirect_uris.push(redirect_uri.into());
        self
    }

    /// Registers a client (replacing one with the same id).
    pub fn client(mut self, client: Client) -> Self {
        self.config.clients.push(client);
        self
    }

    /// Registers a tenant.
    pub fn tenant(mut self, tenant: Tenant) -> Self {
        self.config.tenants.push(tenant);
        self
    }

    /// Registers a user (a work user's tenant must be registered too).
    pub fn user(mut self, user: User) -> Self {
        self.config.users.push(user);
        self
    }

    /// Records an administrator's consent for `client_id` in `tenant_id` from the start.
    pub fn admin_consent(
        mut self,
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
    ) -> Self {
        self.config.admin_consents.push(AdminConsent {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
        });
        self
    }

    /// Sets the access token lifetime (`expires_in`).
    pub fn access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetimes.access_token = lifetime;
        self
    }

    /// Sets the refresh token lifetime.
    pub fn refresh_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetimes.refresh_token = lifetime;
        self
    }

    /// Sets the authorization code lifetime.
    pub fn code_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetimes.authorization_code = lifetime;
        self
    }

    /// Binds the listener, loads the registrations and starts serving on the current tokio
    /// runtime.
    pub async fn start(self) -> Result<Emulator, StartError> {
        let EmulatorBuilder { config, lifetimes } = self;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let mut addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        // A wildcard listener is still reached through loopback by the tests on this machine.
        if addr.ip().is_unspecified() {
            addr.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        let base_url = format!("http://{addr}");

        let mut store = Store::new(base_url.clone(), lifetimes);
        load(&mut store, &config)?;

        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared::new(store, stopped.clone()));
        let app = crate::http::router(Arc::clone(&shared));
        let mut signal = stopped;
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = signal.wait_for(|stopping| *stopping).await;
            };
            // Serving only fails if accepting fails for good; nothing is left to report to.
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        Ok(Emulator {
            shared,
            addr,
            base_url,
            stop,
            server: Some(server),
        })
    }
}

/// Loads fixtures and configured registrations, tenants first so users can name them.
fn load(store: &mut Store, config: &EmulatorConfig) -> Result<(), RegistrationError> {
    if config.default_fixtures {
        for tenant in fixtures::tenants() {
            store.register_tenant(tenant)?;
        }
        for client in fixtures::clients() {
            store.register_client(client)?;
        }
        for user in fixtures::users() {
            store.register_user(user)?;
        }
    }
    for tenant in &config.tenants {
        store.register_tenant(tenant.clone())?;
    }
    for client in &config.clients {
        store.register_client(client.clone())?;
    }
    for user in &config.users {
        store.register_user(user.clone())?;
    }
    for redirect_uri in &config.redirect_uris {
        store.add_redirect_uri(fixtures::CLIENT_ID, redirect_uri)?;
    }
    for consent in &config.admin_consents {
        store.grant_admin_consent(&consent.tenant_id, &consent.client_id)?;
    }
    Ok(())
}

/// A running emulator. Dropping it stops the server (without waiting); [`Emulator::shutdown`]
/// stops it and waits.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    base_url: String,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Emulator {
    /// A builder with the default fixtures, listening on `127.0.0.1:0`.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// Starts an emulator with the default fixtures on a free loopback port.
    pub async fn start() -> Result<Emulator, StartError> {
        Self::builder().start().await
    }

    /// Stops accepting requests, releases held (`Timeout`) requests, and waits for the server
    /// to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    // ---- where it is ----

    /// The base URL, `http://127.0.0.1:{port}` without a trailing slash: the stand-in for both
    /// `https://login.microsoftonline.com` and `https://graph.microsoft.com`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `{base}/{tenant}/oauth2/v2.0/authorize`.
    pub fn authorize_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/authorize", self.base_url)
    }

    /// `{base}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.base_url)
    }

    /// `{base}/{tenant}/v2.0/adminconsent`.
    pub fn admin_consent_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0/adminconsent", self.base_url)
    }

    /// `{base}/oauth2/revoke` (RFC 7009).
    pub fn revoke_url(&self) -> String {
        format!("{}/oauth2/revoke", self.base_url)
    }

    /// `{base}/v1.0`: the Graph base, so `{graph_url}/me` is Graph `/me`.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.base_url)
    }

    // ---- registrations ----

    /// Registers a client, replacing one with the same id.
    pub fn register_client(&self, client: Client) -> Result<(), RegistrationError> {
        self.shared.lock().register_client(client)
    }

    /// Adds a redirect URI to a registered client.
    pub fn add_redirect_uri(
        &self,
        client_id: &str,
        redirect_uri: &str,
    ) -> Result<(), RegistrationError> {
        self.shared.lock().add_redirect_uri(client_id, redirect_uri)
    }

    /// Registers a tenant, replacing one with the same id.
    pub fn register_tenant(&self, tenant: Tenant) -> Result<(), RegistrationError> {
        self.shared.lock().register_tenant(tenant)
    }

    /// Registers a user, replacing one with the same object id.
    pub fn register_user(&self, user: User) -> Result<(), RegistrationError> {
        self.shared.lock().register_user(user)
    }

    /// The registered clients.
    pub fn clients(&self) -> Vec<Client> {
        self.shared.lock().clients().cloned().collect()
    }

    /// The registered tenants.
    pub fn tenants(&self) -> Vec<Tenant> {
        self.shared.lock().tenants().to_vec()
    }

    /// The registered users.
    pub fn users(&self) -> Vec<User> {
        self.shared.lock().users().to_vec()
    }

    // ---- consents and grants ----

    /// Records an administrator's consent for `client_id` in `tenant_id` (id or domain), as
    /// accepting the admin consent page does.
    pub fn grant_admin_consent(
        &self,
        tenant_id: &str,
        client_id: &str,
    ) -> Result<(), RegistrationError> {
        self.shared.lock().grant_admin_consent(tenant_id, client_id)
    }

    /// Removes an admin consent (the admin deleted the enterprise app): client credentials
    /// for the tenant answer `unauthorized_client` AADSTS700016 and its app-only tokens stop
    /// working at Graph. Returns whether there was one.
    pub fn revoke_admin_consent(&self, tenant_id: &str, client_id: &str) -> bool {
        self.shared
            .lock()
            .revoke_admin_consent(tenant_id, client_id)
    }

    /// Whether the tenant's administrator has consented for the client.
    pub fn has_admin_consent(&self, tenant_id: &str, client_id: &str) -> bool {
        self.shared.lock().has_admin_consent(tenant_id, client_id)
    }

    /// Revokes the user's grant to the client (`user` is an object id or UPN), as a password
    /// reset or the user removing the app does: every refresh token of it answers
    /// `invalid_grant` AADSTS50173, its unredeemed codes too, and its access tokens stop
    /// working at Graph. A later sign-in creates a fresh grant. Returns how many grants were
    /// live.
    pub fn revoke_user_grant(
        &self,
        user: &str,
        client_id: &str,
    ) -> Result<usize, RegistrationError> {
        self.shared.lock().revoke_grants(user, client_id)
    }

    // ---- knobs ----

    /// The current lifetimes.
    pub fn lifetimes(&self) -> Lifetimes {
        self.shared.lock().lifetimes
    }

    /// Sets the lifetime of access tokens issued from now on.
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().lifetimes.access_token = lifetime;
    }

    /// Sets the lifetime of refresh tokens issued from now on.
    pub fn set_refresh_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().lifetimes.refresh_token = lifetime;
    }

    /// Sets the lifetime of authorization codes issued from now on.
    pub fn set_code_lifetime(&self, lifetime: Duration) {
        self.shared.lock().lifetimes.authorization_code = lifetime;
    }

    /// Moves the emulator's clock forward: codes and tokens expire as if `by` had passed
    /// (id token `iat`/`exp` and error timestamps move too). The clock never goes back.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.lock().advance_clock(by);
    }

    /// Makes the next `count` calls to the token endpoint (any tenant, any grant type) answer
    /// with `failure` before looking at the request: nothing is redeemed or rotated. Queued
    /// after failures already pending, first in, first out.
    pub fn fail_next_token_calls(&self, count: u32, failure: Failure) {
        let mut store = self.shared.lock();
        store
            .failures
            .token
            .extend(std::iter::repeat_n(failure, count as usize));
    }

    /// Holds every token endpoint answer for `delay` before processing it: a slow provider,
    /// which widens the window in which concurrent refreshes could race (single-flight tests).
    pub fn set_token_delay(&self, delay: Duration) {
        self.shared.lock().failures.token_delay = delay;
    }

    /// Forges the next id tokens the token endpoint issues, one forgery each, first in, first
    /// out: a provider (or a man in the middle) a client must not trust blindly.
    pub fn forge_next_id_tokens(&self, forgeries: impl IntoIterator<Item = IdTokenForgery>) {
        self.shared
            .lock()
            .failures
            .id_token_forgeries
            .extend(forgeries);
    }

    /// Like [`Emulator::fail_next_token_calls`], for the RFC 7009 revocation endpoint.
    pub fn fail_next_revoke_calls(&self, count: u32, failure: Failure) {
        let mut store = self.shared.lock();
        store
            .failures
            .revoke
            .extend(std::iter::repeat_n(failure, count as usize));
    }

    /// Drops every pending injected failure.
    pub fn clear_failures(&self) {
        self.shared.lock().failures.clear();
    }

    // ---- counters ----

    /// The requests counted since start or the last reset.
    pub fn counters(&self) -> Counters {
        self.shared.lock().counters
    }

    /// Sets every counter to zero; returns the values before.
    pub fn reset_counters(&self) -> Counters {
        std::mem::take(&mut self.shared.lock().counters)
    }

    // ---- a browser for tests without one ----

    /// Plays the browser on an authorization URL (the one a client sends the user to): signs
    /// in as `account` (UPN or object id) and accepts, exactly as posting the page's form
    /// does. Returns the `Location` the browser would be sent to — usually
    /// `{redirect_uri}?code=…&state=…`, or an `error=` redirect for a request the emulator
    /// refuses after validating the redirect URI. Counts as an authorize decision.
    pub fn complete_authorization(
        &self,
        authorization_url: &str,
        account: &str,
    ) -> Result<String, SignInError> {
        authorization_decision(&self.shared, authorization_url, Decision::Accept(account))
    }

    /// Like [`Emulator::complete_authorization`], clicking "Cancel": returns
    /// `{redirect_uri}?error=access_denied&error_subcode=cancel&error_description=AADSTS65004…`.
    pub fn deny_authorization(&self, authorization_url: &str) -> Result<String, SignInError> {
        authorization_decision(&self.shared, authorization_url, Decision::Deny)
    }

    /// Plays the administrator on an admin consent URL: consents for `tenant_id` and returns
    /// the `Location` (`{redirect_uri}?tenant=…&admin_consent=True&state=…&scope=…`).
    pub fn complete_admin_consent(
        &self,
        admin_consent_url: &str,
        tenant_id: &str,
    ) -> Result<String, SignInError> {
        admin_consent_decision(&self.shared, admin_consent_url, Decision::Accept(tenant_id))
    }

    /// Like [`Emulator::complete_admin_consent`], clicking "Cancel".
    pub fn deny_admin_consent(&self, admin_consent_url: &str) -> Result<String, SignInError> {
        admin_consent_decision(&self.shared, admin_consent_url, Decision::Deny)
    }
}
