//! Safe to expose (issue 8): each finding of the attacker's and operator's review, as a test
//! that fails on the code it was found in.

use chrono::Duration;
use connector_client::pb;
use connector_tests::{
    ADMIN_KEY, Azurite, Backend, OAuthWorld, RETURN_URL, SCOPED_KEY, ServerOptions, TestServer,
    assert_error, azure_create, confirm_at_callback, on_both_backends, query_param, unique_parent,
    violated_fields,
};
use identity_emulator::{IdTokenForgery, fixtures};
use tonic::Code;

const CONSUMER: &str = "connectorTypes/onedrive-consumer";
const OFFICE: &str = "connectorTypes/office-365";

on_both_backends!(
    a_transfer_report_during_a_refresh_keeps_the_rotated_token,
    an_authorization_url_passed_to_someone_else_links_nothing,
    linking_at_the_callback_is_opt_in_and_asks_the_user_to_confirm,
    office_365_is_linked_only_by_an_administrator_who_may_consent,
    forged_or_stale_id_tokens_link_nothing,
    the_sas_reaches_containers_and_blobs_but_not_the_account_settings,
    undecodable_requests_and_doubled_keys_get_clear_answers,
    a_rejected_client_secret_is_the_operators_problem_not_the_connectors,
);

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn connectors_of(world: &OAuthWorld, parent: &str) -> usize {
    world
        .server
        .client()
        .await
        .list_connectors(pb::ListConnectorsRequest {
            parent: parent.to_owned(),
            ..Default::default()
        })
        .await
        .expect("listed")
        .connectors
        .len()
}

async fn start(world: &OAuthWorld, parent: &str, connector_type: &str, return_url: &str) -> String {
    world
        .server
        .client()
        .await
        .start_authorization(pb::StartAuthorizationRequest {
            parent: parent.to_owned(),
            connector_type: connector_type.to_owned(),
            return_url: return_url.to_owned(),
            ..Default::default()
        })
        .await
        .expect("started")
        .authorization_url
}

/// Finding 1 (login CSRF): with the defaults, `mallory` starts an authorization and sends the
/// URL to a victim; the victim signs in. The callback links nothing: it forwards the provider's
/// parameters to the orchestrator (which knows the victim is not the user who started it), or,
/// without a return URL, sends the victim back to the application. Posting the confirmation
/// form does not link either. Office 365 likewise.
async fn an_authorization_url_passed_to_someone_else_links_nothing(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let http = no_redirects();
    let mallory = unique_parent();
    for (connector_type, victim) in [(CONSUMER, fixtures::BOB_UPN), (OFFICE, fixtures::ADELE_UPN)] {
        let url = start(&world, &mallory, connector_type, RETURN_URL).await;
        let redirect = world
            .emulator
            .complete_authorization(&url, victim)
            .expect("the victim signs in");
        let response = http.get(&redirect).send().await.expect("callback answers");
        assert_eq!(response.status().as_u16(), 303, "{connector_type}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(RETURN_URL), "{location}");
        assert!(query_param(&location, "connector").is_none(), "{location}");
        assert_eq!(
            query_param(&location, "state"),
            query_param(&redirect, "state"),
            "forwarded for the orchestrator to check and complete"
        );
        let posted = http
            .post(redirect.split('?').next().unwrap())
            .form(&[
                ("state", query_param(&redirect, "state").unwrap()),
                ("code", query_param(&redirect, "code").unwrap_or_default()),
                ("decision", "confirm".to_owned()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status().as_u16(), 303, "{connector_type}");
        let location = posted.headers()["location"].to_str().unwrap().to_owned();
        assert!(query_param(&location, "connector").is_none(), "{location}");
        assert_eq!(connectors_of(&world, &mallory).await, 0, "{connector_type}");
    }

    // Without a return URL the victim is told to go back to the application; nothing is linked.
    let url = start(&world, &mallory, CONSUMER, "").await;
    let redirect = world
        .emulator
        .complete_authorization(&url, fixtures::BOB_UPN)
        .unwrap();
    let response = http.get(&redirect).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_never_framed(&response);
    let page = response.text().await.unwrap();
    assert!(page.contains("Return to the application"), "{page}");
    assert_eq!(connectors_of(&world, &mallory).await, 0);

    // The page for a callback opened without a state, and axum's own answer to a query it
    // cannot read, cannot be framed either.
    let callback = redirect.split('?').next().unwrap().to_owned();
    for broken in [callback.clone(), format!("{callback}?state=%FF%FE")] {
        let response = http.get(&broken).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{broken}");
        assert_never_framed(&response);
    }
}

/// The answer carries both framing defences (CSP for current browsers, the header for old ones).
fn assert_never_framed(response: &reqwest::Response) {
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
}

/// Opting in (`callback_completes_authorizations`): the callback shows the customer account the
/// link is for and links only when the user confirms; Office 365 is still forwarded to the
/// orchestrator, never completed at the callback.
async fn linking_at_the_callback_is_opt_in_and_asks_the_user_to_confirm(backend: Backend) {
    let world = OAuthWorld::start_confirming(backend).await;
    let parent = unique_parent();
    let account = parent.trim_start_matches("accounts/");
    let redirect = world
        .emulator
        .complete_authorization(
            &start(&world, &parent, CONSUMER, "").await,
            fixtures::ALICE_UPN,
        )
        .unwrap();
    // Showing the page links nothing; confirming does.
    let shown = no_redirects().get(&redirect).send().await.unwrap();
    assert_eq!(shown.status().as_u16(), 200);
    assert_eq!(connectors_of(&world, &parent).await, 0);
    let confirmed = confirm_at_callback(&redirect, account, "confirm").await;
    assert_eq!(confirmed.status().as_u16(), 200);
    assert!(confirmed.text().await.unwrap().contains("Account linked"));
    assert_eq!(connectors_of(&world, &parent).await, 1);

    let redirect = world
        .emulator
        .complete_authorization(
            &start(&world, &parent, OFFICE, RETURN_URL).await,
            fixtures::ADELE_UPN,
        )
        .unwrap();
    let response = no_redirects().get(&redirect).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        query_param(&location, "code").is_some(),
        "forwarded: {location}"
    );
    assert_eq!(
        connectors_of(&world, &parent).await,
        1,
        "Office 365 not linked here"
    );
}

/// Finding 5: a `RecordTransfer` or `UpdateConnector` that lands while a refresh is at the
/// provider bumps the connector's revision. The refresh must still commit the refresh token the
/// provider rotated to (the emulator, like a provider with reuse detection, refuses the spent
/// one), and the caller gets its access token.
async fn a_transfer_report_during_a_refresh_keeps_the_rotated_token(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let client = world.server.client().await;
    let linked = world
        .link(&unique_parent(), CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("linked");
    world.server.clock.advance(Duration::hours(2));
    world.emulator.reset_counters();
    world
        .emulator
        .set_token_delay(std::time::Duration::from_millis(500));
    let refresh = tokio::spawn({
        let client = client.clone();
        let name = linked.name.clone();
        async move {
            client
                .get_access_token(pb::GetAccessTokenRequest { name })
                .await
        }
    });
    // The refresh is at the provider (its request has arrived); other writes land now.
    let arrived = std::time::Instant::now();
    while world.emulator.counters().refresh == 0 {
        assert!(arrived.elapsed() < std::time::Duration::from_secs(10));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let transfer = client.record_transfer(pb::RecordTransferRequest {
        name: linked.name.clone(),
        bytes_transferred: 4096,
    });
    let relabel = client.update_connector(pb::UpdateConnectorRequest {
        connector: Some(pb::Connector {
            name: linked.name.clone(),
            labels: [("team".to_owned(), "migrations".to_owned())].into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["labels".into()],
        }),
    });
    let (transfer, relabel, refreshed) = tokio::join!(transfer, relabel, refresh);
    transfer.expect("the transfer is recorded");
    relabel.expect("the labels are updated");
    refreshed
        .unwrap()
        .expect("the refresh succeeds although the revision moved");
    world.emulator.set_token_delay(std::time::Duration::ZERO);

    // The next refresh presents the rotated token: a spent one would be refused (invalid_grant)
    // and deauthorize the connector.
    world.server.clock.advance(Duration::hours(2));
    client
        .get_access_token(pb::GetAccessTokenRequest {
            name: linked.name.clone(),
        })
        .await
        .expect("the second refresh uses the rotated token");
    assert_eq!(world.emulator.counters().refresh, 2);
    let connector = client
        .get_connector(pb::GetConnectorRequest {
            name: linked.name.clone(),
        })
        .await
        .unwrap();
    assert_eq!(connector.state(), pb::connector::State::Authorized);
    assert_eq!(
        connector.labels.get("team").map(String::as_str),
        Some("migrations")
    );
    assert!(connector.last_transfer_time.is_some());
}

/// Finding 6: Contoso's administrator consented once; then Megan, an ordinary user of Contoso
/// (a Global Reader, who may consent to nothing), signs in for another customer account. Her
/// id token names no role that may grant tenant-wide consent: FAILED_PRECONDITION
/// `ADMIN_REQUIRED`, and nothing is created. The administrator links it.
async fn office_365_is_linked_only_by_an_administrator_who_may_consent(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let first = unique_parent();
    world
        .link(&first, OFFICE, fixtures::ADELE_UPN)
        .await
        .expect("the Global Administrator links Contoso");
    let intruder = unique_parent();
    let refused = world
        .link(&intruder, OFFICE, fixtures::MEGAN_UPN)
        .await
        .expect_err("an ordinary user of a consented tenant");
    assert_error(&refused, Code::FailedPrecondition, "ADMIN_REQUIRED");
    assert_eq!(connectors_of(&world, &intruder).await, 0);
    world
        .link(&intruder, OFFICE, fixtures::DIEGO_UPN)
        .await
        .expect("an Application Administrator of Fabrikam links Fabrikam");
    assert_eq!(connectors_of(&world, &intruder).await, 1);
}

/// Finding 7: the id token must be signed, issued by the tenant's issuer, within its lifetime
/// and carry this authorization's nonce. Each forgery answers `AUTHORIZATION_CODE_REJECTED`
/// and links nothing; an honest token then links.
async fn forged_or_stale_id_tokens_link_nothing(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let parent = unique_parent();
    for forgery in [
        IdTokenForgery::UnsignedFromIssuer {
            issuer: "https://evil.example/".into(),
        },
        IdTokenForgery::Expired,
        IdTokenForgery::NotYetValid,
        IdTokenForgery::Nonce {
            nonce: "a-nonce-of-another-authorization".into(),
        },
    ] {
        world.emulator.forge_next_id_tokens([forgery.clone()]);
        let refused = world
            .link(&parent, CONSUMER, fixtures::ALICE_UPN)
            .await
            .expect_err("a forged id token");
        assert_error(
            &refused,
            Code::FailedPrecondition,
            "AUTHORIZATION_CODE_REJECTED",
        );
        assert!(
            refused.message().contains("id token"),
            "{forgery:?}: {}",
            refused.message()
        );
        assert_eq!(connectors_of(&world, &parent).await, 0, "{forgery:?}");
    }
    world
        .link(&parent, CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("an honest id token links");
}

/// Finding 9: a generated key file that someone made readable to others is refused at start-up
/// with the command that fixes it; a private one is accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let mut server = TestServer::start_with(ServerOptions {
        configure_api_keys: false,
        ..ServerOptions::new(Backend::Sqlite)
    })
    .await;
    server.stop().await;
    for file in [
        connector_server::MASTER_KEY_FILE,
        connector_server::ADMIN_KEY_FILE,
    ] {
        let path = server.data_dir.join(file);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = server.boot().await.expect_err("a key file others can read");
        assert!(refused.contains("chmod 600"), "{refused}");
        assert!(refused.contains(file), "{refused}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    server.boot().await.expect("private key files are accepted");
}

/// Finding 11: the SAS handed out for a migration works on containers and blobs, but not on the
/// storage account's service: it can neither list the account's containers nor change its Blob
/// service properties (CORS, soft-delete retention).
async fn the_sas_reaches_containers_and_blobs_but_not_the_account_settings(backend: Backend) {
    let server = TestServer::start(backend).await;
    let azurite = Azurite::shared();
    let storage = azurite.account(14);
    let client = server.client().await;
    let created = client
        .create_connector(azure_create(&unique_parent(), storage, "least privilege"))
        .await
        .expect("created");
    // Azurite checks SAS times against its own clock.
    server.clock.set(chrono::Utc::now());
    let token = client
        .get_access_token(pb::GetAccessTokenRequest { name: created.name })
        .await
        .expect("token");
    assert!(
        token.scopes.contains(&"srt=co".to_owned()),
        "{:?}",
        token.scopes
    );
    let sas = &token.access_token;
    assert_eq!(
        azurite.use_sas(&storage.name, sas).await,
        201,
        "containers and blobs"
    );
    assert_eq!(
        azurite
            .service_call_with_sas(&storage.name, "properties", sas)
            .await,
        403,
        "the account's service properties are out of reach"
    );
    assert_eq!(
        azurite
            .service_call_with_sas(&storage.name, "list", sas)
            .await,
        403
    );
}

/// One gRPC call made by hand over HTTP/2, with these `authorization` headers and this message
/// (raw bytes, framed here): what a broken or hostile client can send.
async fn raw_call(
    server: &TestServer,
    method: &str,
    keys: &[&str],
    message: &[u8],
) -> tonic::Status {
    use tower::ServiceExt as _;
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!(
            "{}/connector.v1.ConnectorService/{method}",
            server.endpoint()
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for key in keys {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let request = request
        .body(tonic::body::Body::new(http_body_util::Full::new(
            bytes::Bytes::from(frame),
        )))
        .unwrap();
    let response = channel.oneshot(request).await.expect("the server answers");
    tonic::Status::from_header_map(response.headers()).expect("a trailers-only error answer")
}

/// Finding 12: bytes that are not the request message answer `INVALID_ARGUMENT`
/// `MALFORMED_REQUEST` (not `INTERNAL`, which means a bug of ours); two `authorization`
/// headers answer `UNAUTHENTICATED` `API_KEY_AMBIGUOUS` instead of the first one winning.
async fn undecodable_requests_and_doubled_keys_get_clear_answers(backend: Backend) {
    use prost::Message as _;
    let server = TestServer::start(backend).await;
    let request = pb::ListConnectorsRequest {
        parent: format!("accounts/{}", connector_tests::SCOPED_ACCOUNT),
        ..Default::default()
    }
    .encode_to_vec();
    let doubled = raw_call(
        &server,
        "ListConnectors",
        &[SCOPED_KEY, ADMIN_KEY],
        &request,
    )
    .await;
    assert_error(&doubled, Code::Unauthenticated, "API_KEY_AMBIGUOUS");
    let doubled = raw_call(&server, "ListConnectors", &[ADMIN_KEY, ADMIN_KEY], &request).await;
    assert_error(&doubled, Code::Unauthenticated, "API_KEY_AMBIGUOUS");
    let probe = raw_call(
        &server,
        "GetConnector",
        &[ADMIN_KEY],
        &pb::GetConnectorRequest { name: "bad".into() }.encode_to_vec(),
    )
    .await;
    assert_eq!(probe.code(), Code::InvalidArgument, "{probe:?}");
    // Field 1 (`name`, length-delimited) claiming 16 bytes where there is one.
    let junk = raw_call(&server, "GetConnector", &[ADMIN_KEY], &[0x0a, 0x10, 0x41]).await;
    assert_error(&junk, Code::InvalidArgument, "MALFORMED_REQUEST");
}

/// Finding 12: when the provider rejects our app's client secret (`invalid_client`, wrong or
/// expired), `GetAccessToken` answers `FAILED_PRECONDITION` `OAUTH_CLIENT_REJECTED` without a
/// field violation (the request has no credentials field), and no connector is deauthorized:
/// Office 365 connectors used to be, as if the tenant had withdrawn its consent.
async fn a_rejected_client_secret_is_the_operators_problem_not_the_connectors(backend: Backend) {
    let mut world = OAuthWorld::start(backend).await;
    let parent = unique_parent();
    let consumer = world
        .link(&parent, CONSUMER, fixtures::ALICE_UPN)
        .await
        .expect("linked");
    let office = world
        .link(&parent, OFFICE, fixtures::ADELE_UPN)
        .await
        .expect("linked");
    world.server.stop().await;
    for (_, app) in &mut world.server.options.oauth.as_mut().unwrap().apps {
        app.client_secret = "an-expired-secret".to_owned().into();
    }
    world.server.boot().await.expect("restarted");
    world.server.clock.advance(Duration::hours(2));
    let client = world.server.client().await;
    for linked in [&consumer, &office] {
        let refused = client
            .get_access_token(pb::GetAccessTokenRequest {
                name: linked.name.clone(),
            })
            .await
            .expect_err("our client secret is rejected");
        assert_error(&refused, Code::FailedPrecondition, "OAUTH_CLIENT_REJECTED");
        assert!(violated_fields(&refused).is_empty(), "{refused:?}");
        let connector = client
            .get_connector(pb::GetConnectorRequest {
                name: linked.name.clone(),
            })
            .await
            .unwrap();
        assert_eq!(connector.state(), pb::connector::State::Authorized);
    }
}

/// Finding 1 through the real binary, configured from a file as an operator would: with the
/// defaults the callback forwards and links nothing; opted in, it links only after the user
/// confirms a page naming the customer account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_binds_links_to_the_user_who_started_them() {
    use connector_tests::{ServerBinary, free_port, random_master_key, write_file};
    let emulator = identity_emulator::Emulator::start()
        .await
        .expect("emulator");
    let key = "binding-test-key";
    let mallory = unique_parent();
    for opted_in in [false, true] {
        let workdir = tempfile::tempdir().unwrap();
        let file = workdir.path().join("connector.toml");
        let port = free_port();
        let base = emulator.base_url();
        write_file(
            &file,
            &format!(
                "microsoft_login = \"{base}\"\nmicrosoft_graph = \"{base}\"\n\
                 return_urls = [\"{RETURN_URL}\"]\ncallback_completes_authorizations = {opted_in}\n\
                 [[api_keys]]\nid = \"mallory\"\nsha256 = \"{}\"\naccounts = [\"{}\"]\n\
                 [oauth.onedrive-consumer]\nclient_id = \"{}\"\nclient_secret = \"{}\"\n",
                hex::encode(connector_server::access::ApiKey::hash(key)),
                mallory.trim_start_matches("accounts/"),
                fixtures::CLIENT_ID,
                fixtures::CLIENT_SECRET,
            ),
        );
        emulator
            .add_redirect_uri(
                fixtures::CLIENT_ID,
                &format!("http://127.0.0.1:{port}/oauth/callback"),
            )
            .unwrap();
        let binary = ServerBinary::start(
            workdir.path(),
            port,
            &[
                ("CONNECTOR_CONFIG", file.display().to_string()),
                ("CONNECTOR_MASTER_KEY", random_master_key()),
            ],
        )
        .ready()
        .await;
        let client =
            connector_client::ConnectorClient::connect(format!("http://127.0.0.1:{port}"), key)
                .await
                .unwrap();
        let url = client
            .start_authorization(pb::StartAuthorizationRequest {
                parent: mallory.clone(),
                connector_type: CONSUMER.to_owned(),
                return_url: RETURN_URL.to_owned(),
                ..Default::default()
            })
            .await
            .unwrap()
            .authorization_url;
        let redirect = emulator
            .complete_authorization(&url, fixtures::BOB_UPN)
            .expect("the victim signs in");
        let listed = || async {
            client
                .list_connectors(pb::ListConnectorsRequest {
                    parent: mallory.clone(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .connectors
                .len()
        };
        if opted_in {
            let account = mallory.trim_start_matches("accounts/");
            let answer = confirm_at_callback(&redirect, account, "confirm").await;
            assert_eq!(answer.status().as_u16(), 303);
            assert_eq!(listed().await, 1, "linked once the user confirmed");
        } else {
            let response = no_redirects().get(&redirect).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 303);
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            assert!(query_param(&location, "connector").is_none(), "{location}");
            assert_eq!(
                listed().await,
                0,
                "the default links nothing at the callback"
            );
        }
        binary.signal("-TERM");
    }
}
