//! The boundary between the domain and a connector type that links with credentials (an account
//! key, a username and password) rather than OAuth 2.0.
//!
//! A [`CredentialProvider`] knows its service's protocol and nothing of connectors or storage.
//! It validates the named fields a caller sent (the catalogue lists them), names the external
//! account they reach (the once-per-account key), says which values to keep sealed, checks them
//! against the service, and mints the short-lived access a worker gets. The domain does the
//! rest the same way for every type: dedupe, sealing, events, inactivity, deletion.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretSlice, SecretString};

use super::Error;

/// Credential fields as a caller sent them, by the catalogue's field names. Every value is
/// treated as secret until a provider says otherwise; `Debug` shows names only.
#[derive(Default)]
pub struct CredentialFields(BTreeMap<String, SecretString>);

impl CredentialFields {
    /// Adds a field.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), SecretString::from(value.into()));
    }

    /// A field's value, or `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", |value| value.expose_secret())
    }

    /// The field names given.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl fmt::Debug for CredentialFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// One field's value is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name in the catalogue.
    pub field: &'static str,
    /// What is wrong, without the value.
    pub description: String,
}

/// Collects every field whose value fails validation, so the caller hears of all at once.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// The value, or `None` with the problem recorded against `field`.
    pub fn check<T>(&mut self, field: &'static str, result: Result<T, String>) -> Option<T> {
        result
            .map_err(|description| self.0.push(FieldError { field, description }))
            .ok()
    }

    /// The problems recorded.
    pub fn into_errors(self) -> Vec<FieldError> {
        self.0
    }
}

/// Stored secrets by field name, as the provider asked them to be kept.
pub type Secrets = BTreeMap<&'static str, SecretSlice<u8>>;

/// A stored secret's bytes. Missing means the connector was sealed without it: the provider's
/// answer cannot be trusted, so it is a protocol error, not a rejection.
pub fn stored_bytes<'a>(secrets: &'a Secrets, field: &str) -> Result<&'a [u8], Error> {
    secrets
        .get(field)
        .map(|value| value.expose_secret())
        .ok_or_else(|| Error::Protocol(format!("no {field} is stored for this connector")))
}

/// A stored secret that is text (a password, a key id).
pub fn stored_text<'a>(secrets: &'a Secrets, field: &str) -> Result<&'a str, Error> {
    std::str::from_utf8(stored_bytes(secrets, field)?)
        .map_err(|_| Error::Protocol(format!("the stored {field} is not text")))
}

/// The external account credentials reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Stable id (the once-per-account key); never a secret.
    pub id: String,
    /// Human-readable label.
    pub label: String,
    /// The value of the provider's [`PinnedAttribute`], for providers that pin one (an SSH
    /// server's host key fingerprint): given to `check`, the value the service must present
    /// (`None`: any, on first contact); returned by it, the value the service presented.
    pub pinned: Option<String>,
}

/// Something about a service that a provider pins at first contact and insists on at every
/// later one (an SSH server's host key): a change is refused until a reauthorization names the
/// new value in [`PinnedAttribute::field`]. Declared by the provider, so that no layer above it
/// knows what is pinned.
#[derive(Debug)]
pub struct PinnedAttribute {
    /// The credential field that carries the value: handed to workers with the other fields,
    /// and given by a caller accepting a change.
    pub field: &'static str,
    /// What it is, in words: "host key".
    pub noun: &'static str,
    /// What its value is, in words: "fingerprint".
    pub value_name: &'static str,
    /// The `ErrorInfo` reason of a refused change: `HOST_KEY_CHANGED`.
    pub changed_reason: &'static str,
}

/// Valid credentials: the external account they reach, when the fields name it, and what to
/// keep.
pub struct Parsed {
    /// The external account, when the fields name it (a storage account name, a URL and
    /// user); `None` when only the service can tell (`check` names it).
    pub identity: Option<Identity>,
    /// The values to keep sealed, by field name.
    pub secrets: Secrets,
}

impl fmt::Debug for Parsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parsed")
            .field("identity", &self.identity)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What kind of short-lived access a provider mints.
#[derive(Debug)]
pub enum AccessKind {
    /// An Azure Storage shared access signature (a query string).
    AzureSas,
    /// AWS session credentials: the token is the session token, used with this temporary key
    /// pair.
    AwsSession {
        /// The temporary access key id.
        access_key_id: String,
        /// The temporary secret access key.
        secret_access_key: SecretString,
    },
}

/// Short-lived access for a worker, minted from stored secrets.
pub struct Access {
    /// The credential itself.
    pub token: SecretString,
    /// What it is.
    pub kind: AccessKind,
    /// When it stops working.
    pub expire_time: DateTime<Utc>,
    /// What it grants, in the provider's words.
    pub scopes: Vec<String>,
    /// Where it is used.
    pub resource_url: String,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Access")
            .field("kind", &self.kind)
            .field("expire_time", &self.expire_time)
            .field("resource_url", &self.resource_url)
            .finish_non_exhaustive()
    }
}

/// A connector type that links with credentials. See the module documentation.
#[async_trait::async_trait]
pub trait CredentialProvider: Send + Sync + fmt::Debug {
    /// The fields [`CredentialProvider::parse`] keeps sealed, which `check` and `mint` read
    /// back.
    fn secret_fields(&self) -> &'static [&'static str];

    /// Whether it mints short-lived access ([`CredentialProvider::mint`]). A type that cannot
    /// (a password) hands its stored fields to workers through `RevealConnectorCredentials`.
    fn mints_access(&self) -> bool {
        true
    }

    /// What it pins about the service, if anything. (No default: a decorator that forgot to
    /// forward it would silently unpin.)
    fn pinned(&self) -> Option<&'static PinnedAttribute>;

    /// Validates the values of `fields` (their names were checked against the catalogue, and
    /// required ones are present). Reports every bad field at once.
    fn parse(&self, fields: &CredentialFields) -> Result<Parsed, Vec<FieldError>>;

    /// Checks credentials against the service: [`Error::CredentialsRejected`] when the service
    /// says they are wrong or revoked, [`Error::Refused`] or [`Error::Unavailable`] when it
    /// cannot tell. `account` is the external account when known (from the fields, or the
    /// connector's); a provider whose fields cannot name it returns the account the service
    /// names.
    async fn check(
        &self,
        account: Option<&Identity>,
        secrets: &Secrets,
        now: DateTime<Utc>,
    ) -> Result<Option<Identity>, Error>;

    /// Mints the short-lived access a worker gets, from the stored secrets.
    async fn mint(
        &self,
        external_account_id: &str,
        secrets: &Secrets,
        now: DateTime<Utc>,
    ) -> Result<Access, Error>;
}
