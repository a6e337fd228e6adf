//! Bounds (issue 8), through the real binary: the HTTP/2 stream limit announced on every
//! connection, connections aged out, event watches capped per key and per account and ended
//! after their maximum duration, many watches of one account fed by one shared source, and
//! load shedding that answers RESOURCE_EXHAUSTED with RetryInfo.

use std::{
    future::Future,
    path::Path,
    pin::Pin,
    task::Poll,
    time::{Duration, Instant},
};

use connector_client::{ConnectorClient, pb, pb::connector_service_client::ConnectorServiceClient};
use connector_server::access::ApiKey;
use connector_tests::{
    ServerBinary, assert_error, azure_create_with_key, free_port, hanging_endpoint,
    random_master_key, unique_parent, write_file,
};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt as _;

const KEY: &str = "bounds-test-key";

/// The binary with one all-capabilities key and `extra` configuration lines.
async fn start(workdir: &Path, extra: &str, env: &[(&str, String)]) -> (ServerBinary, String) {
    let file = workdir.join("connector.toml");
    write_file(
        &file,
        &format!(
            "{extra}\n[[api_keys]]\nid = \"bounds\"\nsha256 = \"{}\"\n",
            hex::encode(ApiKey::hash(KEY))
        ),
    );
    let port = free_port();
    let mut all_env = vec![
        ("CONNECTOR_CONFIG", file.display().to_string()),
        ("CONNECTOR_MASTER_KEY", random_master_key()),
    ];
    all_env.extend(env.iter().cloned());
    let binary = ServerBinary::start(workdir, port, &all_env).ready().await;
    (binary, format!("http://127.0.0.1:{port}"))
}

/// A raw HTTP/2 connection to the binary: the SETTINGS it announces, and whether it closes.
/// (The request handle is returned too: the connection closes once it is dropped.)
async fn h2_connection(
    endpoint: &str,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    h2::client::Connection<tokio::net::TcpStream, bytes::Bytes>,
) {
    let address = endpoint.trim_start_matches("http://");
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    h2::client::handshake(tcp).await.unwrap()
}

/// Drives the connection until `done` holds for it (or it ends); `None` after `limit`.
async fn drive_until(
    connection: &mut h2::client::Connection<tokio::net::TcpStream, bytes::Bytes>,
    limit: Duration,
    done: impl Fn(&h2::client::Connection<tokio::net::TcpStream, bytes::Bytes>) -> bool,
) -> Option<bool> {
    let drive = std::future::poll_fn(|cx| {
        let ended = Pin::new(&mut *connection).poll(cx);
        if ended.is_ready() {
            return Poll::Ready(true);
        }
        if done(connection) {
            return Poll::Ready(false);
        }
        Poll::Pending
    });
    tokio::time::timeout(limit, drive).await.ok()
}

fn raw_client(channel: Channel) -> ConnectorServiceClient<Channel> {
    ConnectorServiceClient::new(channel)
}

fn with_key<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {KEY}").parse().expect("ascii"),
    );
    request
}

/// Opens a watch on `parent` and returns its stream, or the status it was refused with.
async fn open_watch(
    client: &mut ConnectorServiceClient<Channel>,
    parent: &str,
) -> Result<tonic::Streaming<pb::ConnectorEvent>, Status> {
    client
        .watch_connector_events(with_key(pb::WatchConnectorEventsRequest {
            parent: parent.to_owned(),
            after_cursor: 0,
        }))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_is_told_the_stream_limit_and_is_aged_out() {
    // The defaults announce a limit of 200 streams.
    let workdir = tempfile::tempdir().unwrap();
    let (binary, endpoint) = start(workdir.path(), "", &[]).await;
    let (_requests, mut connection) = h2_connection(&endpoint).await;
    let announced = drive_until(&mut connection, Duration::from_secs(5), |connection| {
        connection.max_concurrent_send_streams() != usize::MAX
    })
    .await;
    assert_eq!(announced, Some(false), "no SETTINGS within 5 s");
    assert_eq!(connection.max_concurrent_send_streams(), 200);
    drop((_requests, connection));
    binary.signal("-TERM");

    // A configured limit, and a connection older than max_connection_age is closed.
    let workdir = tempfile::tempdir().unwrap();
    let (binary, endpoint) = start(
        workdir.path(),
        "max_concurrent_streams = 7\nmax_connection_age_secs = 1\nmax_connection_age_grace_secs = 1",
        &[],
    )
    .await;
    let (_requests, mut connection) = h2_connection(&endpoint).await;
    let opened = Instant::now();
    drive_until(&mut connection, Duration::from_secs(5), |connection| {
        connection.max_concurrent_send_streams() != usize::MAX
    })
    .await;
    assert_eq!(connection.max_concurrent_send_streams(), 7);
    let ended = drive_until(&mut connection, Duration::from_secs(10), |_| false).await;
    assert_eq!(ended, Some(true), "the aged connection was not closed");
    let age = opened.elapsed();
    assert!(
        age >= Duration::from_millis(900),
        "closed too early: {age:?}"
    );
    println!("a connection with max_connection_age_secs = 1 was closed after {age:?}");
    binary.signal("-TERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_closes_does_not_hold_up_shutdown_beyond_the_grace() {
    let workdir = tempfile::tempdir().unwrap();
    let (binary, endpoint) = start(workdir.path(), "shutdown_grace_secs = 2", &[]).await;
    // Handshaken, then never driven again: it will not answer the GOAWAY.
    let (_requests, mut connection) = h2_connection(&endpoint).await;
    drive_until(&mut connection, Duration::from_secs(5), |connection| {
        connection.max_concurrent_send_streams() != usize::MAX
    })
    .await;
    let signalled = Instant::now();
    let (status, _) = tokio::task::spawn_blocking(move || binary.signal("-TERM"))
        .await
        .unwrap();
    let took = signalled.elapsed();
    assert!(status.success());
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
    drop(connection);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_are_capped_per_account_and_per_key() {
    let workdir = tempfile::tempdir().unwrap();
    let (binary, endpoint) = start(
        workdir.path(),
        "max_watches_per_account = 2\nmax_watches_per_key = 3",
        &[],
    )
    .await;
    let channel = Channel::from_shared(endpoint)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = raw_client(channel);
    let (first, second, third) = (unique_parent(), unique_parent(), unique_parent());

    let mut open = vec![
        open_watch(&mut client, &first).await.unwrap(),
        open_watch(&mut client, &first).await.unwrap(),
    ];
    let refused = open_watch(&mut client, &first).await.unwrap_err();
    let metadata = assert_error(&refused, Code::ResourceExhausted, "TOO_MANY_WATCHES");
    assert_eq!(metadata["scope"], "account");
    assert_eq!(metadata["limit"], "2");
    assert!(refused.get_details_retry_info().is_some(), "no RetryInfo");

    open.push(open_watch(&mut client, &second).await.unwrap());
    let refused = open_watch(&mut client, &third).await.unwrap_err();
    let metadata = assert_error(&refused, Code::ResourceExhausted, "TOO_MANY_WATCHES");
    assert_eq!(metadata["scope"], "key");
    assert_eq!(metadata["limit"], "3");

    // A closed watch frees its slot (once the server sees the stream go).
    drop(open.remove(0));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match open_watch(&mut client, &first).await {
            Ok(watch) => {
                open.push(watch);
                break;
            }
            Err(status) => {
                assert_error(&status, Code::ResourceExhausted, "TOO_MANY_WATCHES");
                assert!(Instant::now() < deadline, "the slot was never freed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    binary.signal("-TERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ends_after_its_maximum_duration_and_the_client_resumes() {
    let workdir = tempfile::tempdir().unwrap();
    let (binary, endpoint) = start(
        workdir.path(),
        "max_watch_secs = 1\nmax_watches_per_key = 1",
        &[],
    )
    .await;
    let channel = Channel::from_shared(endpoint)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = raw_client(channel);
    let parent = unique_parent();
    let mut watch = open_watch(&mut client, &parent).await.unwrap();
    let opened = Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the watch was not ended");
    assert!(matches!(end, Ok(None)), "ended with {end:?}");
    let lasted = opened.elapsed();
    assert!(
        lasted >= Duration::from_millis(900),
        "ended early: {lasted:?}"
    );

    // Its slot is free again: with a limit of one watch per key, the client can resume.
    let resumed = open_watch(&mut client, &parent).await;
    assert!(resumed.is_ok(), "could not resume: {resumed:?}");
    binary.signal("-TERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_watches_of_one_account_each_get_every_event_once_and_no_other_accounts() {
    let workdir = tempfile::tempdir().unwrap();
    let (binary, endpoint) = start(
        workdir.path(),
        "max_watches_per_account = 300\nmax_watches_per_key = 400",
        &[],
    )
    .await;
    let channel = Channel::from_shared(endpoint.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = raw_client(channel);
    let (busy, quiet) = (unique_parent(), unique_parent());
    let mut watches = Vec::new();
    // 150 (plus one) stay under the 200 streams one connection may carry.
    for _ in 0..150 {
        watches.push(open_watch(&mut client, &busy).await.unwrap());
    }
    let mut quiet_watch = open_watch(&mut client, &quiet).await.unwrap();
    let api = ConnectorClient::connect(endpoint, KEY).await.unwrap();
    // The quiet account's event comes first: a watch of the busy account that saw it would
    // start with its cursor.
    for parent in [&quiet, &busy, &busy] {
        api.delete_account(pb::DeleteAccountRequest {
            name: parent.clone(),
        })
        .await
        .unwrap();
    }
    let quiet_event = tokio::time::timeout(Duration::from_secs(10), quiet_watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    for watch in &mut watches {
        let mut cursors = Vec::new();
        for _ in 0..2 {
            let event = tokio::time::timeout(Duration::from_secs(10), watch.message())
                .await
                .expect("an event within 10 s")
                .unwrap()
                .unwrap();
            assert_eq!(event.kind(), pb::connector_event::Kind::AccountDeleted);
            cursors.push(event.cursor);
        }
        assert!(
            quiet_event.cursor < cursors[0] && cursors[0] < cursors[1],
            "the busy account's two events, in order, each once (quiet: {}): {cursors:?}",
            quiet_event.cursor
        );
    }
    binary.signal("-TERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_the_in_flight_limit_are_shed_with_retry_info() {
    let (hanging, _server) = hanging_endpoint().await;
    let workdir = tempfile::tempdir().unwrap();
    let (binary, endpoint) = start(
        workdir.path(),
        "max_in_flight_requests = 1\nprovider_timeout_secs = 20",
        &[("CONNECTOR_AZURE_BLOB_ENDPOINT", hanging)],
    )
    .await;
    let api = ConnectorClient::connect(endpoint, KEY).await.unwrap();
    // Checking the key at a storage account that never answers holds the only slot.
    let parent = unique_parent();
    let hold = || {
        let api = api.clone();
        let parent = parent.clone();
        tokio::spawn(async move {
            let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 64]);
            api.create_connector(azure_create_with_key(
                &parent,
                "stuckaccount",
                &key,
                "Stuck",
            ))
            .await
        })
    };
    let mut held = hold();
    let deadline = Instant::now() + Duration::from_secs(10);
    let shed = loop {
        let result = api
            .list_connectors(pb::ListConnectorsRequest {
                parent: parent.clone(),
                ..Default::default()
            })
            .await;
        if let Err(status) = result {
            break status;
        }
        if held.is_finished() {
            // It arrived while a list held the slot, and was shed itself: hold it again.
            let refused = held.await.unwrap().expect_err("a create that never hangs");
            assert_error(&refused, Code::ResourceExhausted, "OVERLOADED");
            held = hold();
        }
        assert!(Instant::now() < deadline, "nothing was shed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let metadata = assert_error(&shed, Code::ResourceExhausted, "OVERLOADED");
    assert_eq!(metadata["max_in_flight_requests"], "1");
    assert!(shed.get_details_retry_info().is_some(), "no RetryInfo");
    held.abort();
    binary.signal("-TERM");
}
