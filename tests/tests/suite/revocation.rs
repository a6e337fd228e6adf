//! Durable revocation: deleting or deauthorizing a connector queues the revocation of its token
//! in an outbox, in the same transaction; the outbox worker retries it with backoff while the
//! provider is down, across restarts and processes, until a final outcome is recorded as an
//! event and the sealed token is erased.

use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use connector_client::pb;
use connector_server::clock::Clock as _;
use connector_tests::{
    Backend, ConfigHook, OAuthWorld, TestServer, on_both_backends, server_events, unique_parent,
};
use identity_emulator::{Failure, fixtures};
use pb::connector_event::{Kind, RevocationOutcome as Outcome};

on_both_backends!(
    an_outage_and_a_restart_end_in_revoked,
    the_last_failed_try_ends_in_failed,
    an_inactivity_deauthorization_revokes_the_grant,
    a_revoked_grant_queues_a_revocation_too,
    a_try_cut_off_by_a_shutdown_is_taken_over_when_its_lease_ends,
    a_refused_delete_queues_nothing,
    a_provider_that_does_not_revoke_refresh_tokens_ends_in_not_supported,
    a_retry_after_longer_than_the_longest_backoff_is_respected,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_revoke_each_token_once() {
    two_processes_revoke_each_token_once_on(Backend::Postgres).await;
}

/// The outbox row of the only queued revocation: (tries so far, next try in µs, last error).
async fn queued(server: &TestServer) -> Option<(i64, i64, String)> {
    if server.query_i64("SELECT COUNT(*) FROM revocation").await == 0 {
        return None;
    }
    Some((
        server
            .query_i64("SELECT CAST(attempts AS BIGINT) FROM revocation")
            .await,
        server
            .query_i64("SELECT next_attempt_time FROM revocation")
            .await,
        server
            .query_string("SELECT COALESCE(last_error, '') FROM revocation")
            .await,
    ))
}

/// How long a claimed try is leased: twice the provider timeout plus 60 s. A row claimed for a
/// try is due exactly this long after the (frozen) clock's now.
fn lease() -> Duration {
    let timeout = connector_server::config::Config::new(".").provider_timeout;
    Duration::from_std(timeout * 2).unwrap() + Duration::seconds(60)
}

/// Waits until the queued revocation has failed `attempts` times and is waiting for its next
/// try; returns how long after the server's "now" that try is due.
async fn wait_for_failed_try(server: &TestServer, attempts: i64) -> Duration {
    let deadline = Instant::now() + StdDuration::from_secs(15);
    loop {
        if let Some((tries, next, error)) = queued(server).await {
            let wait = next - server.clock.now().timestamp_micros();
            // Recorded as a retry: an error, and no longer the lease of a claimed try.
            if tries == attempts && !error.is_empty() && wait != lease().num_microseconds().unwrap()
            {
                return Duration::microseconds(wait);
            }
        }
        assert!(
            Instant::now() < deadline,
            "try {attempts} was not recorded: {:?}",
            queued(server).await
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

/// Waits for the `REVOCATION_FINISHED` events of `parent`, `count` of them.
async fn wait_for_outcomes(
    server: &TestServer,
    parent: &str,
    count: usize,
) -> Vec<pb::ConnectorEvent> {
    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        let finished: Vec<_> = server_events(server, parent)
            .await
            .into_iter()
            .filter(|event| event.kind() == Kind::RevocationFinished)
            .collect();
        if finished.len() >= count {
            return finished;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} revocation outcomes recorded",
            finished.len()
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

/// Links Alice's personal OneDrive under `parent`.
async fn link_alice(world: &OAuthWorld, parent: &str) -> pb::Connector {
    world
        .link(
            parent,
            "connectorTypes/onedrive-consumer",
            fixtures::ALICE_UPN,
        )
        .await
        .expect("linked")
}

/// Deletes a connector (its revocation is queued).
async fn delete(world: &OAuthWorld, name: String) {
    world
        .server
        .client()
        .await
        .delete_connector(pb::DeleteConnectorRequest {
            name,
            etag: String::new(),
        })
        .await
        .expect("deleted");
}

/// Live grants of a user at the emulator (revoking them to count them: call last).
fn live_grants(world: &OAuthWorld, user: &str) -> usize {
    world
        .emulator
        .revoke_user_grant(user, fixtures::CLIENT_ID)
        .expect("known user")
}

/// Issue 8, finding 12: a provider asking for ten minutes is not retried after the configured
/// longest backoff of one minute: "never sooner than Retry-After" holds.
async fn a_retry_after_longer_than_the_longest_backoff_is_respected(backend: Backend) {
    let world = OAuthWorld::start_customized(backend, true, |options| {
        options.configure = Some(ConfigHook::new(|config| {
            config.revocation_max_backoff = StdDuration::from_secs(60);
        }));
    })
    .await;
    let parent = unique_parent();
    let linked = link_alice(&world, &parent).await;
    world
        .emulator
        .fail_next_revoke_calls(1, Failure::Status429 { retry_after: 600 });
    delete(&world, linked.name).await;
    let wait = wait_for_failed_try(&world.server, 1).await;
    assert!(
        wait >= Duration::seconds(599) && wait <= Duration::seconds(600),
        "Retry-After respected beyond the longest backoff: {wait}"
    );
}

async fn an_outage_and_a_restart_end_in_revoked(backend: Backend) {
    let mut world = OAuthWorld::start_with_revocation(backend, true).await;
    let parent = unique_parent();
    let linked = link_alice(&world, &parent).await;
    // Down for the first two tries: rate limited (asking for two minutes), then a 500.
    world
        .emulator
        .fail_next_revoke_calls(1, Failure::Status429 { retry_after: 120 });
    world.emulator.fail_next_revoke_calls(1, Failure::Status500);

    let started = Instant::now();
    world
        .server
        .client()
        .await
        .delete_connector(pb::DeleteConnectorRequest {
            name: linked.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("a provider outage does not hold up a delete");
    assert!(started.elapsed() < StdDuration::from_secs(5));
    assert_eq!(
        world
            .server
            .query_i64("SELECT COUNT(*) FROM connector_secret")
            .await,
        0,
        "the connector's own secrets are gone at once"
    );

    // Try 1 at once (the delete wakes the worker): 429, retried no sooner than it asked.
    let wait = wait_for_failed_try(&world.server, 1).await;
    assert!(
        wait >= Duration::seconds(119) && wait <= Duration::seconds(120),
        "Retry-After respected: {wait}"
    );
    assert_eq!(world.emulator.counters().revoke, 1);
    assert!(
        !server_events(&world.server, &parent)
            .await
            .iter()
            .any(|event| event.kind() == Kind::RevocationFinished),
        "no outcome while tries remain"
    );

    // The outbox survives a restart.
    world.server.restart().await;
    assert_eq!(queued(&world.server).await.map(|row| row.0), Some(1));

    // Try 2 when due: a 500, so exponential backoff (30 s doubled once, with jitter).
    world.server.clock.advance(wait);
    let wait = wait_for_failed_try(&world.server, 2).await;
    assert!(
        wait >= Duration::seconds(30) && wait <= Duration::seconds(60),
        "second backoff {wait}"
    );
    assert_eq!(world.emulator.counters().revoke, 2);

    // Try 3: the provider is back.
    world.server.clock.advance(wait);
    let outcomes = wait_for_outcomes(&world.server, &parent, 1).await;
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].revocation_outcome(), Outcome::Revoked);
    assert_eq!(outcomes[0].connector, linked.name);
    assert_eq!(
        world
            .server
            .query_i64("SELECT COUNT(*) FROM revocation")
            .await,
        0,
        "the sealed token is erased once the outcome is final"
    );
    let counters = world.emulator.counters();
    assert_eq!((counters.revoke, counters.injected_failures), (3, 2));
    assert_eq!(
        live_grants(&world, fixtures::ALICE_UPN),
        0,
        "the grant is revoked at the provider"
    );
}

async fn the_last_failed_try_ends_in_failed(backend: Backend) {
    let world = OAuthWorld::start_customized(backend, true, |options| {
        options.revocation_max_attempts = Some(3);
    })
    .await;
    let parent = unique_parent();
    let linked = link_alice(&world, &parent).await;
    world
        .emulator
        .fail_next_revoke_calls(10, Failure::Status500);
    delete(&world, linked.name).await;
    for attempt in 1..=2 {
        let wait = wait_for_failed_try(&world.server, attempt).await;
        world.server.clock.advance(wait);
    }
    let outcomes = wait_for_outcomes(&world.server, &parent, 1).await;
    assert_eq!(outcomes[0].revocation_outcome(), Outcome::Failed);
    assert_eq!(world.emulator.counters().revoke, 3, "exactly three tries");
    assert_eq!(
        world
            .server
            .query_i64("SELECT COUNT(*) FROM revocation")
            .await,
        0,
        "the sealed token is erased after the last try too"
    );
    assert_eq!(
        live_grants(&world, fixtures::ALICE_UPN),
        1,
        "the grant was never revoked"
    );
}

async fn an_inactivity_deauthorization_revokes_the_grant(backend: Backend) {
    let mut world = OAuthWorld::start_with_revocation(backend, true).await;
    let parent = unique_parent();
    let linked = link_alice(&world, &parent).await;
    world.server.clock.advance(Duration::days(91));
    // The sweeper runs at start-up.
    world.server.restart().await;
    let outcomes = wait_for_outcomes(&world.server, &parent, 1).await;
    assert_eq!(outcomes[0].revocation_outcome(), Outcome::Revoked);
    let log = server_events(&world.server, &parent).await;
    let kinds: Vec<Kind> = log.iter().map(|event| event.kind()).collect();
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
        pb::connector::DeauthorizationReason::Inactivity
    );
    assert!(log.iter().all(|event| event.connector == linked.name));
    assert_eq!(live_grants(&world, fixtures::ALICE_UPN), 0);
}

/// Two processes on one PostgreSQL database, both polling the outbox: every token is revoked
/// once (no try claimed by both), and each revocation has exactly one outcome.
async fn two_processes_revoke_each_token_once_on(backend: Backend) {
    const CONNECTORS: usize = 24;
    // Both workers poll all the time, so their claims overlap.
    let world = OAuthWorld::start_customized(backend, true, |options| {
        options.revocation_poll_interval = Some(StdDuration::from_millis(1));
    })
    .await;
    // A second process on the same database (kept running), reading the same clock: one move
    // makes the retries due in both at once.
    let mut options = world.server.sharing_options();
    options.clock = Some(world.server.clock.clone());
    let _second = TestServer::start_with(options).await;
    let mut names = Vec::new();
    let mut parents = Vec::new();
    for _ in 0..CONNECTORS {
        let parent = unique_parent();
        let linked = world
            .link(
                &parent,
                "connectorTypes/onedrive-consumer",
                fixtures::ALICE_UPN,
            )
            .await
            .expect("linked");
        names.push(linked.name);
        parents.push(parent);
    }
    // Every first try is rate limited, so all come due again together, later.
    world.emulator.reset_counters();
    world
        .emulator
        .fail_next_revoke_calls(CONNECTORS as u32, Failure::Status429 { retry_after: 3000 });
    let client = world.server.client().await;
    for name in &names {
        client
            .delete_connector(pb::DeleteConnectorRequest {
                name: name.clone(),
                etag: String::new(),
            })
            .await
            .expect("deleted");
    }
    let deadline = Instant::now() + StdDuration::from_secs(20);
    while world
        .server
        .query_i64("SELECT COUNT(*) FROM revocation WHERE attempts = 1 AND last_error IS NOT NULL")
        .await
        < CONNECTORS as i64
    {
        assert!(Instant::now() < deadline, "first tries not all recorded");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    assert_eq!(world.emulator.counters().revoke, CONNECTORS as u64);

    // The shared clock moves past the retry time: both workers compete for the rows.
    world.server.clock.advance(Duration::seconds(3601));
    let deadline = Instant::now() + StdDuration::from_secs(20);
    while world
        .server
        .query_i64("SELECT COUNT(*) FROM revocation")
        .await
        > 0
    {
        assert!(Instant::now() < deadline, "revocations not finished");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    assert_eq!(
        world.emulator.counters().revoke,
        2 * CONNECTORS as u64,
        "each token's second try reached the provider once"
    );
    for parent in &parents {
        let outcomes = wait_for_outcomes(&world.server, parent, 1).await;
        assert_eq!(outcomes.len(), 1, "one outcome per revocation");
        assert_eq!(outcomes[0].revocation_outcome(), Outcome::Revoked);
    }
}

/// `invalid_grant` on a refresh deauthorizes the connector; the refresh token it held is queued
/// and revoked like a deleted connector's (the provider accepts revoking a dead token).
async fn a_revoked_grant_queues_a_revocation_too(backend: Backend) {
    let world = OAuthWorld::start_with_revocation(backend, true).await;
    let parent = unique_parent();
    let linked = link_alice(&world, &parent).await;
    world
        .emulator
        .fail_next_token_calls(1, Failure::InvalidGrant { aadsts: 50173 });
    world.server.clock.advance(Duration::hours(2));
    world
        .server
        .client()
        .await
        .get_access_token(pb::GetAccessTokenRequest {
            name: linked.name.clone(),
        })
        .await
        .expect_err("the grant is gone");
    let outcomes = wait_for_outcomes(&world.server, &parent, 1).await;
    assert_eq!(outcomes[0].revocation_outcome(), Outcome::Revoked);
    let kinds: Vec<Kind> = server_events(&world.server, &parent)
        .await
        .iter()
        .map(|event| event.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            Kind::Authorized,
            Kind::Deauthorized,
            Kind::RevocationFinished
        ]
    );
    assert_eq!(world.emulator.counters().revoke, 1);
    // The emulator's grant was still live (the failure was injected): our revocation ended it.
    assert_eq!(live_grants(&world, fixtures::ALICE_UPN), 0);
}

/// A try in flight when the server stops stays claimed; after a restart it is taken over once
/// its lease has run out, and ends revoked.
async fn a_try_cut_off_by_a_shutdown_is_taken_over_when_its_lease_ends(backend: Backend) {
    let mut world = OAuthWorld::start_with_revocation(backend, true).await;
    let parent = unique_parent();
    let linked = link_alice(&world, &parent).await;
    // The first try hangs at the provider.
    world.emulator.fail_next_revoke_calls(1, Failure::Timeout);
    delete(&world, linked.name).await;
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while world.emulator.counters().revoke < 1 {
        assert!(Instant::now() < deadline, "the first try never started");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    world.server.restart().await;
    let (tries, next, _) = queued(&world.server).await.expect("still queued");
    assert_eq!(tries, 1);
    assert_eq!(
        next - world.server.clock.now().timestamp_micros(),
        lease().num_microseconds().unwrap(),
        "still leased to the try that was cut off"
    );
    world.server.clock.advance(lease());
    let outcomes = wait_for_outcomes(&world.server, &parent, 1).await;
    assert_eq!(outcomes[0].revocation_outcome(), Outcome::Revoked);
    assert_eq!(world.emulator.counters().revoke, 2);
    assert_eq!(live_grants(&world, fixtures::ALICE_UPN), 0);
}

/// A delete refused for a stale etag changes nothing: no revocation is queued, the tokens stay.
async fn a_refused_delete_queues_nothing(backend: Backend) {
    let world = OAuthWorld::start_with_revocation(backend, true).await;
    let parent = unique_parent();
    let linked = link_alice(&world, &parent).await;
    let error = world
        .server
        .client()
        .await
        .delete_connector(pb::DeleteConnectorRequest {
            name: linked.name.clone(),
            etag: "\"999\"".to_owned(),
        })
        .await
        .expect_err("stale etag");
    assert_eq!(error.code(), tonic::Code::Aborted, "{error:?}");
    assert_eq!(
        world
            .server
            .query_i64("SELECT COUNT(*) FROM revocation")
            .await,
        0
    );
    let id = linked.name.rsplit('/').next().unwrap();
    assert_eq!(
        world
            .server
            .query_i64(&format!(
                "SELECT COUNT(*) FROM connector_secret WHERE connector_id = '{id}'"
            ))
            .await,
        2,
        "refresh and access tokens kept"
    );
    assert_eq!(world.emulator.counters().revoke, 0);
}

/// An endpoint answering `unsupported_token_type` (RFC 7009 §2.2.1) will never revoke the token:
/// the outcome is `NOT_SUPPORTED` after that one try, not a retry, and the token is erased.
async fn a_provider_that_does_not_revoke_refresh_tokens_ends_in_not_supported(backend: Backend) {
    let world = OAuthWorld::start_with_revocation(backend, true).await;
    let parent = unique_parent();
    let linked = link_alice(&world, &parent).await;
    world
        .emulator
        .fail_next_revoke_calls(1, Failure::UnsupportedTokenType);
    delete(&world, linked.name).await;
    let outcomes = wait_for_outcomes(&world.server, &parent, 1).await;
    assert_eq!(outcomes[0].revocation_outcome(), Outcome::NotSupported);
    assert_eq!(world.emulator.counters().revoke, 1, "no retry");
    assert_eq!(
        world
            .server
            .query_i64("SELECT COUNT(*) FROM revocation")
            .await,
        0
    );
}
