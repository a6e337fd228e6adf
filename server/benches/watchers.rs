//! Benchmark of event watches (issue 8): `GetConnector`'s median latency on an idle server,
//! then with 2,000 `WatchConnectorEvents` streams open on the same account, on the embedded
//! default (SQLite). Before the shared event feed each watch polled the database every 250 ms,
//! and the median went from 1.2 ms to 348 ms; the target is within 1.5× of idle.
//!
//! The server runs in this process (release build) on loopback; the watches are spread over 20
//! connections of 100 streams (a connection carries at most 200). The run also reports one
//! more figure: the event's delivery time to all 2,000 watches.
//!
//! Run: `cargo bench -p connector-server --bench watchers`. `WATCHERS` changes the count.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use connector_client::{ConnectorClient, pb, pb::connector_service_client::ConnectorServiceClient};
use connector_server::{
    Config,
    access::{ApiKey, Capability, Scope},
};
use sea_orm::{ConnectionTrait as _, Database};
use tonic::transport::Channel;

const KEY: &str = "watchers-bench-key";
const ACCOUNT: &str = "bench";
const SAMPLES: usize = 3000;

#[tokio::main]
async fn main() {
    let watchers: usize = std::env::var("WATCHERS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(2000);
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = Config::new(data.path());
    config.api_keys = vec![ApiKey {
        id: "bench".to_owned(),
        sha256: ApiKey::hash(KEY),
        scope: Scope::AllAccounts,
        capabilities: Capability::ALL.into_iter().collect::<BTreeSet<_>>(),
    }];
    config.limits.max_watches_per_account = watchers;
    config.limits.max_watches_per_key = watchers;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(connector_server::run(listener, config, async {
        let _ = stopped.await;
    }));

    let client = loop {
        match ConnectorClient::connect(endpoint.clone(), KEY).await {
            Ok(client)
                if client
                    .list_connector_types(pb::ListConnectorTypesRequest {})
                    .await
                    .is_ok() =>
            {
                break client;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let name = seed(data.path()).await;

    let idle = median_get(&client, &name).await;
    println!("GetConnector p50, idle: {:.3} ms", millis(idle));

    // The watches: opened, then each waits for its first event.
    let started = Instant::now();
    let mut tasks = Vec::new();
    let (opened_sender, mut opened) = tokio::sync::mpsc::channel::<()>(watchers);
    for group in 0..watchers.div_ceil(100) {
        let channel = Channel::from_shared(endpoint.clone())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        for _ in 0..(watchers - group * 100).min(100) {
            let mut raw = ConnectorServiceClient::new(channel.clone());
            let opened_sender = opened_sender.clone();
            tasks.push(tokio::spawn(async move {
                let mut request = tonic::Request::new(pb::WatchConnectorEventsRequest {
                    parent: format!("accounts/{ACCOUNT}"),
                    after_cursor: 0,
                });
                request.metadata_mut().insert(
                    "authorization",
                    format!("Bearer {KEY}").parse().expect("ascii"),
                );
                let mut stream = raw
                    .watch_connector_events(request)
                    .await
                    .expect("watch opened")
                    .into_inner();
                opened_sender.send(()).await.expect("bench running");
                let event = stream.message().await.expect("event").expect("open");
                (event.cursor, Instant::now())
            }));
        }
    }
    for _ in 0..watchers {
        opened.recv().await.expect("all watches open");
    }
    println!(
        "{watchers} watches open after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Let a few poll intervals pass with every watch open, then measure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let watched = median_get(&client, &name).await;
    println!(
        "GetConnector p50, {watchers} watches open: {:.3} ms ({:.2}× idle)",
        millis(watched),
        watched.as_secs_f64() / idle.as_secs_f64()
    );

    // One event for every watch.
    let sent = Instant::now();
    client
        .delete_account(pb::DeleteAccountRequest {
            name: format!("accounts/{ACCOUNT}"),
        })
        .await
        .expect("delete account");
    let mut last = Duration::ZERO;
    for task in tasks {
        let (_, received) = task.await.expect("watch");
        last = last.max(received.duration_since(sent));
    }
    println!(
        "one event reached all {watchers} watches within {:.0} ms of the call",
        millis(last)
    );
    let _ = stop.send(());
    let _ = server.await;
}

/// The median of `SAMPLES` sequential `GetConnector` calls (after 200 to warm up).
async fn median_get(client: &ConnectorClient, name: &str) -> Duration {
    let request = || pb::GetConnectorRequest {
        name: name.to_owned(),
    };
    for _ in 0..200 {
        client.get_connector(request()).await.expect("get");
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let started = Instant::now();
        client.get_connector(request()).await.expect("get");
        samples.push(started.elapsed());
    }
    samples.sort();
    samples[SAMPLES / 2]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// One Azure connector row in the account, written straight to the database; its name.
async fn seed(data: &std::path::Path) -> String {
    let db = Database::connect(connector_server::persistence::Store::sqlite_url(data).as_str())
        .await
        .expect("connect");
    let id = "0197a7d2-0000-7000-8000-000000000001";
    db.execute_unprepared(&format!(
        "INSERT INTO connector (id, account, connector_type, display_name, state, \
         deauthorization_reason, deauthorize_time, external_account_id, \
         external_account_label, labels, create_time, update_time, authorize_time, \
         last_transfer_time, revision, inactivity_deadline) VALUES ('{id}', '{ACCOUNT}', \
         'azure-blob-storage', 'Bench', 'AUTHORIZED', NULL, NULL, 'benchstore', 'benchstore', \
         '{{}}', 1, 1, 1, NULL, 1, 9000000000000000)"
    ))
    .await
    .expect("seed a connector");
    db.close().await.ok();
    format!("accounts/{ACCOUNT}/connectors/{id}")
}
