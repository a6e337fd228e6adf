//! The connector event log: every lifecycle change appears once, in order, recorded with the
//! change itself (a refused change records nothing), readable page by page per account.

use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use connector_client::pb;
use connector_tests::{
    Azurite, Backend, OAuthWorld, SCOPED_KEY, TestServer, assert_error, assert_invalid_field,
    azure_create, azure_credentials, next_event, on_both_backends, server_events, unique_parent,
};
use identity_emulator::fixtures;
use pb::connector_event::{Kind, RevocationOutcome as Outcome};
use tonic::Code;

on_both_backends!(
    every_lifecycle_change_is_one_event_in_order,
    events_are_per_account_and_paged,
    a_revoked_grant_records_a_revoked_deauthorization,
    deleting_an_account_deletes_its_connectors_and_revokes_their_access,
);

/// Two processes on one PostgreSQL database write events concurrently; a watcher on one of them
/// sees every event of both exactly once, in cursor order, with no gap (an event that takes a
/// lower cursor but commits later is not skipped).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watcher_sees_every_event_of_two_processes_once_in_order() {
    let first = TestServer::start(Backend::Postgres).await;
    let second = TestServer::start_with(first.sharing_options()).await;
    let parent = unique_parent();
    let clients = [first.client().await, second.client().await];
    let mut watch = clients[1].watch_events(parent.clone(), 0);

    let accounts = connector_tests::STORAGE_ACCOUNTS;
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..accounts {
        let client = clients[i % 2].clone();
        let request = azure_create(&parent, Azurite::shared().account(i), "busy");
        creates.spawn(async move { client.create_connector(request).await.expect("created") });
    }
    let created = creates.join_all().await;
    let mut deletes = tokio::task::JoinSet::new();
    for (i, connector) in created.into_iter().enumerate() {
        let client = clients[(i + 1) % 2].clone();
        deletes.spawn(async move {
            client
                .delete_connector(pb::DeleteConnectorRequest {
                    name: connector.name,
                    etag: String::new(),
                })
                .await
                .expect("deleted")
        });
    }
    deletes.join_all().await;

    // Created, deleted, and the revocation outcome (Azure: not supported) of each.
    let expected = server_events(&first, &parent).await;
    assert_eq!(expected.len(), 3 * accounts);
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        seen.push(next_event(&mut watch).await);
    }
    let cursors = |events: &[pb::ConnectorEvent]| -> Vec<i64> {
        events.iter().map(|event| event.cursor).collect()
    };
    assert_eq!(
        cursors(&seen),
        cursors(&expected),
        "every event once, in order"
    );
    assert!(seen.windows(2).all(|pair| pair[0].cursor < pair[1].cursor));
}

/// The gap a log follower can fall into: a transaction takes cursor N, another takes N+1 and
/// commits first, the watcher reads N+1 and moves past N, then N commits. The test holds such a
/// transaction open itself, appending as the server does (it stands in for another process
/// paused between its append and its commit); the server's next append must wait for it, so the
/// watcher still sees N before N+1.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_that_commits_late_is_not_skipped() {
    use sea_orm::{ConnectionTrait as _, Database, TransactionTrait as _};
    let server = TestServer::start(Backend::Postgres).await;
    let client = server.client().await;
    let parent = unique_parent();
    let account = parent.trim_start_matches("accounts/").to_owned();
    let mut watch = client.watch_events(parent.clone(), 0);

    let db = Database::connect(server.database_url.as_str())
        .await
        .expect("connect");
    let late = db.begin().await.expect("begin");
    late.execute_unprepared("SELECT pg_advisory_xact_lock(7411)")
        .await
        .expect("the event log lock");
    late.execute_unprepared(&format!(
        "INSERT INTO connector_event (account, connector_id, connector_type, kind, reason, \
         create_time) VALUES ('{account}', '{}', 'azure-blob-storage', 'AUTHORIZED', NULL, 0)",
        uuid::Uuid::new_v4()
    ))
    .await
    .expect("the late event");

    let create = tokio::spawn({
        let client = client.clone();
        let request = azure_create(&parent, Azurite::shared().account(9), "later");
        async move { client.create_connector(request).await.expect("created") }
    });
    // Either the create waits for the late transaction (the lock works), or it committed and the
    // watcher has already handed out its event (then the late one is behind the watcher).
    let mut seen = Vec::new();
    let deadline = Instant::now() + StdDuration::from_secs(15);
    loop {
        let waiting = server
            .query_i64(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .await;
        if waiting > 0 {
            break;
        }
        if create.is_finished() {
            seen.push(next_event(&mut watch).await);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the create neither waited nor finished"
        );
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    late.commit().await.expect("the late event commits");
    create.await.expect("create task");
    while seen.len() < 2 {
        seen.push(next_event(&mut watch).await);
    }
    let kinds: Vec<Kind> = seen.iter().map(|event| event.kind()).collect();
    assert_eq!(kinds, [Kind::Authorized, Kind::Authorized]);
    assert!(
        seen[0].cursor < seen[1].cursor,
        "the late event first: {seen:?}"
    );
    assert_eq!(seen[1].connector_type, "connectorTypes/azure-blob-storage");
    assert!(
        seen[0]
            .create_time
            .as_ref()
            .is_some_and(|time| time.seconds == 0)
    );
}

async fn every_lifecycle_change_is_one_event_in_order(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let client = server.client().await;
    let parent = unique_parent();
    let account = Azurite::shared().account(3);
    let created = client
        .create_connector(azure_create(&parent, account, "logged"))
        .await
        .expect("created");
    // Refused changes record nothing.
    client
        .create_connector(azure_create(&parent, account, "again"))
        .await
        .expect_err("duplicate");
    client
        .update_connector(pb::UpdateConnectorRequest {
            connector: Some(pb::Connector {
                labels: [("team".to_owned(), "data".to_owned())].into(),
                ..created.clone()
            }),
            update_mask: None,
        })
        .await
        .expect("labels are not a lifecycle change");
    client
        .reauthorize_connector(pb::ReauthorizeConnectorRequest {
            name: created.name.clone(),
            credentials: Some(azure_credentials(&account.name, &account.key2)),
        })
        .await
        .expect("reauthorized");
    // 91 idle days, then the sweeper (it runs at start-up).
    server.clock.advance(Duration::days(91));
    server.restart().await;
    let deadline = Instant::now() + StdDuration::from_secs(15);
    while server_events(&server, &parent).await.len() < 3 {
        assert!(Instant::now() < deadline, "the sweeper recorded no event");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    server
        .client()
        .await
        .delete_connector(pb::DeleteConnectorRequest {
            name: created.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("deleted");

    let log = server_events(&server, &parent).await;
    let kinds: Vec<Kind> = log.iter().map(|event| event.kind()).collect();
    assert_eq!(
        kinds,
        [
            Kind::Authorized,
            Kind::Reauthorized,
            Kind::Deauthorized,
            // Azure keys cannot be revoked by us: recorded with the deauthorization.
            Kind::RevocationFinished,
            // Deleting a deauthorized connector has nothing left to revoke.
            Kind::Deleted
        ]
    );
    assert_eq!(log[3].revocation_outcome(), Outcome::NotSupported);
    assert_eq!(log[2].revocation_outcome(), Outcome::Unspecified);
    assert!(log.iter().all(|event| event.connector == created.name));
    assert!(
        log.windows(2).all(|pair| pair[0].cursor < pair[1].cursor),
        "cursors increase"
    );
    assert_eq!(
        log[2].deauthorization_reason(),
        pb::connector::DeauthorizationReason::Inactivity
    );
    assert_eq!(log[0].connector_type, "connectorTypes/azure-blob-storage");
}

async fn events_are_per_account_and_paged(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let parent = unique_parent();
    for i in 0..5 {
        client
            .create_connector(azure_create(&parent, Azurite::shared().account(i), "paged"))
            .await
            .expect("created");
    }
    client
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(0),
            "other",
        ))
        .await
        .expect("another account");

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_connector_events(pb::ListConnectorEventsRequest {
                parent: parent.clone(),
                page_size: 2,
                page_token: token.clone(),
            })
            .await
            .expect("page");
        assert!(page.events.len() <= 2);
        seen.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 5, "exactly this account's five events");
    assert!(seen.windows(2).all(|pair| pair[0].cursor < pair[1].cursor));

    // A connector-list token is not an event token, and other accounts are off limits.
    let list_token = client
        .list_connectors(pb::ListConnectorsRequest {
            parent: parent.clone(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .next_page_token;
    let error = client
        .list_connector_events(pb::ListConnectorEventsRequest {
            parent: parent.clone(),
            page_size: 2,
            page_token: list_token,
        })
        .await
        .expect_err("wrong listing");
    assert_invalid_field(&error, "page_token");
    let denied = server
        .client_with_key(SCOPED_KEY)
        .await
        .list_connector_events(pb::ListConnectorEventsRequest {
            parent,
            ..Default::default()
        })
        .await
        .expect_err("another account");
    assert_error(&denied, Code::PermissionDenied, "ACCOUNT_ACCESS_DENIED");
}

async fn a_revoked_grant_records_a_revoked_deauthorization(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let parent = unique_parent();
    let linked = world
        .link(
            &parent,
            "connectorTypes/onedrive-consumer",
            fixtures::ALICE_UPN,
        )
        .await
        .expect("linked");
    world
        .emulator
        .revoke_user_grant(fixtures::ALICE_UPN, fixtures::CLIENT_ID)
        .unwrap();
    world.server.clock.advance(Duration::hours(2));
    world
        .server
        .client()
        .await
        .get_access_token(pb::GetAccessTokenRequest {
            name: linked.name.clone(),
        })
        .await
        .expect_err("revoked");
    let log = server_events(&world.server, &parent).await;
    let kinds: Vec<Kind> = log.iter().map(|event| event.kind()).collect();
    // Without a revocation endpoint configured, the outcome is recorded at once.
    assert_eq!(
        kinds,
        [
            Kind::Authorized,
            Kind::Deauthorized,
            Kind::RevocationFinished
        ]
    );
    assert_eq!(
        log[1].deauthorization_reason(),
        pb::connector::DeauthorizationReason::Revoked
    );
    assert_eq!(log[2].revocation_outcome(), Outcome::NotSupported);
}

async fn deleting_an_account_deletes_its_connectors_and_revokes_their_access(backend: Backend) {
    let world = OAuthWorld::start_with_revocation(backend, true).await;
    let server = &world.server;
    let client = server.client().await;
    let parent = unique_parent();
    for i in 0..3 {
        client
            .create_connector(azure_create(&parent, Azurite::shared().account(i), "gone"))
            .await
            .expect("created");
    }
    world
        .link(
            &parent,
            "connectorTypes/onedrive-consumer",
            fixtures::ALICE_UPN,
        )
        .await
        .expect("linked");
    let other = unique_parent();
    let kept = client
        .create_connector(azure_create(&other, Azurite::shared().account(0), "kept"))
        .await
        .expect("another account");

    // A key scoped to another account cannot do it.
    let denied = server
        .client_with_key(SCOPED_KEY)
        .await
        .delete_account(pb::DeleteAccountRequest {
            name: parent.clone(),
        })
        .await
        .expect_err("not its account");
    assert_error(&denied, Code::PermissionDenied, "ACCOUNT_ACCESS_DENIED");

    world.emulator.reset_counters();
    let deleted = client
        .delete_account(pb::DeleteAccountRequest {
            name: parent.clone(),
        })
        .await
        .expect("deleted");
    assert_eq!(deleted.deleted_connectors, 4);
    let left = client
        .list_connectors(pb::ListConnectorsRequest {
            parent: parent.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(left.connectors.is_empty());
    client
        .get_connector(pb::GetConnectorRequest { name: kept.name })
        .await
        .expect("other accounts keep theirs");
    assert_eq!(
        server
            .query_i64("SELECT COUNT(*) FROM connector_secret")
            .await,
        1,
        "only the other account's key remains"
    );

    // The OAuth connector's refresh token is revoked through the outbox.
    let deadline = Instant::now() + StdDuration::from_secs(10);
    let log = loop {
        let log = server_events(server, &parent).await;
        if log
            .last()
            .is_some_and(|event| event.kind() == Kind::RevocationFinished)
        {
            break log;
        }
        assert!(
            Instant::now() < deadline,
            "no revocation outcome was recorded"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    };
    let kinds: Vec<Kind> = log.iter().map(|event| event.kind()).collect();
    let deleted_at = kinds.len() - 9;
    assert_eq!(
        kinds[deleted_at..],
        [
            Kind::Deleted,
            Kind::Deleted,
            Kind::Deleted,
            Kind::Deleted,
            Kind::RevocationFinished,
            Kind::RevocationFinished,
            Kind::RevocationFinished,
            Kind::AccountDeleted,
            Kind::RevocationFinished,
        ][..],
        "{kinds:?}"
    );
    let outcomes: Vec<(String, Outcome)> = log[deleted_at + 4..]
        .iter()
        .filter(|event| event.kind() == Kind::RevocationFinished)
        .map(|event| (event.connector_type.clone(), event.revocation_outcome()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (
                "connectorTypes/azure-blob-storage".to_owned(),
                Outcome::NotSupported
            ),
            (
                "connectorTypes/azure-blob-storage".to_owned(),
                Outcome::NotSupported
            ),
            (
                "connectorTypes/azure-blob-storage".to_owned(),
                Outcome::NotSupported
            ),
            (
                "connectorTypes/onedrive-consumer".to_owned(),
                Outcome::Revoked
            ),
        ]
    );
    assert!(log[deleted_at + 7].connector.is_empty());
    assert_eq!(world.emulator.counters().revoke, 1);
    assert_eq!(
        world
            .emulator
            .revoke_user_grant(fixtures::ALICE_UPN, fixtures::CLIENT_ID)
            .unwrap(),
        0,
        "Alice's grant was revoked at the provider"
    );
    assert_eq!(server.query_i64("SELECT COUNT(*) FROM revocation").await, 0);
}
