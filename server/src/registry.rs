//! The provider registries, built at start-up from the configuration: which provider serves
//! each connector type. Adding a type is one line here (and its provider module).

use std::sync::Arc;

use crate::{
    config::{self, Config},
    domain::{self, connector_type::AuthMethod, connector_type::ConnectorTypeId as Type},
    measured::Measured,
    metrics::Metrics,
    providers::{
        self,
        azure_blob::AzureBlob,
        credentials::CredentialProvider,
        microsoft::{Microsoft, MicrosoftApp, OAuthApp},
        oauth::OAuthProvider,
        standard_oauth::{self, StandardOAuth, known},
    },
};

/// The providers of the types that link with credentials: one line per type.
pub(crate) fn credential_providers(
    config: &Config,
    http: &reqwest::Client,
    metrics: &Arc<Metrics>,
) -> domain::CredentialProviders {
    let azure = AzureBlob::new(
        http.clone(),
        &config.azure_blob_endpoint,
        config.sas_lifetime,
    )
    .with_sas_permissions(&config.sas_permissions);
    let s3 = providers::s3::S3::new(
        http.clone(),
        &config.s3_endpoint,
        &config.sts_endpoint,
        &config.aws_region,
        config.aws_session_lifetime,
    );
    let private = config.allow_private_endpoints;
    [
        (Type::AmazonS3, Arc::new(s3) as Arc<dyn CredentialProvider>),
        (Type::AzureBlobStorage, Arc::new(azure)),
        (
            Type::Sftp,
            Arc::new(providers::sftp::Sftp::new(private, config.provider_timeout)),
        ),
        (
            Type::WebDav,
            Arc::new(providers::webdav::WebDav::new(
                config.provider_timeout,
                private,
            )),
        ),
    ]
    .into_iter()
    .map(|(connector_type, provider)| {
        let measured = Measured::new(provider, connector_type.as_str(), metrics.clone());
        (
            connector_type,
            Arc::new(measured) as Arc<dyn CredentialProvider>,
        )
    })
    .collect()
}

/// How the service runs OAuth 2.0, with a provider for every type that has an app
/// registration configured.
pub(crate) fn oauth_settings(
    config: &Config,
    http: &reqwest::Client,
    public_url: &str,
    metrics: &Arc<Metrics>,
) -> Result<domain::OAuthSettings, config::ConfigError> {
    let microsoft = Microsoft::new(
        http.clone(),
        &config.microsoft_login,
        &config.microsoft_graph,
    );
    let mut providers = std::collections::HashMap::new();
    for (&connector_type, app) in &config.oauth_apps {
        // Providers defined by a profile: one line each.
        let profile = match connector_type {
            Type::Box => Some(known::box_drive as fn(_, &_) -> _),
            Type::Dropbox => Some(known::dropbox as fn(_, &_) -> _),
            Type::GoogleDrive => Some(known::google_drive as fn(_, &_) -> _),
            _ => None,
        };
        if let Some(profile) = profile {
            let endpoints = known::Endpoints {
                authorize_url: app.authorize_url.clone(),
                token_url: app.token_url.clone(),
                identity_url: app.identity_url.clone(),
                revocation_url: app.revocation_url.clone(),
                issuer: app.issuer.clone(),
            };
            let client = standard_oauth::Client {
                id: app.client_id.clone(),
                secret: app.client_secret.clone(),
            };
            let provider = StandardOAuth::new(
                http.clone(),
                client,
                profile(app.scopes.clone(), &endpoints),
            );
            providers.insert(connector_type, Arc::new(provider) as Arc<dyn OAuthProvider>);
            continue;
        }
        // Microsoft's types.
        let (tenant, scopes) = config::default_oauth(connector_type).ok_or_else(|| {
            config::ConfigError(format!(
                "{connector_type} is not an OAuth 2.0 connector type"
            ))
        })?;
        let registration = OAuthApp {
            client_id: app.client_id.clone(),
            client_secret: app.client_secret.clone(),
            tenant: app.tenant.clone().unwrap_or_else(|| tenant.to_owned()),
            scopes: app
                .scopes
                .clone()
                .unwrap_or_else(|| scopes.split(' ').map(str::to_owned).collect()),
            revocation_url: app.revocation_url.clone(),
        };
        let tenant_wide = connector_type.info().auth_method == AuthMethod::OAuth2AdminConsent;
        let provider = MicrosoftApp::new(
            microsoft.clone(),
            registration,
            tenant_wide,
            &config.microsoft_graph,
        );
        providers.insert(connector_type, Arc::new(provider) as Arc<dyn OAuthProvider>);
    }
    let providers = providers
        .into_iter()
        .map(|(connector_type, provider)| {
            let measured = Measured::new(provider, connector_type.as_str(), metrics.clone());
            (connector_type, Arc::new(measured) as Arc<dyn OAuthProvider>)
        })
        .collect();
    let duration =
        |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
    Ok(domain::OAuthSettings {
        providers,
        redirect_uri: format!("{public_url}/oauth/callback"),
        return_urls: config.return_urls.clone(),
        attempt_lifetime: duration(config.authorization_lifetime),
        refresh_skew: duration(config.refresh_skew),
        callback_completes: config.callback_completes_authorizations,
    })
}
