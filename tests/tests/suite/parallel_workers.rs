//! Many workers on one connector (issue 9): transfer reports and label changes are single
//! conditional statements, so concurrent callers never see ABORTED, `last_transfer_time` ends
//! at the latest report and never moves back, and an etag still guards what it guards.

use chrono::Duration;
use connector_client::pb;
use connector_server::clock::Clock as _;
use connector_tests::{
    Azurite, Backend, TestServer, assert_error, azure_create, on_both_backends, unique_parent,
};
use tonic::Code;

on_both_backends!(
    concurrent_transfer_reports_on_one_connector_never_fail,
    this_process_never_reads_its_own_change_stale,
);

const WORKERS: usize = 16;
const REPORTS: usize = 50;

async fn concurrent_transfer_reports_on_one_connector_never_fail(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let created = client
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(15),
            "hot row",
        ))
        .await
        .expect("created");

    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let client = client.clone();
        let clock = server.clock.clone();
        let name = created.name.clone();
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for _ in 0..REPORTS {
                // Time moves between reports, so reports carry different times and arrive out
                // of order with respect to them.
                clock.advance(Duration::milliseconds(1));
                if let Err(status) = client
                    .record_transfer(pb::RecordTransferRequest {
                        name: name.clone(),
                        bytes_transferred: 1 << 20,
                    })
                    .await
                {
                    failures.push(status);
                }
            }
            failures
        }));
    }
    // An orchestrator relabels meanwhile, without an etag: it must not fail either.
    let relabels = {
        let client = client.clone();
        let name = created.name.clone();
        tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0..20 {
                if let Err(status) = client
                    .update_connector(pb::UpdateConnectorRequest {
                        connector: Some(pb::Connector {
                            name: name.clone(),
                            labels: [("round".to_owned(), i.to_string())].into(),
                            ..Default::default()
                        }),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["labels".to_owned()],
                        }),
                    })
                    .await
                {
                    failures.push(status);
                }
            }
            failures
        })
    };
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await.unwrap());
    }
    let relabel_failures = relabels.await.unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} reports failed, e.g. {:?}",
        failures.len(),
        WORKERS * REPORTS,
        failures.first()
    );
    assert!(relabel_failures.is_empty(), "{relabel_failures:?}");

    // The last report carried the clock's final time.
    let latest = server.clock.now();
    let shown = client
        .get_connector(pb::GetConnectorRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap();
    let last = shown.last_transfer_time.expect("set");
    assert_eq!(
        (last.seconds, last.nanos),
        (latest.timestamp(), latest.timestamp_subsec_nanos() as i32),
        "last_transfer_time is the latest report's"
    );
    assert_eq!(shown.labels["round"], "19");

    // An etag still guards: a stale one is refused, the current one accepted.
    let relabel = |etag: &str| pb::UpdateConnectorRequest {
        connector: Some(pb::Connector {
            name: created.name.clone(),
            etag: etag.to_owned(),
            labels: [("pinned".to_owned(), "yes".to_owned())].into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["labels".to_owned()],
        }),
    };
    let stale = client
        .update_connector(relabel(&created.etag))
        .await
        .unwrap_err();
    assert_error(&stale, Code::Aborted, "ETAG_MISMATCH");
    client
        .update_connector(relabel(&shown.etag))
        .await
        .expect("the current etag");
}

/// Nagle off (issue 9): a `ListConnectors` page of 50 (an answer written in more than one
/// piece) at one call at a time is not held back waiting for the client's delayed ACK (about
/// 40 ms per call when Nagle is on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_frame_answer_at_one_call_at_a_time_is_not_delayed() {
    let server = TestServer::start(Backend::Sqlite).await;
    let parent = unique_parent();
    server
        .seed_connectors(parent.trim_start_matches("accounts/"), 60, i64::MAX / 2)
        .await;
    let client = server.client().await;
    let list = || {
        client.list_connectors(pb::ListConnectorsRequest {
            parent: parent.clone(),
            page_size: 50,
            ..Default::default()
        })
    };
    assert_eq!(list().await.unwrap().connectors.len(), 50);
    let mut took = Vec::new();
    for _ in 0..21 {
        let started = std::time::Instant::now();
        list().await.unwrap();
        took.push(started.elapsed());
    }
    took.sort();
    let (fastest, median) = (took[0], took[took.len() / 2]);
    println!(
        "ListConnectors page of 50, c=1 (debug build): fastest {fastest:?}, median {median:?}"
    );
    // With Nagle on, every such call waits for the client's delayed ACK, whose floor on Linux
    // is 40 ms (44 ms measured), so even the fastest of 21 calls is that slow. Without it a
    // release build answers in about 0.5 ms and a debug build in 2-7 ms on a loaded 2-core CI
    // machine; the bound sits at half the delayed-ACK floor so only the delay itself fails it.
    // The release figure is the benchmark harness's job (README "Benchmarks").
    assert!(
        fastest < std::time::Duration::from_millis(20),
        "a page of 50 took {fastest:?} at best, {median:?} typically: an answer in pieces waits for a delayed ACK"
    );
}

fn relabel(name: &str, value: &str) -> pb::UpdateConnectorRequest {
    pb::UpdateConnectorRequest {
        connector: Some(pb::Connector {
            name: name.to_owned(),
            labels: [("stage".to_owned(), value.to_owned())].into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["labels".to_owned()],
        }),
    }
}

/// The row cache behind `GetConnector` and `GetAccessToken` (issue 9): a read right after this
/// process's own change (labels, a transfer report, a delete) sees it, with the clock standing
/// still so the cache's time to live cannot be what makes it fresh.
async fn this_process_never_reads_its_own_change_stale(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client().await;
    let created = client
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(14),
            "cached",
        ))
        .await
        .expect("created");
    let get = || {
        client.get_connector(pb::GetConnectorRequest {
            name: created.name.clone(),
        })
    };
    let token = || {
        client.get_access_token(pb::GetAccessTokenRequest {
            name: created.name.clone(),
        })
    };
    assert!(get().await.unwrap().labels.is_empty());
    token().await.expect("a SAS");

    client
        .update_connector(relabel(&created.name, "copy"))
        .await
        .unwrap();
    assert_eq!(get().await.unwrap().labels["stage"], "copy");

    client
        .record_transfer(pb::RecordTransferRequest {
            name: created.name.clone(),
            bytes_transferred: 1,
        })
        .await
        .unwrap();
    assert!(get().await.unwrap().last_transfer_time.is_some());

    client
        .delete_connector(pb::DeleteConnectorRequest {
            name: created.name.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(get().await.unwrap_err().code(), Code::NotFound);
    assert_eq!(token().await.unwrap_err().code(), Code::NotFound);
}

/// Another process's change is seen within `row_cache_ttl_ms` (1 s by default, the bound the
/// README states): two servers on one PostgreSQL database, sharing one clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_change_is_seen_within_the_row_cache_bound() {
    let first = TestServer::start(Backend::Postgres).await;
    let mut options = first.sharing_options();
    options.clock = Some(first.clock.clone());
    let second = TestServer::start_with(options).await;
    let (one, two) = (first.client().await, second.client().await);
    let created = one
        .create_connector(azure_create(
            &unique_parent(),
            Azurite::shared().account(13),
            "shared",
        ))
        .await
        .expect("created");
    let get = |client: &connector_client::ConnectorClient| {
        let (client, name) = (client.clone(), created.name.clone());
        async move { client.get_connector(pb::GetConnectorRequest { name }).await }
    };
    let token = |client: &connector_client::ConnectorClient| {
        let (client, name) = (client.clone(), created.name.clone());
        async move {
            client
                .get_access_token(pb::GetAccessTokenRequest { name })
                .await
        }
    };
    assert!(get(&two).await.unwrap().labels.is_empty());
    token(&two).await.expect("a SAS from the second process");

    one.update_connector(relabel(&created.name, "copy"))
        .await
        .unwrap();
    first.clock.advance(Duration::milliseconds(1000));
    assert_eq!(
        get(&two).await.unwrap().labels["stage"],
        "copy",
        "seen by the other process once the bound has passed"
    );

    one.delete_connector(pb::DeleteConnectorRequest {
        name: created.name.clone(),
        etag: String::new(),
    })
    .await
    .unwrap();
    first.clock.advance(Duration::milliseconds(1000));
    assert_eq!(get(&two).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(token(&two).await.unwrap_err().code(), Code::NotFound);
}
