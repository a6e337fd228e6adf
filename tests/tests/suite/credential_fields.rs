//! Credential types described by the catalogue and linked with named fields (issue 10): a
//! caller renders the form from `ListConnectorTypes` and sends `Credentials.fields`, without
//! knowing the type.

use std::collections::HashMap;

use connector_client::pb;
use connector_tests::{
    Azurite, Backend, StorageAccount, TestServer, assert_error, create_request, named_credentials,
    on_both_backends, unique_parent, violated_fields,
};
use tonic::Code;

on_both_backends!(
    the_catalogue_describes_each_credential_field,
    an_azure_connector_links_and_reauthorizes_from_named_fields,
    named_fields_are_checked_against_the_catalogue_and_nothing_is_saved,
);

fn fields(values: &[(&str, &str)]) -> pb::Credentials {
    named_credentials(values)
}

fn create(
    parent: &str,
    connector_type: &str,
    credentials: pb::Credentials,
) -> pb::CreateConnectorRequest {
    create_request(parent, connector_type, "from the form", credentials)
}

fn azure_fields(account: &StorageAccount, key: &str) -> pb::Credentials {
    fields(&[("account_name", &account.name), ("account_key", key)])
}

async fn the_catalogue_describes_each_credential_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let types = server
        .client()
        .await
        .list_connector_types(pb::ListConnectorTypesRequest {})
        .await
        .expect("types")
        .connector_types;
    let by_name: HashMap<_, _> = types.iter().map(|t| (t.name.as_str(), t)).collect();

    let azure = by_name["connectorTypes/azure-blob-storage"];
    let described: Vec<(&str, bool, bool)> = azure
        .credential_fields
        .iter()
        .map(|field| (field.name.as_str(), field.secret, field.required))
        .collect();
    assert_eq!(
        described,
        [("account_name", false, true), ("account_key", true, true)]
    );
    assert!(
        azure
            .credential_fields
            .iter()
            .all(|field| !field.display_name.is_empty() && !field.validation_hint.is_empty())
    );
    assert_eq!(azure.services, ["Azure Blob Storage"]);

    for oauth in [
        "connectorTypes/office-365",
        "connectorTypes/onedrive-consumer",
        "connectorTypes/onedrive-for-business-user",
    ] {
        assert!(by_name[oauth].credential_fields.is_empty(), "{oauth}");
        assert!(!by_name[oauth].services.is_empty(), "{oauth}");
    }
    assert_eq!(
        by_name["connectorTypes/office-365"].services,
        ["OneDrive for Business (Administrator)", "SharePoint Online"]
    );
}

async fn an_azure_connector_links_and_reauthorizes_from_named_fields(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let account = Azurite::shared().account(12);
    let created = client
        .create_connector(create(
            &unique_parent(),
            "azure-blob-storage",
            azure_fields(account, &account.key1),
        ))
        .await
        .expect("created from named fields");
    assert_eq!(created.state(), pb::connector::State::Authorized);
    assert_eq!(created.external_account.as_ref().unwrap().id, account.name);

    let reauthorized = client
        .reauthorize_connector(pb::ReauthorizeConnectorRequest {
            name: created.name.clone(),
            credentials: Some(azure_fields(account, &account.key2)),
        })
        .await
        .expect("reauthorized with the second key, from named fields");
    assert_eq!(reauthorized.name, created.name);

    let token = client
        .get_access_token(pb::GetAccessTokenRequest {
            name: created.name.clone(),
        })
        .await
        .expect("a SAS");
    assert_eq!(
        Azurite::shared()
            .use_sas(&account.name, &token.access_token)
            .await,
        201,
        "the SAS works at the storage service"
    );
}

async fn named_fields_are_checked_against_the_catalogue_and_nothing_is_saved(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let account = Azurite::shared().account(11);
    let parent = unique_parent();

    let unknown_and_missing = client
        .create_connector(create(
            &parent,
            "azure-blob-storage",
            fields(&[("account_name", &account.name), ("colour", "blue")]),
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown_and_missing.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&unknown_and_missing),
        [
            "credentials.fields.values.colour",
            "credentials.fields.values.account_key"
        ]
    );

    let malformed = client
        .create_connector(create(
            &parent,
            "azure-blob-storage",
            azure_fields(account, "not base64!"),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&malformed),
        ["credentials.fields.values.account_key"]
    );

    // A well-formed key that is another account's: the storage service refuses it.
    let wrong_key = client
        .create_connector(create(
            &parent,
            "azure-blob-storage",
            azure_fields(account, &Azurite::shared().account(10).key1),
        ))
        .await
        .unwrap_err();
    assert_error(&wrong_key, Code::InvalidArgument, "CREDENTIALS_REJECTED");

    // Fields for a type that links through OAuth 2.0.
    let oauth = client
        .create_connector(create(
            &parent,
            "onedrive-consumer",
            fields(&[("account_name", "x")]),
        ))
        .await
        .unwrap_err();
    assert_eq!(oauth.code(), Code::FailedPrecondition);

    let listed = client
        .list_connectors(pb::ListConnectorsRequest {
            parent,
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(listed.connectors.is_empty(), "nothing was saved");
}
