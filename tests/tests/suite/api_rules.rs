//! The API's rules as a caller meets them: connector types and their resolution, API keys and
//! account scopes, pagination and filters, updates (labels only, never a rename, etags), bad input
//! answered with field violations, and the reauthorization prompt of a deauthorized connector.

use std::collections::HashMap;

use connector_client::pb;
use connector_tests::{
    ADMIN_KEY, Azurite, Backend, SCOPED_ACCOUNT, SCOPED_KEY, ServerOptions, TestServer,
    assert_error, assert_invalid_field, azure_create, azure_credentials, on_both_backends,
    unique_account, unique_parent,
};
use tonic::Code;
use tonic_types::StatusExt as _;

on_both_backends!(
    connector_types_are_listed_and_resolved_by_microsoft_service,
    the_catalogue_says_what_this_server_can_link_and_what_deleting_means,
    calls_without_a_valid_api_key_are_unauthenticated,
    a_scoped_key_sees_only_its_accounts,
    list_pages_in_a_stable_order_without_gaps_or_duplicates,
    page_tokens_cannot_be_forged_or_moved_to_another_request,
    list_filters_by_type_and_state,
    update_changes_labels_and_never_the_display_name,
    etags_guard_updates_and_deletes,
    bad_input_gets_field_violations_and_saves_nothing,
    deauthorized_connector_prompts_reauthorization,
    oversized_requests_are_refused,
    page_size_defaults_to_50_and_is_capped_at_1000,
    updates_without_a_mask_keep_labels_and_malformed_etags_are_invalid,
);

async fn connector_types_are_listed_and_resolved_by_microsoft_service(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;

    let types = client
        .list_connector_types(pb::ListConnectorTypesRequest {})
        .await
        .expect("list types")
        .connector_types;
    let by_name: HashMap<_, _> = types.iter().map(|t| (t.name.as_str(), t)).collect();
    // The four Microsoft types, `amazon-s3`, `sftp` and `webdav` (issue 10), `box`,
    // `dropbox` and `google-drive` (issue 11).
    assert_eq!(types.len(), 10);
    for oauth in ["box", "dropbox", "google-drive"] {
        assert_eq!(
            by_name[format!("connectorTypes/{oauth}").as_str()].auth_method(),
            pb::AuthMethod::Oauth2Delegated
        );
    }
    assert_eq!(
        by_name["connectorTypes/sftp"].auth_method(),
        pb::AuthMethod::Password
    );
    assert_eq!(
        by_name["connectorTypes/amazon-s3"].auth_method(),
        pb::AuthMethod::AccountKey
    );
    assert_eq!(
        by_name["connectorTypes/webdav"].auth_method(),
        pb::AuthMethod::Password
    );
    assert_eq!(
        by_name["connectorTypes/azure-blob-storage"].auth_method(),
        pb::AuthMethod::AccountKey
    );
    assert_eq!(
        by_name["connectorTypes/onedrive-consumer"].auth_method(),
        pb::AuthMethod::Oauth2Delegated
    );
    assert_eq!(
        by_name["connectorTypes/onedrive-for-business-user"].auth_method(),
        pb::AuthMethod::Oauth2Delegated
    );
    assert_eq!(
        by_name["connectorTypes/office-365"].auth_method(),
        pb::AuthMethod::Oauth2AdminConsent
    );
    assert!(
        types
            .iter()
            .all(|t| !t.display_name.is_empty() && !t.description.is_empty())
    );

    use pb::MicrosoftService as S;
    for (service, expected) in [
        (S::AzureBlobStorage, "connectorTypes/azure-blob-storage"),
        (S::OnedriveConsumer, "connectorTypes/onedrive-consumer"),
        (
            S::OnedriveForBusinessAdministrator,
            "connectorTypes/office-365",
        ),
        (
            S::OnedriveForBusinessUser,
            "connectorTypes/onedrive-for-business-user",
        ),
        (S::SharepointOnline, "connectorTypes/office-365"),
    ] {
        let resolved = client
            .resolve_connector_type(pb::ResolveConnectorTypeRequest {
                microsoft_service: service.into(),
            })
            .await
            .expect("resolve")
            .connector_type
            .expect("a type");
        assert_eq!(resolved.name, expected, "{service:?}");
        assert!(
            resolved.microsoft_services.contains(&(service as i32)),
            "{service:?}"
        );
    }
    let unspecified = client
        .resolve_connector_type(pb::ResolveConnectorTypeRequest {
            microsoft_service: 0,
        })
        .await
        .expect_err("unspecified");
    assert_invalid_field(&unspecified, "microsoft_service");

    let office = client
        .get_connector_type(pb::GetConnectorTypeRequest {
            name: "connectorTypes/office-365".into(),
        })
        .await
        .expect("get type");
    assert_eq!(office.display_name, "Office 365");
    let unknown = client
        .get_connector_type(pb::GetConnectorTypeRequest {
            // Not a type this service has (Dropbox was the example until issue 11 added it).
            name: "connectorTypes/icloud-drive".into(),
        })
        .await
        .expect_err("unknown type");
    assert_error(&unknown, Code::NotFound, "CONNECTOR_TYPE_NOT_FOUND");
    // Finding 12: a name that cannot be a connector type is an invalid argument, not unknown.
    for malformed in [
        "connectorTypes/",
        "connectorTypes/../x",
        "connectorTypes/a/b",
        "office-365",
    ] {
        let refused = client
            .get_connector_type(pb::GetConnectorTypeRequest {
                name: malformed.into(),
            })
            .await
            .expect_err(malformed);
        assert_invalid_field(&refused, "name");
    }
}

async fn calls_without_a_valid_api_key_are_unauthenticated(backend: Backend) {
    let server = TestServer::start(backend).await;
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut anonymous = pb::connector_service_client::ConnectorServiceClient::new(channel);
    let missing = anonymous
        .list_connector_types(pb::ListConnectorTypesRequest {})
        .await
        .expect_err("no key");
    assert_error(&missing, Code::Unauthenticated, "API_KEY_MISSING");

    let wrong = server
        .client_with_key("not-a-key")
        .await
        .list_connector_types(pb::ListConnectorTypesRequest {})
        .await
        .expect_err("unknown key");
    assert_error(&wrong, Code::Unauthenticated, "API_KEY_INVALID");

    // Health needs no key.
    assert_eq!(server.health_status().await.expect("health"), 1, "SERVING");
}

async fn a_scoped_key_sees_only_its_accounts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.client().await;
    let scoped = server.client_with_key(SCOPED_KEY).await;
    let azurite = Azurite::shared();
    let other_parent = unique_parent();
    let others = admin
        .create_connector(azure_create(&other_parent, azurite.account(0), "not yours"))
        .await
        .expect("admin creates");

    // Another account's connector does not exist as far as the scoped key can tell.
    let get = scoped
        .get_connector(pb::GetConnectorRequest {
            name: others.name.clone(),
        })
        .await
        .expect_err("hidden");
    assert_error(&get, Code::NotFound, "CONNECTOR_NOT_FOUND");
    let missing_name = format!("{other_parent}/connectors/01900000-0000-7000-8000-000000000000");
    let truly_missing = scoped
        .get_connector(pb::GetConnectorRequest { name: missing_name })
        .await
        .expect_err("missing");
    assert_eq!(truly_missing.code(), get.code());
    for status in [
        scoped
            .delete_connector(pb::DeleteConnectorRequest {
                name: others.name.clone(),
                etag: String::new(),
            })
            .await
            .expect_err("hidden"),
        scoped
            .get_access_token(pb::GetAccessTokenRequest {
                name: others.name.clone(),
            })
            .await
            .expect_err("hidden"),
        scoped
            .record_transfer(pb::RecordTransferRequest {
                name: others.name.clone(),
                bytes_transferred: 1,
            })
            .await
            .expect_err("hidden"),
        scoped
            .update_connector(pb::UpdateConnectorRequest {
                connector: Some(pb::Connector {
                    labels: HashMap::from([("mine".to_owned(), "now".to_owned())]),
                    ..others.clone()
                }),
                update_mask: None,
            })
            .await
            .expect_err("hidden"),
        scoped
            .reauthorize_connector(pb::ReauthorizeConnectorRequest {
                name: others.name.clone(),
                credentials: Some(azure_credentials(
                    &azurite.account(0).name,
                    &azurite.account(0).key1,
                )),
            })
            .await
            .expect_err("hidden"),
    ] {
        assert_error(&status, Code::NotFound, "CONNECTOR_NOT_FOUND");
    }
    admin
        .get_connector(pb::GetConnectorRequest {
            name: others.name.clone(),
        })
        .await
        .expect("still there");

    let list = scoped
        .list_connectors(pb::ListConnectorsRequest {
            parent: other_parent.clone(),
            ..Default::default()
        })
        .await
        .expect_err("denied");
    assert_error(&list, Code::PermissionDenied, "ACCOUNT_ACCESS_DENIED");
    let create = scoped
        .create_connector(azure_create(&other_parent, azurite.account(1), "nope"))
        .await
        .expect_err("denied");
    assert_error(&create, Code::PermissionDenied, "ACCOUNT_ACCESS_DENIED");

    // Its own account works.
    let own_parent = format!("accounts/{SCOPED_ACCOUNT}");
    let own = scoped
        .create_connector(azure_create(&own_parent, azurite.account(1), "mine"))
        .await
        .expect("own account");
    let listed = scoped
        .list_connectors(pb::ListConnectorsRequest {
            parent: own_parent,
            ..Default::default()
        })
        .await
        .expect("list own");
    assert_eq!(listed.connectors, vec![own]);
}

async fn list_pages_in_a_stable_order_without_gaps_or_duplicates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let azurite = Azurite::shared();
    let parent = unique_parent();
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(
            client
                .create_connector(azure_create(&parent, azurite.account(i), &format!("c{i}")))
                .await
                .expect("create")
                .name,
        );
    }
    // Another account's connectors never show up.
    client
        .create_connector(azure_create(
            &format!("accounts/{}", unique_account()),
            azurite.account(0),
            "x",
        ))
        .await
        .expect("other account");

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_connectors(pb::ListConnectorsRequest {
                parent: parent.clone(),
                page_size: 3,
                page_token: token.clone(),
                filter: String::new(),
            })
            .await
            .expect("page");
        pages += 1;
        assert!(page.connectors.len() <= 3);
        seen.extend(page.connectors.into_iter().map(|c| c.name));
        if pages == 1 {
            // Keyset, not OFFSET: deleting a connector already seen must not make the next page
            // skip one.
            client
                .delete_connector(pb::DeleteConnectorRequest {
                    name: seen[0].clone(),
                    etag: String::new(),
                })
                .await
                .expect("delete during paging");
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "oldest first, each exactly once");
    created.remove(0);

    // The default page holds them all; a huge page size is capped, not refused.
    let all = client
        .list_connectors(pb::ListConnectorsRequest {
            parent: parent.clone(),
            ..Default::default()
        })
        .await
        .expect("default page");
    assert_eq!(all.connectors.len(), 6);
    assert!(all.next_page_token.is_empty());
    let capped = client
        .list_connectors(pb::ListConnectorsRequest {
            parent: parent.clone(),
            page_size: 1_000_000,
            ..Default::default()
        })
        .await
        .expect("capped page");
    assert_eq!(capped.connectors.len(), 6);
    let negative = client
        .list_connectors(pb::ListConnectorsRequest {
            parent,
            page_size: -1,
            ..Default::default()
        })
        .await
        .expect_err("negative");
    assert_invalid_field(&negative, "page_size");
}

async fn page_tokens_cannot_be_forged_or_moved_to_another_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let azurite = Azurite::shared();
    let parent = unique_parent();
    for i in 0..2 {
        client
            .create_connector(azure_create(&parent, azurite.account(i), "x"))
            .await
            .expect("create");
    }
    let first = client
        .list_connectors(pb::ListConnectorsRequest {
            parent: parent.clone(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("first page");
    let token = first.next_page_token;
    assert!(!token.is_empty());
    assert!(
        !token.contains(&parent[9..]),
        "opaque: the token does not show the account"
    );

    let mut flipped = token.clone().into_bytes();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let cases = [
        (parent.clone(), String::new(), "not-a-token".to_owned()),
        (
            parent.clone(),
            String::new(),
            String::from_utf8(flipped).unwrap(),
        ),
        (
            format!("accounts/{}", unique_account()),
            String::new(),
            token.clone(),
        ),
        (
            parent.clone(),
            "state = AUTHORIZED".to_owned(),
            token.clone(),
        ),
    ];
    for (parent, filter, page_token) in cases {
        let error = client
            .list_connectors(pb::ListConnectorsRequest {
                parent,
                page_size: 1,
                page_token,
                filter,
            })
            .await
            .expect_err("refused token");
        assert_invalid_field(&error, "page_token");
    }
    // The genuine token still works.
    let second = client
        .list_connectors(pb::ListConnectorsRequest {
            parent,
            page_size: 1,
            page_token: token,
            filter: String::new(),
        })
        .await
        .expect("second page");
    assert_eq!(second.connectors.len(), 1);
}

async fn list_filters_by_type_and_state(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let azurite = Azurite::shared();
    let parent = unique_parent();
    let a = client
        .create_connector(azure_create(&parent, azurite.account(0), "a"))
        .await
        .expect("a");
    let b = client
        .create_connector(azure_create(&parent, azurite.account(1), "b"))
        .await
        .expect("b");
    server.deauthorize_in_database(&b.name).await;

    let list = |filter: &str| {
        let client = client.clone();
        let request = pb::ListConnectorsRequest {
            parent: parent.clone(),
            filter: filter.to_owned(),
            ..Default::default()
        };
        async move { client.list_connectors(request).await }
    };
    let names = |response: pb::ListConnectorsResponse| {
        response
            .connectors
            .into_iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            list(r#"connector_type = "connectorTypes/azure-blob-storage""#)
                .await
                .unwrap()
        ),
        vec![a.name.clone(), b.name.clone()]
    );
    assert_eq!(
        names(
            list("connector_type = connectorTypes/office-365")
                .await
                .unwrap()
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        names(list("state = AUTHORIZED").await.unwrap()),
        vec![a.name.clone()]
    );
    assert_eq!(
        names(
            list("state = DEAUTHORIZED AND connector_type = azure-blob-storage")
                .await
                .unwrap()
        ),
        vec![b.name.clone()]
    );
    for bad in [
        "state = SLEEPING",
        "colour = red",
        "state",
        "connector_type = icloud-drive",
    ] {
        assert_invalid_field(&list(bad).await.expect_err(bad), "filter");
    }
}

async fn update_changes_labels_and_never_the_display_name(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let created = client
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(2),
            "Original name",
        ))
        .await
        .expect("create");
    let mask = |paths: &[&str]| {
        Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        })
    };

    let mut wanted = created.clone();
    wanted.labels = HashMap::from([("team".to_owned(), "migration".to_owned())]);
    let updated = client
        .update_connector(pb::UpdateConnectorRequest {
            connector: Some(wanted.clone()),
            update_mask: mask(&["labels"]),
        })
        .await
        .expect("labels");
    assert_eq!(updated.labels, wanted.labels);
    assert_eq!(updated.display_name, "Original name");
    assert_ne!(updated.etag, created.etag);

    let mut renamed = updated.clone();
    renamed.display_name = "New name".to_owned();
    for update_mask in [
        mask(&["display_name"]),
        mask(&["labels", "display_name"]),
        None,
    ] {
        let error = client
            .update_connector(pb::UpdateConnectorRequest {
                connector: Some(renamed.clone()),
                update_mask,
            })
            .await
            .expect_err("rename refused");
        assert_error(&error, Code::InvalidArgument, "DISPLAY_NAME_IMMUTABLE");
        assert!(
            error.message().contains("delete") && error.message().contains("add it again"),
            "{}",
            error.message()
        );
    }
    for path in ["state", "name", "create_time", "no_such_field"] {
        let error = client
            .update_connector(pb::UpdateConnectorRequest {
                connector: Some(updated.clone()),
                update_mask: mask(&[path]),
            })
            .await
            .expect_err(path);
        assert_invalid_field(&error, "update_mask");
    }
    let after = client
        .get_connector(pb::GetConnectorRequest {
            name: created.name.clone(),
        })
        .await
        .expect("get");
    assert_eq!(after, updated, "refused updates changed nothing");
}

async fn etags_guard_updates_and_deletes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let created = client
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(3),
            "guarded",
        ))
        .await
        .expect("create");
    let mut first = created.clone();
    first.labels = HashMap::from([("step".to_owned(), "one".to_owned())]);
    let current = client
        .update_connector(pb::UpdateConnectorRequest {
            connector: Some(first),
            update_mask: None,
        })
        .await
        .expect("first writer");

    // A second writer still holding the old etag loses.
    let mut stale = created.clone();
    stale.labels = HashMap::from([("step".to_owned(), "stale".to_owned())]);
    let error = client
        .update_connector(pb::UpdateConnectorRequest {
            connector: Some(stale),
            update_mask: None,
        })
        .await
        .expect_err("stale etag");
    assert_error(&error, Code::Aborted, "ETAG_MISMATCH");
    let delete_stale = client
        .delete_connector(pb::DeleteConnectorRequest {
            name: created.name.clone(),
            etag: created.etag.clone(),
        })
        .await
        .expect_err("stale delete");
    assert_error(&delete_stale, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(
        client
            .get_connector(pb::GetConnectorRequest {
                name: created.name.clone()
            })
            .await
            .unwrap(),
        current
    );
    client
        .delete_connector(pb::DeleteConnectorRequest {
            name: created.name.clone(),
            etag: current.etag,
        })
        .await
        .expect("delete with the current etag");
}

async fn bad_input_gets_field_violations_and_saves_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let account = Azurite::shared().account(4);
    let good = || azure_create(&unique_parent(), account, "fine");

    let mut cases: Vec<(pb::CreateConnectorRequest, &str)> = Vec::new();
    for bad_parent in [
        "",
        "acme",
        "accounts/",
        "accounts/a b",
        "accounts/x/connectors/y",
        &format!("accounts/{}", "a".repeat(65)),
    ] {
        let mut request = good();
        request.parent = bad_parent.to_owned();
        cases.push((request, "parent"));
    }
    let mut request = good();
    request.connector = None;
    cases.push((request, "connector"));
    // Finding 12: a bare type id (no `connectorTypes/`) is refused too.
    for bad_type in ["", "connectorTypes/icloud-drive", "azure-blob-storage"] {
        let mut request = good();
        request.connector.as_mut().unwrap().connector_type = bad_type.to_owned();
        cases.push((request, "connector.connector_type"));
    }
    for bad_name in [
        String::new(),
        "   ".to_owned(),
        "a\u{7}b".to_owned(),
        "x".repeat(257),
    ] {
        let mut request = good();
        request.connector.as_mut().unwrap().display_name = bad_name;
        cases.push((request, "connector.display_name"));
    }
    for (key, value) in [
        ("Team", "x"),
        ("9lives", "x"),
        ("team", "Has Spaces"),
        ("", "x"),
    ] {
        let mut request = good();
        request.connector.as_mut().unwrap().labels =
            HashMap::from([(key.to_owned(), value.to_owned())]);
        cases.push((request, "connector.labels"));
    }
    let mut request = good();
    request.credentials = None;
    cases.push((request, "credentials"));
    for bad_account in ["", "UPPER", "ab", "has-dash", &"a".repeat(25)] {
        let mut request = good();
        request.credentials = Some(azure_credentials(bad_account, &account.key1));
        cases.push((
            request,
            "credentials.azure_storage_account_key.account_name",
        ));
    }
    for bad_key in ["", "not base64!!", "@@@@"] {
        let mut request = good();
        request.credentials = Some(azure_credentials(&account.name, bad_key));
        cases.push((request, "credentials.azure_storage_account_key.account_key"));
    }
    for (request, field) in cases {
        let error = client
            .create_connector(request.clone())
            .await
            .expect_err(field);
        assert_invalid_field(&error, field);
        assert!(
            error.get_details_error_info().is_some(),
            "ErrorInfo on {field}"
        );
    }

    for bad in [
        "",
        "connectors/x",
        "accounts/a/connectors/not-a-uuid",
        "accounts/a/connectors/",
    ] {
        let name = bad.to_owned();
        let statuses = [
            client
                .get_connector(pb::GetConnectorRequest { name: name.clone() })
                .await
                .expect_err(bad),
            client
                .delete_connector(pb::DeleteConnectorRequest {
                    name: name.clone(),
                    etag: String::new(),
                })
                .await
                .expect_err(bad),
            client
                .get_access_token(pb::GetAccessTokenRequest { name: name.clone() })
                .await
                .expect_err(bad),
            client
                .record_transfer(pb::RecordTransferRequest {
                    name: name.clone(),
                    bytes_transferred: 1,
                })
                .await
                .expect_err(bad),
            client
                .reauthorize_connector(pb::ReauthorizeConnectorRequest {
                    name: name.clone(),
                    credentials: Some(azure_credentials(&account.name, &account.key1)),
                })
                .await
                .expect_err(bad),
        ];
        for status in statuses {
            assert_invalid_field(&status, "name");
        }
    }
    assert_eq!(server.query_i64("SELECT COUNT(*) FROM connector").await, 0);
    assert_eq!(
        server
            .query_i64("SELECT COUNT(*) FROM connector_secret")
            .await,
        0
    );

    // The bounds themselves are accepted: 256 characters of display name.
    let mut longest = good();
    longest.connector.as_mut().unwrap().display_name = "é".repeat(256);
    let created = client
        .create_connector(longest)
        .await
        .expect("256 characters");
    assert_eq!(created.display_name.chars().count(), 256);
}

async fn deauthorized_connector_prompts_reauthorization(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let account = Azurite::shared().account(5);
    let created = client
        .create_connector(azure_create(&unique_parent(), account, "five"))
        .await
        .expect("create");
    server.deauthorize_in_database(&created.name).await;

    let shown = client
        .get_connector(pb::GetConnectorRequest {
            name: created.name.clone(),
        })
        .await
        .expect("still readable");
    assert_eq!(shown.state(), pb::connector::State::Deauthorized);
    assert_eq!(
        shown.deauthorization_reason(),
        pb::connector::DeauthorizationReason::Revoked
    );
    assert!(shown.deauthorize_time.is_some());

    for status in [
        client
            .get_access_token(pb::GetAccessTokenRequest {
                name: created.name.clone(),
            })
            .await
            .expect_err("deauthorized"),
        client
            .record_transfer(pb::RecordTransferRequest {
                name: created.name.clone(),
                bytes_transferred: 10,
            })
            .await
            .expect_err("deauthorized"),
    ] {
        let metadata = assert_error(&status, Code::FailedPrecondition, "CONNECTOR_DEAUTHORIZED");
        assert_eq!(metadata.get("connector"), Some(&created.name));
        assert_eq!(
            metadata.get("deauthorization_reason").map(String::as_str),
            Some("REVOKED")
        );
        assert_eq!(
            metadata.get("reauthorize_with").map(String::as_str),
            Some("ReauthorizeConnector")
        );
        let prompt = status
            .get_details_localized_message()
            .expect("LocalizedMessage");
        assert!(
            prompt
                .message
                .contains("Reauthorize it (ReauthorizeConnector)"),
            "{}",
            prompt.message
        );
    }

    let renewed = client
        .reauthorize_connector(pb::ReauthorizeConnectorRequest {
            name: created.name.clone(),
            credentials: Some(azure_credentials(&account.name, &account.key1)),
        })
        .await
        .expect("reauthorized");
    assert_eq!(renewed.state(), pb::connector::State::Authorized);
    assert_eq!(
        renewed.deauthorization_reason(),
        pb::connector::DeauthorizationReason::Unspecified
    );
    assert_eq!(
        (renewed.name.as_str(), renewed.display_name.as_str()),
        (created.name.as_str(), "five")
    );
    client
        .get_access_token(pb::GetAccessTokenRequest {
            name: created.name.clone(),
        })
        .await
        .expect("usable again");
}

async fn oversized_requests_are_refused(backend: Backend) {
    let mut options = ServerOptions::new(backend);
    options.max_request_bytes = Some(16 * 1024);
    let server = TestServer::start_with(options).await;
    let client = server.client_with_key(ADMIN_KEY).await;
    let mut request = azure_create(&unique_parent(), Azurite::shared().account(6), "big");
    request.connector.as_mut().unwrap().display_name = "x".repeat(64 * 1024);
    let error = client
        .create_connector(request)
        .await
        .expect_err("too large");
    // Finding 12: gRPC's convention for a message over the limit, with the limit.
    let metadata = assert_error(&error, Code::ResourceExhausted, "REQUEST_TOO_LARGE");
    assert_eq!(
        metadata.get("max_request_bytes").map(String::as_str),
        Some("16384")
    );
    assert_eq!(server.query_i64("SELECT COUNT(*) FROM connector").await, 0);
}

async fn page_size_defaults_to_50_and_is_capped_at_1000(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let account = unique_account();
    // 1001 connectors: more than Azurite's storage accounts could link, so written directly.
    server
        .seed_connectors(&account, 1001, 4_102_444_800_000_000)
        .await; // deadline in 2100
    let parent = format!("accounts/{account}");
    let page = |page_size: i32, page_token: String| {
        let client = client.clone();
        let parent = parent.clone();
        async move {
            client
                .list_connectors(pb::ListConnectorsRequest {
                    parent,
                    page_size,
                    page_token,
                    filter: String::new(),
                })
                .await
                .expect("page")
        }
    };
    let default = page(0, String::new()).await;
    assert_eq!(default.connectors.len(), 50);
    let capped = page(1_000_000, String::new()).await;
    assert_eq!(capped.connectors.len(), 1000);
    let rest = page(1_000_000, capped.next_page_token).await;
    assert_eq!(rest.connectors.len(), 1);
    assert!(rest.next_page_token.is_empty());
}

async fn updates_without_a_mask_keep_labels_and_malformed_etags_are_invalid(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let mut request = azure_create(&unique_parent(), Azurite::shared().account(7), "labelled");
    request.connector.as_mut().unwrap().labels =
        HashMap::from([("team".to_owned(), "data".to_owned())]);
    let created = client.create_connector(request).await.expect("create");

    // Only the name and etag: nothing is populated, so nothing changes.
    let untouched = client
        .update_connector(pb::UpdateConnectorRequest {
            connector: Some(pb::Connector {
                name: created.name.clone(),
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect("empty update");
    assert_eq!(untouched.labels, created.labels);
    // An explicit `labels` mask with no labels clears them.
    let cleared = client
        .update_connector(pb::UpdateConnectorRequest {
            connector: Some(pb::Connector {
                name: created.name.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["labels".into()],
            }),
        })
        .await
        .expect("clear labels");
    assert!(cleared.labels.is_empty());

    let malformed = client
        .update_connector(pb::UpdateConnectorRequest {
            connector: Some(pb::Connector {
                name: created.name.clone(),
                etag: "W/not-ours".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect_err("malformed etag");
    assert_invalid_field(&malformed, "connector.etag");
    let malformed = client
        .delete_connector(pb::DeleteConnectorRequest {
            name: created.name.clone(),
            etag: "nope".into(),
        })
        .await
        .expect_err("malformed etag");
    assert_invalid_field(&malformed, "etag");
}

/// The catalogue carries what a form needs without a per-type switch: which types this server
/// can link now (an OAuth 2.0 type needs an app registration), what deleting does to our access,
/// who signs the user in, and which credential field names the account.
async fn the_catalogue_says_what_this_server_can_link_and_what_deleting_means(backend: Backend) {
    let emulator = identity_emulator::Emulator::start()
        .await
        .expect("emulator");
    let bare = TestServer::start(backend).await;
    let mut options = ServerOptions::new(backend);
    options.oauth = Some(connector_tests::oauth_options(&emulator, None));
    let with_microsoft = TestServer::start_with(options).await;
    let bare_types = types_by_id(&bare).await;
    let configured: Vec<&str> = {
        let mut ids: Vec<&str> = bare_types
            .iter()
            .filter(|(_, t)| t.configured)
            .map(|(id, _)| id.as_str())
            .collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(
        configured,
        ["amazon-s3", "azure-blob-storage", "sftp", "webdav"],
        "credential types only: no app registration is configured"
    );
    let linked = types_by_id(&with_microsoft).await;
    for id in [
        "office-365",
        "onedrive-consumer",
        "onedrive-for-business-user",
    ] {
        assert!(
            linked[id].configured,
            "{id} has the emulator's app registration"
        );
        assert_eq!(linked[id].identity_provider, "Microsoft");
    }
    assert!(!linked["google-drive"].configured);
    assert_eq!(linked["google-drive"].identity_provider, "Google");
    assert_eq!(
        linked["sftp"].identity_provider, "",
        "nobody signs in to a credential type"
    );
    for (id, connector_type) in &linked {
        let deletion = connector_type.deletion.as_ref().expect("every type says");
        assert_eq!(
            deletion.revokes_access,
            ["box", "dropbox", "google-drive"].contains(&id.as_str()),
            "{id}"
        );
        assert!(
            !deletion.access.is_empty() && !deletion.check.is_empty(),
            "{id}"
        );
    }
    assert!(
        linked["azure-blob-storage"]
            .deletion
            .as_ref()
            .unwrap()
            .access
            .contains("rotated")
    );
    let identifying: Vec<(&str, &str)> = linked
        .iter()
        .flat_map(|(id, t)| {
            t.credential_fields
                .iter()
                .filter(|field| field.identifies_account)
                .map(move |field| (id.as_str(), field.name.as_str()))
        })
        .collect();
    assert_eq!(identifying, [("azure-blob-storage", "account_name")]);
    let resolved = bare
        .client()
        .await
        .resolve_connector_type(pb::ResolveConnectorTypeRequest {
            microsoft_service: pb::MicrosoftService::SharepointOnline.into(),
        })
        .await
        .expect("resolved")
        .connector_type
        .expect("a type");
    assert_eq!(resolved.name, "connectorTypes/office-365");
    assert!(
        !resolved.configured,
        "the bare server has no Microsoft app registration"
    );
}

async fn types_by_id(server: &TestServer) -> HashMap<String, pb::ConnectorType> {
    let types = server
        .client()
        .await
        .list_connector_types(pb::ListConnectorTypesRequest {})
        .await
        .expect("list types")
        .connector_types;
    types
        .into_iter()
        .map(|t| (t.name.trim_start_matches("connectorTypes/").to_owned(), t))
        .collect()
}
