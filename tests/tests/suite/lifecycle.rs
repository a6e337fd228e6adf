//! The 90-day inactivity rule: a connector that transfers no data for 90 days is deauthorized,
//! on read at once and durably by the sweeper; transfers move the deadline, reauthorization
//! restarts it, token refreshes do not count. The clock is injected and moved, never waited on.

use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use connector_client::pb;
use connector_server::clock::Clock as _;
use connector_tests::{
    Azurite, Backend, OAuthWorld, TestServer, assert_error, azure_create, azure_credentials,
    on_both_backends, unique_parent,
};
use identity_emulator::fixtures;
use tonic::Code;

on_both_backends!(
    ninety_days_without_transfers_deauthorize_the_connector,
    a_transfer_moves_the_deadline,
    reauthorization_restarts_the_inactivity_clock,
    token_refreshes_are_not_activity,
);

fn seconds(timestamp: &Option<prost_types::Timestamp>) -> i64 {
    timestamp.as_ref().expect("a timestamp").seconds
}

/// The state as stored (what the sweeper writes), not as read.
async fn stored_state(server: &TestServer, name: &str) -> String {
    let id = name.rsplit('/').next().unwrap();
    server
        .query_string(&format!("SELECT state FROM connector WHERE id = '{id}'"))
        .await
}

/// Restarts the server (its sweeper runs at start-up) and waits until it has swept `name`.
async fn sweep(server: &mut TestServer, name: &str) {
    server.restart().await;
    let deadline = Instant::now() + StdDuration::from_secs(15);
    while stored_state(server, name).await != "DEAUTHORIZED" {
        assert!(
            Instant::now() < deadline,
            "the sweeper did not deauthorize {name}"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

async fn ninety_days_without_transfers_deauthorize_the_connector(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let client = server.client().await;
    let parent = unique_parent();
    let created = client
        .create_connector(azure_create(&parent, Azurite::shared().account(0), "idle"))
        .await
        .expect("created");
    let start = server.clock.now();
    assert_eq!(
        seconds(&created.inactivity_deadline),
        (start + Duration::days(90)).timestamp()
    );
    let get = |client: connector_client::ConnectorClient, name: String| async move {
        client
            .get_connector(pb::GetConnectorRequest { name })
            .await
            .expect("readable")
    };

    server.clock.advance(Duration::days(89));
    let day_89 = get(client.clone(), created.name.clone()).await;
    assert_eq!(day_89.state(), pb::connector::State::Authorized);
    client
        .get_access_token(pb::GetAccessTokenRequest {
            name: created.name.clone(),
        })
        .await
        .expect("still usable on day 89");

    server.clock.advance(Duration::days(2));
    // Read before the sweeper ran: already deauthorized.
    assert_eq!(stored_state(&server, &created.name).await, "AUTHORIZED");
    let day_91 = get(client.clone(), created.name.clone()).await;
    assert_eq!(day_91.state(), pb::connector::State::Deauthorized);
    assert_eq!(
        day_91.deauthorization_reason(),
        pb::connector::DeauthorizationReason::Inactivity
    );
    assert_eq!(
        seconds(&day_91.deauthorize_time),
        seconds(&created.inactivity_deadline)
    );
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
        assert_eq!(
            metadata.get("deauthorization_reason").map(String::as_str),
            Some("INACTIVITY")
        );
    }
    let list = |filter: &str| {
        let client = client.clone();
        let request = pb::ListConnectorsRequest {
            parent: parent.clone(),
            filter: filter.to_owned(),
            ..Default::default()
        };
        async move {
            client
                .list_connectors(request)
                .await
                .unwrap()
                .connectors
                .len()
        }
    };
    assert_eq!(list("state = DEAUTHORIZED").await, 1);
    assert_eq!(list("state = AUTHORIZED").await, 0);

    // The sweeper makes it durable and erases the key.
    sweep(&mut server, &created.name).await;
    assert_eq!(
        server
            .query_i64("SELECT COUNT(*) FROM connector_secret")
            .await,
        0
    );
    let swept = get(server.client().await, created.name.clone()).await;
    assert_eq!(swept.state(), pb::connector::State::Deauthorized);
    assert_eq!(
        swept.deauthorization_reason(),
        pb::connector::DeauthorizationReason::Inactivity
    );
    assert_eq!(
        seconds(&swept.deauthorize_time),
        seconds(&created.inactivity_deadline)
    );
}

async fn a_transfer_moves_the_deadline(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let created = client
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(1),
            "busy",
        ))
        .await
        .expect("created");
    let start = server.clock.now();
    server.clock.advance(Duration::days(60));
    let moved = client
        .record_transfer(pb::RecordTransferRequest {
            name: created.name.clone(),
            bytes_transferred: 1 << 20,
        })
        .await
        .expect("transfer");
    assert_eq!(
        seconds(&moved.inactivity_deadline),
        (start + Duration::days(150)).timestamp()
    );
    // Zero bytes is not activity.
    server.clock.advance(Duration::days(30));
    let idle = client
        .record_transfer(pb::RecordTransferRequest {
            name: created.name.clone(),
            bytes_transferred: 0,
        })
        .await
        .expect("zero bytes");
    assert_eq!(idle.inactivity_deadline, moved.inactivity_deadline);

    server.clock.set(start + Duration::days(149));
    let state = |client: connector_client::ConnectorClient| {
        let name = created.name.clone();
        async move {
            client
                .get_connector(pb::GetConnectorRequest { name })
                .await
                .unwrap()
                .state()
        }
    };
    assert_eq!(
        state(client.clone()).await,
        pb::connector::State::Authorized
    );
    server.clock.set(start + Duration::days(151));
    assert_eq!(
        state(client.clone()).await,
        pb::connector::State::Deauthorized
    );
}

async fn reauthorization_restarts_the_inactivity_clock(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let account = Azurite::shared().account(2);
    let created = client
        .create_connector(azure_create(&unique_parent(), account, "revived"))
        .await
        .expect("created");
    server.clock.advance(Duration::days(91));
    // Azurite checks the key with a signed request dated by our clock; it does not mind the
    // date, so the check works 91 days on.
    let revived = client
        .reauthorize_connector(pb::ReauthorizeConnectorRequest {
            name: created.name.clone(),
            credentials: Some(azure_credentials(&account.name, &account.key1)),
        })
        .await
        .expect("reauthorized");
    assert_eq!(revived.state(), pb::connector::State::Authorized);
    assert_eq!(revived.name, created.name);
    assert_eq!(revived.display_name, "revived");
    assert_eq!(
        seconds(&revived.inactivity_deadline),
        (server.clock.now() + Duration::days(90)).timestamp()
    );
    server.clock.advance(Duration::days(89));
    let later = client
        .get_connector(pb::GetConnectorRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap();
    assert_eq!(later.state(), pb::connector::State::Authorized);
}

async fn token_refreshes_are_not_activity(backend: Backend) {
    let world = OAuthWorld::start(backend).await;
    let client = world.server.client().await;
    let linked = world
        .link(
            &unique_parent(),
            "connectorTypes/onedrive-consumer",
            fixtures::ALICE_UPN,
        )
        .await
        .expect("linked");
    for _ in 0..3 {
        world.server.clock.advance(Duration::days(29));
        client
            .get_access_token(pb::GetAccessTokenRequest {
                name: linked.name.clone(),
            })
            .await
            .expect("refreshed");
    }
    assert!(world.emulator.counters().refresh >= 3);
    world.server.clock.advance(Duration::days(4));
    let shown = client
        .get_connector(pb::GetConnectorRequest {
            name: linked.name.clone(),
        })
        .await
        .unwrap();
    assert_eq!(shown.inactivity_deadline, linked.inactivity_deadline);
    assert_eq!(shown.state(), pb::connector::State::Deauthorized);
    assert_eq!(
        shown.deauthorization_reason(),
        pb::connector::DeauthorizationReason::Inactivity
    );
}

/// Two server processes sweep one PostgreSQL database holding 10,000 connectors past their
/// deadline: each is deauthorized exactly once, with exactly one event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sweepers_deauthorize_ten_thousand_connectors_exactly_once() {
    let mut first = TestServer::start(Backend::Postgres).await;
    let account = connector_tests::unique_account();
    first.seed_connectors(&account, 10_000, 1).await;
    // Each server sweeps at start-up: start a second one and restart the first, together.
    let second_options = first.sharing_options();
    let (second, ()) = tokio::join!(TestServer::start_with(second_options), first.restart());
    let deadline = Instant::now() + StdDuration::from_secs(120);
    loop {
        let swept = first
            .query_i64("SELECT COUNT(*) FROM connector WHERE state = 'DEAUTHORIZED'")
            .await;
        if swept == 10_000 {
            break;
        }
        assert!(Instant::now() < deadline, "only {swept} of 10000 swept");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let events = first
        .query_i64(
            "SELECT COUNT(*) FROM connector_event WHERE kind = 'DEAUTHORIZED' AND reason = 'INACTIVITY'",
        )
        .await;
    assert_eq!(events, 10_000, "one event per connector");
    let twice = first
        .query_i64(
            "SELECT COUNT(*) FROM (SELECT connector_id FROM connector_event \
             WHERE kind = 'DEAUTHORIZED' GROUP BY connector_id HAVING COUNT(*) > 1) AS t",
        )
        .await;
    assert_eq!(twice, 0, "no connector deauthorized twice");
    drop(second);
}
