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

on_both_backends!(concurrent_transfer_reports_on_one_connector_never_fail);

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
    // With Nagle on every such call waits for the delayed ACK, so even the fastest is slow;
    // the median gets more room, as other tests share the machine.
    assert!(
        fastest < std::time::Duration::from_millis(5)
            && median < std::time::Duration::from_millis(20),
        "a page of 50 took {fastest:?} at best, {median:?} typically: an answer in pieces waits for a delayed ACK"
    );
}
