//! Connector types as modules. Each file here is one type (the Microsoft and standard OAuth 2.0
//! families share a helper file): it declares the type's catalogue entry, reads its
//! configuration section `[types.<id>]` (typed, validated, with defaults) and builds its
//! provider. [`MODULES`] lists them: adding a type is its file and one line there.
//!
//! These modules sit beside `providers` rather than in it: a provider speaks a service's
//! protocol and knows nothing of connectors, while a type module joins a provider to the
//! domain's catalogue and to the configuration.

mod amazon_s3;
mod azure_blob_storage;
mod box_files;
mod dropbox;
mod endpoint;
mod google_drive;
mod microsoft;
mod oauth_app;
mod office_365;
mod onedrive_consumer;
mod onedrive_for_business_user;
pub mod section;
mod sftp;
mod webdav;

use std::{sync::Arc, time::Duration};

use crate::{
    domain::connector_type::{Catalogue, ConnectorType},
    providers::{credentials::CredentialProvider, oauth::OAuthProvider},
};
pub use section::{Section, SectionError, Sections};

/// The registry: every connector type this build has, one line each.
pub static MODULES: &[&Module] = &[
    &amazon_s3::MODULE,
    &azure_blob_storage::MODULE,
    &box_files::MODULE,
    &dropbox::MODULE,
    &google_drive::MODULE,
    &office_365::MODULE,
    &onedrive_consumer::MODULE,
    &onedrive_for_business_user::MODULE,
    &sftp::MODULE,
    &webdav::MODULE,
];

/// One connector type's module.
pub struct Module {
    /// The catalogue entry.
    pub entry: &'static ConnectorType,
    /// Older names of the section's keys, still accepted.
    pub aliases: &'static [Alias],
    /// Reads the section and builds the provider; `Ok(None)` when the section leaves the type
    /// unconfigured on this server (an OAuth 2.0 type without an app registration).
    pub build: fn(&Section, &Shared<'_>) -> Result<Option<Provider>, SectionError>,
}

/// An older name of a section key: a top-level key of the configuration file (from before
/// sections) or an environment variable. The environment wins over the file; giving a key
/// both as a section key and under its older file name is refused.
#[derive(Debug)]
pub struct Alias {
    /// The section key.
    pub key: &'static str,
    /// The top-level file key, if it had one.
    pub file_key: Option<&'static str>,
    /// The environment variable, if it has one.
    pub env: Option<&'static str>,
}

/// A type's provider, by how the type authenticates.
pub enum Provider {
    /// A type linked with credentials.
    Credentials(Arc<dyn CredentialProvider>),
    /// A type linked through OAuth 2.0.
    OAuth(Arc<dyn OAuthProvider>),
}

/// What every module may build with: the server-wide settings a provider needs.
pub struct Shared<'a> {
    /// The HTTP client (no redirects, the provider timeout).
    pub http: &'a reqwest::Client,
    /// How long one call to a provider may take.
    pub provider_timeout: Duration,
    /// Whether provider endpoints may be plain http off loopback (emulators in a container
    /// network).
    pub allow_insecure_endpoints: bool,
    /// Whether customer-given endpoints may be private addresses.
    pub allow_private_endpoints: bool,
}

/// The catalogue of every type in [`MODULES`].
pub fn catalogue() -> Catalogue {
    Catalogue::new(MODULES.iter().map(|module| module.entry))
        .expect("the registry's entries make a valid catalogue (unit-tested)")
}

/// The module of type `id`.
pub fn module(id: &str) -> Option<&'static Module> {
    MODULES.iter().copied().find(|module| module.entry.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_makes_a_valid_catalogue() {
        let catalogue = Catalogue::new(MODULES.iter().map(|module| module.entry));
        assert!(catalogue.is_ok(), "{catalogue:?}");
    }

    #[test]
    fn every_module_builds_from_an_empty_section() {
        let http = reqwest::Client::new();
        let shared = Shared {
            http: &http,
            provider_timeout: Duration::from_secs(1),
            allow_insecure_endpoints: false,
            allow_private_endpoints: false,
        };
        for module in MODULES {
            let built = (module.build)(&Section::new(module.entry.id), &shared);
            match built {
                Ok(Some(Provider::Credentials(_))) => {
                    assert!(
                        module.entry.auth_method.uses_credentials(),
                        "{}",
                        module.entry.id
                    )
                }
                // OAuth 2.0 types need an app registration.
                Ok(None) => assert!(!module.entry.auth_method.uses_credentials()),
                Ok(Some(Provider::OAuth(_))) | Err(_) => panic!("{}", module.entry.id),
            }
        }
    }
}
