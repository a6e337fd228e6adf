//! Calls through the client that several test files make: token storms and event reads.

use std::time::Duration;

use connector_client::pb;

use crate::server::TestServer;

/// 200 concurrent GetAccessToken calls for one connector, spread over `clients`.
pub async fn token_storm(
    clients: &[connector_client::ConnectorClient],
    name: &str,
) -> Vec<Result<pb::GetAccessTokenResponse, tonic::Status>> {
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let client = clients[i % clients.len()].clone();
            let name = name.to_owned();
            tokio::spawn(async move {
                client
                    .get_access_token(pb::GetAccessTokenRequest { name })
                    .await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(calls.len());
    for call in calls {
        results.push(call.await.expect("the call task"));
    }
    results
}

/// The next event of a watch, within 30 s.
pub async fn next_event(watch: &mut connector_client::EventWatch) -> pb::ConnectorEvent {
    tokio::time::timeout(Duration::from_secs(30), watch.next())
        .await
        .expect("an event within 30 s")
        .expect("the watch goes on")
        .expect("no permanent error")
}

/// The whole event log of an account (up to 1000 events), read through the API.
pub async fn server_events(server: &TestServer, parent: &str) -> Vec<pb::ConnectorEvent> {
    server
        .client()
        .await
        .list_connector_events(pb::ListConnectorEventsRequest {
            parent: parent.to_owned(),
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .expect("events")
        .events
}
