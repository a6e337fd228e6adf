//! Requests tests send: unique accounts, and create requests with their credentials.

use connector_client::pb;

use crate::azurite::StorageAccount;

/// A unique customer account id for one test.
pub fn unique_account() -> String {
    format!("acct-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// `accounts/{unique account}`: a parent no other test uses.
pub fn unique_parent() -> String {
    format!("accounts/{}", unique_account())
}

/// A `CreateConnectorRequest` for an Azure storage account.
pub fn azure_create(
    parent: &str,
    account: &StorageAccount,
    display_name: &str,
) -> pb::CreateConnectorRequest {
    azure_create_with_key(parent, &account.name, &account.key1, display_name)
}

/// A `CreateConnectorRequest` for an Azure storage account with an explicit key.
pub fn azure_create_with_key(
    parent: &str,
    account: &str,
    key: &str,
    display_name: &str,
) -> pb::CreateConnectorRequest {
    pb::CreateConnectorRequest {
        parent: parent.to_owned(),
        connector: Some(pb::Connector {
            connector_type: "connectorTypes/azure-blob-storage".to_owned(),
            display_name: display_name.to_owned(),
            ..Default::default()
        }),
        credentials: Some(azure_credentials(account, key)),
    }
}

/// Azure account key credentials.
pub fn azure_credentials(account: &str, key: &str) -> pb::Credentials {
    pb::Credentials {
        kind: Some(pb::credentials::Kind::AzureStorageAccountKey(
            pb::AzureStorageAccountKey {
                account_name: account.to_owned(),
                account_key: key.to_owned(),
            },
        )),
    }
}

/// Credentials as named fields (`Credentials.fields`), for any credential type.
pub fn named_credentials(values: &[(&str, &str)]) -> pb::Credentials {
    pb::Credentials {
        kind: Some(pb::credentials::Kind::Fields(pb::CredentialFields {
            values: values
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        })),
    }
}

/// A `CreateConnectorRequest` for connector type `connector_type` (an id such as `webdav`).
pub fn create_request(
    parent: &str,
    connector_type: &str,
    display_name: &str,
    credentials: pb::Credentials,
) -> pb::CreateConnectorRequest {
    pb::CreateConnectorRequest {
        parent: parent.to_owned(),
        connector: Some(pb::Connector {
            connector_type: format!("connectorTypes/{connector_type}"),
            display_name: display_name.to_owned(),
            ..Default::default()
        }),
        credentials: Some(credentials),
    }
}
