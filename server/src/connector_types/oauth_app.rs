//! The app registration every OAuth 2.0 type's section holds: the client id and secret, the
//! scopes, and endpoint overrides (a provider's sovereign cloud, or an emulator in tests).

use std::sync::Arc;

use secrecy::SecretString;

use super::{Alias, Provider, Section, SectionError, Shared, endpoint};
use crate::providers::standard_oauth::{self, StandardOAuth, known};

/// The keys of an app registration, in every OAuth 2.0 type's section.
pub(super) const KEYS: [&str; 9] = [
    "client_id",
    "client_secret",
    "tenant",
    "scopes",
    "revocation_url",
    "authorize_url",
    "token_url",
    "identity_url",
    "issuer",
];

/// OAuth 2.0 types have no older key names of their own (`[oauth.<id>]` tables are read as
/// their sections by the configuration loader).
pub(super) const NO_ALIASES: &[Alias] = &[];

/// An app registration. No `Debug`: it holds the client secret.
pub(super) struct AppRegistration {
    pub(super) client_id: String,
    pub(super) client_secret: SecretString,
    pub(super) tenant: Option<String>,
    pub(super) scopes: Option<Vec<String>>,
    pub(super) revocation_url: Option<String>,
    pub(super) authorize_url: Option<String>,
    pub(super) token_url: Option<String>,
    pub(super) identity_url: Option<String>,
    pub(super) issuer: Option<String>,
}

/// The registration in `section`, or `None` when it has none (the type is then not configured
/// here). `extra` are the type's own keys besides the registration's.
pub(super) fn read(
    section: &Section,
    extra: &[&str],
    shared: &Shared<'_>,
) -> Result<Option<AppRegistration>, SectionError> {
    let known: Vec<&str> = KEYS.iter().chain(extra).copied().collect();
    section.only(&known)?;
    let (client_id, client_secret) = match (
        section.string("client_id")?,
        section.secret("client_secret")?,
    ) {
        (Some(id), Some(secret)) => (id, secret),
        (None, None) if KEYS.iter().any(|key| section.contains(key)) => {
            return Err(section.invalid(
                "client_id",
                "and client_secret are required to configure the type",
            ));
        }
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(section.invalid("client_secret", "is required with a client_id"));
        }
        (None, Some(_)) => {
            return Err(section.invalid("client_id", "is required with a client_secret"));
        }
    };
    Ok(Some(AppRegistration {
        client_id,
        client_secret,
        tenant: section.string("tenant")?,
        scopes: section.strings("scopes")?,
        revocation_url: endpoint::optional_url(section, "revocation_url", shared)?,
        authorize_url: endpoint::optional_url(section, "authorize_url", shared)?,
        token_url: endpoint::optional_url(section, "token_url", shared)?,
        identity_url: endpoint::optional_url(section, "identity_url", shared)?,
        issuer: section.string("issuer")?,
    }))
}

/// The provider of a type described by a standard OAuth 2.0 profile (Google Drive, Dropbox,
/// Box): the registration in `section` applied to `profile`.
pub(super) fn standard(
    section: &Section,
    shared: &Shared<'_>,
    profile: fn(
        Option<Vec<String>>,
        &known::Endpoints,
    ) -> crate::providers::standard_oauth::Profile,
) -> Result<Option<Provider>, SectionError> {
    let Some(app) = read(section, &[], shared)? else {
        return Ok(None);
    };
    if app.tenant.is_some() {
        return Err(section.invalid("tenant", "is a Microsoft key; this type has no tenant"));
    }
    let endpoints = known::Endpoints {
        authorize_url: app.authorize_url,
        token_url: app.token_url,
        identity_url: app.identity_url,
        revocation_url: app.revocation_url,
        issuer: app.issuer,
    };
    let client = standard_oauth::Client {
        id: app.client_id,
        secret: app.client_secret,
    };
    let provider = StandardOAuth::new(shared.http.clone(), client, profile(app.scopes, &endpoints));
    Ok(Some(Provider::OAuth(Arc::new(provider))))
}
