//! The authorization server's memory: registrations, consents, grants, codes and tokens, the
//! emulator clock, failure queues and counters, all behind one mutex.
//!
//! One lock for everything keeps every check-and-update atomic (a code is redeemed once, a
//! refresh token rotates once, even under a storm of concurrent calls) and is cheap at test
//! scale. It is a `std` mutex, never held across an `.await`.
//!
//! A *grant* is a user's consent to a client: authorization codes and refresh tokens hang off
//! it, so revoking it (a password reset, the user removing the app) kills them all at once.
//! Tokens are opaque random strings; nothing is ever purged, which is fine for a test's life.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;

use crate::aad::AadError;
use crate::jwt::{self, IdTokenClaims};
use crate::knobs::{Counters, FailureQueues, IdTokenForgery, Lifetimes};
use crate::model::{AccountKind, CONSUMER_TENANT_ID, Client, Flavour, Tenant, User};
use crate::params::has_scope;
use crate::records::{
    AccessToken, Authority, Code, Grant, RefreshToken, RegistrationError, Subject,
};

/// Everything, see the module header.
#[derive(Debug)]
pub(crate) struct Store {
    base_url: String,
    clients: BTreeMap<String, Client>,
    tenants: Vec<Tenant>,
    users: Vec<User>,
    pub(crate) lifetimes: Lifetimes,
    clock_offset: Duration,
    pub(crate) codes: HashMap<String, Code>,
    pub(crate) grants: Vec<Grant>,
    pub(crate) refresh_tokens: HashMap<String, RefreshToken>,
    pub(crate) access_tokens: HashMap<String, AccessToken>,
    /// (tenant id, client id) pairs an administrator consented to.
    admin_consents: BTreeSet<(String, String)>,
    pub(crate) failures: FailureQueues,
    pub(crate) counters: Counters,
}

impl Store {
    pub(crate) fn new(base_url: String, lifetimes: Lifetimes) -> Store {
        Store {
            base_url,
            clients: BTreeMap::new(),
            tenants: Vec::new(),
            users: Vec::new(),
            lifetimes,
            clock_offset: Duration::ZERO,
            codes: HashMap::new(),
            grants: Vec::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            admin_consents: BTreeSet::new(),
            failures: FailureQueues::default(),
            counters: Counters::default(),
        }
    }

    /// The emulator's "now": the system clock plus whatever a test advanced it by.
    /// The issuer the Google flavour names: `{base}/google`.
    pub(crate) fn google_issuer(&self) -> String {
        format!("{}/google", self.base_url)
    }

    pub(crate) fn now(&self) -> SystemTime {
        SystemTime::now() + self.clock_offset
    }

    pub(crate) fn advance_clock(&mut self, by: Duration) {
        self.clock_offset += by;
    }

    // ---- registrations ----

    pub(crate) fn register_client(&mut self, client: Client) -> Result<(), RegistrationError> {
        if client.client_id.trim().is_empty() {
            return Err(RegistrationError::Invalid("client_id is empty".into()));
        }
        for uri in &client.redirect_uris {
            check_redirect_uri(uri)?;
        }
        self.clients.insert(client.client_id.clone(), client);
        Ok(())
    }

    pub(crate) fn add_redirect_uri(
        &mut self,
        client_id: &str,
        redirect_uri: &str,
    ) -> Result<(), RegistrationError> {
        check_redirect_uri(redirect_uri)?;
        let client = self
            .clients
            .get_mut(client_id)
            .ok_or_else(|| RegistrationError::UnknownClient(client_id.to_owned()))?;
        if !client.redirect_uris.iter().any(|uri| uri == redirect_uri) {
            client.redirect_uris.push(redirect_uri.to_owned());
        }
        Ok(())
    }

    pub(crate) fn register_tenant(&mut self, tenant: Tenant) -> Result<(), RegistrationError> {
        let id = tenant.tenant_id.trim();
        if id.is_empty() || tenant.default_domain.trim().is_empty() {
            return Err(RegistrationError::Invalid(
                "tenant_id and default_domain are required".into(),
            ));
        }
        if ["common", "organizations", "consumers", CONSUMER_TENANT_ID]
            .iter()
            .any(|reserved| id.eq_ignore_ascii_case(reserved))
        {
            return Err(RegistrationError::Invalid(format!(
                "'{id}' is reserved by the identity platform"
            )));
        }
        self.tenants
            .retain(|known| !known.tenant_id.eq_ignore_ascii_case(&tenant.tenant_id));
        self.tenants.push(tenant);
        Ok(())
    }

    pub(crate) fn register_user(&mut self, user: User) -> Result<(), RegistrationError> {
        if user.object_id.trim().is_empty() || user.user_principal_name.trim().is_empty() {
            return Err(RegistrationError::Invalid(
                "object_id and user_principal_name are required".into(),
            ));
        }
        match user.kind {
            AccountKind::Personal if !user.tenant_id.eq_ignore_ascii_case(CONSUMER_TENANT_ID) => {
                return Err(RegistrationError::Invalid(format!(
                    "personal users belong to the consumer tenant {CONSUMER_TENANT_ID}"
                )));
            }
            AccountKind::Work if self.tenant_by_id(&user.tenant_id).is_none() => {
                return Err(RegistrationError::UnknownTenant(user.tenant_id));
            }
            _ => {}
        }
        if self.users.iter().any(|known| {
            known
                .user_principal_name
                .eq_ignore_ascii_case(&user.user_principal_name)
                && !known.object_id.eq_ignore_ascii_case(&user.object_id)
        }) {
            return Err(RegistrationError::Invalid(format!(
                "another user already signs in as '{}'",
                user.user_principal_name
            )));
        }
        self.users
            .retain(|known| !known.object_id.eq_ignore_ascii_case(&user.object_id));
        self.users.push(user);
        Ok(())
    }

    pub(crate) fn clients(&self) -> impl Iterator<Item = &Client> {
        self.clients.values()
    }

    pub(crate) fn tenants(&self) -> &[Tenant] {
        &self.tenants
    }

    pub(crate) fn users(&self) -> &[User] {
        &self.users
    }

    pub(crate) fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.get(client_id)
    }

    pub(crate) fn tenant_by_id(&self, tenant_id: &str) -> Option<&Tenant> {
        self.tenants
            .iter()
            .find(|tenant| tenant.tenant_id.eq_ignore_ascii_case(tenant_id))
    }

    /// A tenant by id or default domain, as a `{tenant}` path segment may name it.
    fn tenant_by_segment(&self, segment: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|tenant| {
            tenant.tenant_id.eq_ignore_ascii_case(segment)
                || tenant.default_domain.eq_ignore_ascii_case(segment)
        })
    }

    /// A user by object id or user principal name.
    pub(crate) fn user(&self, reference: &str) -> Option<&User> {
        self.users.iter().find(|user| user.is(reference))
    }

    /// Resolves a `{tenant}` path segment.
    pub(crate) fn authority(&self, segment: &str) -> Result<Authority, AadError> {
        let lower = segment.to_ascii_lowercase();
        match lower.as_str() {
            "common" => Ok(Authority::Common),
            "organizations" => Ok(Authority::Organizations),
            "consumers" | CONSUMER_TENANT_ID => Ok(Authority::Consumers),
            _ => self
                .tenant_by_segment(segment)
                .map(|tenant| Authority::Tenant(tenant.tenant_id.clone()))
                .ok_or_else(|| AadError::tenant_not_found(segment)),
        }
    }

    /// The users who may sign in at `authority`, in registration order.
    pub(crate) fn users_admitted<'a>(
        &'a self,
        authority: &'a Authority,
    ) -> impl Iterator<Item = &'a User> + 'a {
        self.users.iter().filter(move |user| authority.admits(user))
    }

    /// The tenants an administrator may consent for at `authority`.
    pub(crate) fn tenants_for_admin_consent(&self, authority: &Authority) -> Vec<&Tenant> {
        match authority {
            Authority::Consumers => Vec::new(),
            Authority::Common | Authority::Organizations => self.tenants.iter().collect(),
            Authority::Tenant(id) => self.tenant_by_id(id).into_iter().collect(),
        }
    }

    // ---- admin consent ----

    pub(crate) fn grant_admin_consent(
        &mut self,
        tenant_id: &str,
        client_id: &str,
    ) -> Result<(), RegistrationError> {
        let tenant = self
            .tenant_by_segment(tenant_id)
            .ok_or_else(|| RegistrationError::UnknownTenant(tenant_id.to_owned()))?
            .tenant_id
            .to_ascii_lowercase();
        if self.client(client_id).is_none() {
            return Err(RegistrationError::UnknownClient(client_id.to_owned()));
        }
        self.admin_consents.insert((tenant, client_id.to_owned()));
        Ok(())
    }

    /// Removes a consent; app-only tokens already issued for it stop working. Returns whether
    /// there was one.
    pub(crate) fn revoke_admin_consent(&mut self, tenant_id: &str, client_id: &str) -> bool {
        let key = (tenant_id.to_ascii_lowercase(), client_id.to_owned());
        self.admin_consents.remove(&key)
    }

    pub(crate) fn has_admin_consent(&self, tenant_id: &str, client_id: &str) -> bool {
        let key = (tenant_id.to_ascii_lowercase(), client_id.to_owned());
        self.admin_consents.contains(&key)
    }

    pub(crate) fn admin_consents(&self) -> impl Iterator<Item = (&str, &str)> {
        self.admin_consents
            .iter()
            .map(|(tenant, client)| (tenant.as_str(), client.as_str()))
    }

    // ---- grants ----

    /// The user's live grant to the client, created on first consent (and again after a
    /// revocation).
    pub(crate) fn grant_for(&mut self, user_oid: &str, client_id: &str) -> usize {
        if let Some(index) = self.grants.iter().position(|grant| {
            !grant.revoked && grant.user_oid == user_oid && grant.client_id == client_id
        }) {
            return index;
        }
        self.grants.push(Grant {
            user_oid: user_oid.to_owned(),
            client_id: client_id.to_owned(),
            revoked: false,
        });
        self.grants.len() - 1
    }

    /// Revokes every grant of `user` (object id or UPN) to `client_id`; returns how many.
    pub(crate) fn revoke_grants(
        &mut self,
        user: &str,
        client_id: &str,
    ) -> Result<usize, RegistrationError> {
        let oid = self
            .user(user)
            .ok_or_else(|| RegistrationError::UnknownUser(user.to_owned()))?
            .object_id
            .clone();
        let mut revoked = 0;
        for grant in &mut self.grants {
            if !grant.revoked && grant.user_oid == oid && grant.client_id == client_id {
                grant.revoked = true;
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    pub(crate) fn revoke_grant(&mut self, grant: usize) {
        if let Some(grant) = self.grants.get_mut(grant) {
            grant.revoked = true;
        }
    }

    /// The user a grant belongs to.
    pub(crate) fn grant_user(&self, grant: usize) -> Option<&User> {
        let grant = self.grants.get(grant)?;
        self.users
            .iter()
            .find(|user| user.object_id == grant.user_oid)
    }

    pub(crate) fn grant_revoked(&self, grant: usize) -> bool {
        self.grants.get(grant).is_none_or(|grant| grant.revoked)
    }

    // ---- minting ----

    pub(crate) fn issue_code(&mut self, code: Code) -> String {
        let value = random_token("M.C1.");
        self.codes.insert(value.clone(), code);
        value
    }

    /// A new access token; returns it with its `expires_in`.
    pub(crate) fn mint_access_token(
        &mut self,
        client_id: &str,
        subject: Subject,
        scopes: Vec<String>,
    ) -> (String, u64) {
        let lifetime = self.lifetimes.access_token;
        let value = random_token("EwA.");
        self.access_tokens.insert(
            value.clone(),
            AccessToken {
                client_id: client_id.to_owned(),
                subject,
                scopes,
                expires_at: self.now() + lifetime,
                revoked: false,
            },
        );
        (value, lifetime.as_secs())
    }

    pub(crate) fn mint_refresh_token(
        &mut self,
        client_id: &str,
        grant: usize,
        scopes: Vec<String>,
    ) -> String {
        let value = random_token("M.R3.");
        let expires_at = self.now() + self.lifetimes.refresh_token;
        self.refresh_tokens.insert(
            value.clone(),
            RefreshToken {
                client_id: client_id.to_owned(),
                grant,
                scopes,
                expires_at,
                rotated: false,
            },
        );
        value
    }

    /// An id token for the grant's user, when `scopes` asks for one (`openid`), forged if a
    /// forgery is queued.
    pub(crate) fn id_token(
        &mut self,
        client_id: &str,
        grant: usize,
        scopes: &[String],
        nonce: Option<&str>,
    ) -> Option<String> {
        if !has_scope(scopes, "openid") {
            return None;
        }
        let forgery = self.failures.id_token_forgeries.pop_front();
        let user = self.grant_user(grant)?;
        let now = unix_seconds(self.now());
        let mut claims = IdTokenClaims {
            aud: client_id,
            iss: match self.clients.get(client_id).map(|client| client.flavour) {
                Some(Flavour::Google) => self.google_issuer(),
                _ => format!("{}/{}/v2.0", self.base_url, user.tenant_id),
            },
            iat: now,
            nbf: now,
            exp: now + self.lifetimes.access_token.as_secs(),
            name: &user.display_name,
            oid: &user.object_id,
            preferred_username: &user.user_principal_name,
            email: user.mail.as_deref(),
            nonce,
            sub: jwt::pairwise_subject(client_id, &user.object_id),
            tid: &user.tenant_id,
            ver: "2.0",
            wids: &user.directory_roles,
        };
        match &forgery {
            None => Some(jwt::sign(&claims)),
            Some(IdTokenForgery::UnsignedFromIssuer { issuer }) => {
                claims.iss = issuer.clone();
                Some(jwt::unsigned(&claims))
            }
            Some(IdTokenForgery::Expired) => {
                claims.exp = now.saturating_sub(3600);
                Some(jwt::sign(&claims))
            }
            Some(IdTokenForgery::NotYetValid) => {
                claims.nbf = now + 3600;
                claims.iat = now + 3600;
                Some(jwt::sign(&claims))
            }
            Some(IdTokenForgery::Nonce { nonce }) => {
                claims.nonce = Some(nonce.as_str());
                Some(jwt::sign(&claims))
            }
        }
    }
}

/// A redirect URI must be an absolute URL without a fragment (RFC 6749 §3.1.2).
fn check_redirect_uri(uri: &str) -> Result<(), RegistrationError> {
    match url::Url::parse(uri) {
        Ok(url) if url.fragment().is_none() => Ok(()),
        _ => Err(RegistrationError::Invalid(format!(
            "redirect URI '{uri}' is not an absolute URL without a fragment"
        ))),
    }
}

/// `prefix` and 32 random bytes, URL-safe. The prefixes echo Microsoft's (consumer codes
/// start `M.C`, access tokens `EwA`) only to make logs readable; clients must treat all of
/// them as opaque.
fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// The store and the shutdown signal, shared by the handlers and the [`crate::Emulator`]
/// handle.
#[derive(Debug)]
pub(crate) struct Shared {
    store: std::sync::Mutex<Store>,
    /// Becomes `true` when the emulator shuts down; releases held (`Timeout`) requests.
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Shared {
    pub(crate) fn new(store: Store, shutdown: tokio::sync::watch::Receiver<bool>) -> Shared {
        Shared {
            store: std::sync::Mutex::new(store),
            shutdown,
        }
    }

    /// Locks the store. A handler that panicked mid-update leaves nothing half-written that
    /// matters more than keeping the emulator answering, so poisoning is ignored.
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
