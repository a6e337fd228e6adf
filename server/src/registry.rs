//! The providers, built at start-up from the configuration: each connector type's module
//! (`connector_types`) reads its section and builds its provider, which is wrapped so that
//! every provider call is measured.

use std::{collections::HashMap, sync::Arc};

use crate::{
    config::{Config, ConfigError},
    connector_types::{self, Provider, Shared},
    domain::{self, connector_type::Catalogue},
    measured::Measured,
    metrics::Metrics,
    providers::{credentials::CredentialProvider, oauth::OAuthProvider},
};

/// What the configured modules built.
pub(crate) struct Providers {
    /// Every type this build has.
    pub(crate) catalogue: Catalogue,
    /// The providers of the types linked with credentials.
    pub(crate) credentials: domain::CredentialProviders,
    /// The providers of the OAuth 2.0 types with an app registration.
    pub(crate) oauth: HashMap<domain::connector_type::ConnectorTypeId, Arc<dyn OAuthProvider>>,
}

/// Builds every type's provider from its section. A section that names a type this build does
/// not have, or that a module refuses, is a configuration error naming the key.
pub(crate) fn providers(
    config: &Config,
    http: &reqwest::Client,
    metrics: &Arc<Metrics>,
) -> Result<Providers, ConfigError> {
    let catalogue = connector_types::catalogue();
    if let Some(unknown) = config
        .types
        .type_ids()
        .find(|id| catalogue.parse(id).is_none())
    {
        return Err(ConfigError(format!(
            "[types.{unknown}]: there is no connector type `{unknown}` (ListConnectorTypes lists them)"
        )));
    }
    let shared = Shared {
        http,
        provider_timeout: config.provider_timeout,
        allow_insecure_endpoints: config.allow_insecure_endpoints,
        allow_private_endpoints: config.allow_private_endpoints,
    };
    let mut credentials = domain::CredentialProviders::new();
    let mut oauth = HashMap::new();
    for module in connector_types::MODULES {
        let connector_type = catalogue
            .parse(module.entry.id)
            .expect("the catalogue is built from the same modules");
        let section = config.types.section(module.entry.id);
        let label = connector_type.as_str();
        match (module.build)(&section, &shared).map_err(|error| ConfigError(error.0))? {
            Some(Provider::Credentials(provider)) => {
                let measured = Measured::new(provider, label, metrics.clone());
                credentials.insert(
                    connector_type,
                    Arc::new(measured) as Arc<dyn CredentialProvider>,
                );
            }
            Some(Provider::OAuth(provider)) => {
                let measured = Measured::new(provider, label, metrics.clone());
                oauth.insert(connector_type, Arc::new(measured) as Arc<dyn OAuthProvider>);
            }
            None => {}
        }
    }
    Ok(Providers {
        catalogue,
        credentials,
        oauth,
    })
}

/// How the service runs OAuth 2.0, with the providers [`providers`] built.
pub(crate) fn oauth_settings(
    config: &Config,
    providers: HashMap<domain::connector_type::ConnectorTypeId, Arc<dyn OAuthProvider>>,
    public_url: &str,
) -> domain::OAuthSettings {
    let duration =
        |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
    domain::OAuthSettings {
        providers,
        redirect_uri: format!("{public_url}/oauth/callback"),
        return_urls: config.return_urls.clone(),
        attempt_lifetime: duration(config.authorization_lifetime),
        refresh_skew: duration(config.refresh_skew),
        callback_completes: config.callback_completes_authorizations,
    }
}
