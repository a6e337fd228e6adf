//! `azure-blob-storage`: an Azure storage account's Blob service, linked with the account name
//! and an access key; workers get short-lived SAS tokens.

use std::sync::Arc;

use super::{Alias, Module, Provider, Section, SectionError, Shared, endpoint};
use crate::{
    domain::connector_type::{
        AuthMethod, ConnectorType, CredentialField, Deletion, MicrosoftService,
    },
    providers::azure_blob::{self, AzureBlob},
};

/// The Blob endpoint template: `{account}` is the storage account name.
const DEFAULT_ENDPOINT: &str = "https://{account}.blob.core.windows.net";

/// The catalogue entry.
static TYPE: ConnectorType = ConnectorType {
    id: "azure-blob-storage",
    display_name: "Azure Blob Storage",
    auth_method: AuthMethod::AccountKey,
    microsoft_services: &[MicrosoftService::AzureBlobStorage],
    description: "An Azure storage account's Blob service, linked with the account name and an access key.",
    services: &["Azure Blob Storage"],
    credential_fields: &[
        CredentialField {
            name: "account_name",
            display_name: "Storage account name",
            validation_hint: "3 to 24 lower case letters and digits",
            identifies_account: true,
            ..CredentialField::PLAIN
        },
        CredentialField {
            name: "account_key",
            display_name: "Access key",
            secret: true,
            validation_hint: "one of the account's access keys, base64 as the Azure portal shows it",
            ..CredentialField::PLAIN
        },
    ],
    identity_provider: None,
    deletion: Deletion {
        revokes_access: false,
        access: "We erase the storage account key we held, but Azure has no way for us to revoke an account key: the key stays valid until it is rotated.",
        check: "Rotate the key in the Azure portal: the storage account → Security + networking → Access keys → Rotate key.",
    },
};

/// The module.
pub(super) static MODULE: Module = Module {
    entry: &TYPE,
    aliases: &[
        Alias {
            key: "endpoint",
            file_key: Some("azure_blob_endpoint"),
            env: Some("CONNECTOR_AZURE_BLOB_ENDPOINT"),
        },
        Alias {
            key: "sas_lifetime_secs",
            file_key: Some("sas_lifetime_secs"),
            env: None,
        },
        Alias {
            key: "sas_permissions",
            file_key: Some("sas_permissions"),
            env: None,
        },
    ],
    build,
};

fn build(section: &Section, shared: &Shared<'_>) -> Result<Option<Provider>, SectionError> {
    section.only(&["endpoint", "sas_lifetime_secs", "sas_permissions"])?;
    let template = endpoint::url(section, "endpoint", DEFAULT_ENDPOINT, shared)?;
    if !template.contains("{account}") {
        return Err(section.invalid("endpoint", "must contain `{account}`"));
    }
    let lifetime = section
        .seconds("sas_lifetime_secs", 60..=3600)?
        .unwrap_or(std::time::Duration::from_secs(3600));
    let permissions = match section.string("sas_permissions")? {
        None => azure_blob::DEFAULT_SAS_PERMISSIONS.to_owned(),
        Some(given) => azure_blob::canonical_sas_permissions(&given).map_err(|why| {
            SectionError(format!(
                "{} `{given}`: {why}",
                section.origin("sas_permissions")
            ))
        })?,
    };
    let azure =
        AzureBlob::new(shared.http.clone(), &template, lifetime).with_sas_permissions(&permissions);
    Ok(Some(Provider::Credentials(Arc::new(azure))))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use crate::{config, metrics::Metrics, registry};

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<config::Config, config::ConfigError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(toml.as_bytes()).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let (config, _) = config::load(Some(file.path()), |name| {
            env.iter()
                .find(|(given, _)| given == name)
                .map(|(_, value)| value.clone())
        })?;
        registry::providers(&config, &reqwest::Client::new(), &Metrics::new())?;
        Ok(config)
    }

    #[test]
    fn the_section_and_its_older_keys_configure_the_same_thing() {
        let section = load(
            "[types.azure-blob-storage]\nendpoint = \"http://127.0.0.1:10000/{account}\"\nsas_lifetime_secs = 600\n",
            &[],
        )
        .expect("a section");
        assert!(
            section
                .types
                .contains("azure-blob-storage", "sas_lifetime_secs")
        );
        let older = load(
            "azure_blob_endpoint = \"http://127.0.0.1:10000/{account}\"\nsas_lifetime_secs = 600\n",
            &[],
        )
        .expect("the older top-level keys");
        assert_eq!(
            older.types.origin("azure-blob-storage", "endpoint"),
            "azure_blob_endpoint"
        );
        let from_env = load(
            "azure_blob_endpoint = \"https://example.net/{account}\"\n",
            &[(
                "CONNECTOR_AZURE_BLOB_ENDPOINT",
                "http://127.0.0.1:1/{account}",
            )],
        )
        .expect("the environment wins");
        assert_eq!(
            from_env.types.origin("azure-blob-storage", "endpoint"),
            "CONNECTOR_AZURE_BLOB_ENDPOINT"
        );
        let both = load(
            "sas_lifetime_secs = 600\n[types.azure-blob-storage]\nsas_lifetime_secs = 900\n",
            &[],
        )
        .expect_err("one key given twice");
        assert!(both.0.contains("sas_lifetime_secs"), "{both}");
    }

    #[test]
    fn errors_name_the_key_as_the_operator_wrote_it() {
        let cases = [
            (
                "sas_lifetime_secs = 7200\n",
                "sas_lifetime_secs must be between 60 and 3600",
            ),
            (
                "[types.azure-blob-storage]\nsas_lifetime_secs = 7200\n",
                "[types.azure-blob-storage] sas_lifetime_secs must be between 60 and 3600",
            ),
            (
                "azure_blob_endpoint = \"https://example.net\"\n",
                "azure_blob_endpoint must contain `{account}`",
            ),
            (
                "[types.azure-blob-storage]\nsas_permissions = \"rx\"\n",
                "[types.azure-blob-storage] sas_permissions `rx`",
            ),
            (
                "[types.azure-blob-storage]\ncolour = \"blue\"\n",
                "[types.azure-blob-storage] colour: connector type `azure-blob-storage` has no such key",
            ),
        ];
        for (toml, said) in cases {
            let error = load(toml, &[]).expect_err(toml);
            assert!(error.0.contains(said), "{error} should say {said}");
        }
    }
}
