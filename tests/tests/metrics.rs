//! Operating the server (issue 12): the `connector-server` binary serves Prometheus metrics on
//! their own address, Debian's `prometheus` scrapes them and answers a rate query over the
//! calls just made; every call is logged once as JSON with its method, code, latency, API key
//! id, account and connector, and no log line holds a secret.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use connector_client::{ConnectorClient, pb};
use connector_tests::{
    Azurite, ServerBinary, azure_create, free_port, tool_env, unique_parent, write_file,
};

/// A Prometheus server of its own, on loopback, scraping `target` every second.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        write_file(
            &config,
            &format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: connector\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        );
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(tool_env("PROMETHEUS_BIN"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            port,
            _dir: dir,
        }
    }

    /// The vector an instant query returns (empty while Prometheus is starting).
    async fn query(&self, query: &str) -> Vec<serde_json::Value> {
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.port);
        let Ok(response) = reqwest::Client::new()
            .post(url)
            .form(&[("query", query)])
            .send()
            .await
        else {
            return Vec::new();
        };
        let Ok(body) = response.json::<serde_json::Value>().await else {
            return Vec::new();
        };
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every log line the binary wrote in `workdir` so far.
fn logs(workdir: &Path) -> String {
    let mut logs = String::new();
    for entry in std::fs::read_dir(workdir).unwrap().flatten() {
        if entry.file_name().to_string_lossy().ends_with(".log") {
            logs += &std::fs::read_to_string(entry.path()).unwrap_or_default();
        }
    }
    logs
}

/// The value of the sample `series` (name and labels exactly as exposed).
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_calls_and_the_logs_name_each_call_without_secrets() {
    let workdir = tempfile::tempdir().unwrap();
    let azurite = Azurite::shared();
    let storage = azurite.account(9);
    let (port, metrics_port) = (free_port(), free_port());
    let binary = ServerBinary::start(
        workdir.path(),
        port,
        &[
            ("CONNECTOR_AZURE_BLOB_ENDPOINT", azurite.endpoint_template()),
            (
                "CONNECTOR_METRICS_LISTEN",
                format!("127.0.0.1:{metrics_port}"),
            ),
            ("CONNECTOR_LOG_FORMAT", "json".to_owned()),
        ],
    )
    .ready()
    .await;
    let api_key = std::fs::read_to_string(
        workdir
            .path()
            .join("data")
            .join(connector_server::ADMIN_KEY_FILE),
    )
    .unwrap()
    .trim()
    .to_owned();
    let client = ConnectorClient::connect(format!("http://127.0.0.1:{port}"), &api_key)
        .await
        .unwrap();

    // Calls of several kinds: a create (a provider call), a read, a miss, a refused key, and
    // a watch held open.
    let parent = unique_parent();
    let created = client
        .create_connector(azure_create(&parent, storage, "metrics"))
        .await
        .expect("create");
    client
        .get_connector(pb::GetConnectorRequest {
            name: created.name.clone(),
        })
        .await
        .expect("get");
    let missing = client
        .get_connector(pb::GetConnectorRequest {
            name: format!(
                "{}/connectors/{}",
                unique_parent(),
                created.name.rsplit('/').next().unwrap()
            ),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let stranger = ConnectorClient::connect(format!("http://127.0.0.1:{port}"), "not-a-key")
        .await
        .unwrap();
    stranger
        .list_connector_types(pb::ListConnectorTypesRequest {})
        .await
        .unwrap_err();
    let mut watch = client.watch_events(parent.clone(), 0);
    watch.next().await.expect("the AUTHORIZED event").unwrap();

    // The endpoint itself: every family, with the values these calls must have produced.
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let exposition = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (series, expected) in [
        (
            r#"connector_rpc_requests_total{method="CreateConnector",code="OK"}"#,
            1.0,
        ),
        (
            r#"connector_rpc_requests_total{method="GetConnector",code="OK"}"#,
            1.0,
        ),
        (
            r#"connector_rpc_requests_total{method="GetConnector",code="NOT_FOUND"}"#,
            1.0,
        ),
        (
            r#"connector_rpc_requests_total{method="ListConnectorTypes",code="UNAUTHENTICATED"}"#,
            1.0,
        ),
        (
            r#"connector_provider_request_duration_seconds_count{type="azure-blob-storage",operation="check"}"#,
            1.0,
        ),
        (
            r#"connector_connectors{type="azure-blob-storage",state="authorized"}"#,
            1.0,
        ),
        ("connector_watch_streams_open", 1.0),
        ("connector_database_up", 1.0),
        ("connector_revocation_outbox_depth", 0.0),
        (r#"connector_sweeps_total{outcome="ok"}"#, 1.0),
    ] {
        assert_eq!(
            sample(&exposition, series),
            Some(expected),
            "{series} in\n{exposition}"
        );
    }
    for family in [
        "connector_rpc_duration_seconds_bucket{le=\"0.001\",method=\"GetConnector\"}",
        "connector_revocation_outbox_oldest_age_seconds ",
        "connector_db_pool_connections{state=\"in_use\"}",
        "connector_db_pool_max_connections ",
        "connector_db_pool_timeouts_total ",
    ] {
        assert!(exposition.contains(family), "{family} in\n{exposition}");
    }
    drop(watch);

    // The real scraper: Prometheus reads the endpoint and rates the calls made meanwhile.
    let prometheus = Prometheus::start(&format!("127.0.0.1:{metrics_port}"));
    let caller = tokio::spawn({
        let client = client.clone();
        async move {
            loop {
                let _ = client
                    .list_connector_types(pb::ListConnectorTypesRequest {})
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let query =
        r#"sum(rate(connector_rpc_requests_total{method="ListConnectorTypes",code="OK"}[1m]))"#;
    let deadline = Instant::now() + Duration::from_secs(90);
    let rate = loop {
        let result = prometheus.query(query).await;
        let rate = result
            .first()
            .and_then(|sample| sample["value"][1].as_str())
            .and_then(|value| value.parse::<f64>().ok())
            .filter(|rate| *rate > 0.0);
        if let Some(rate) = rate {
            break rate;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never rated the calls: {result:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    caller.abort();
    // At most 20 calls a second are made; more would be another series counted in.
    assert!(rate <= 25.0, "rate {rate}");
    let up = prometheus.query(r#"up{job="connector"}"#).await;
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
    drop(prometheus);

    // The logs: one JSON object per line; each call once, naming what it touched.
    let logs = logs(workdir.path());
    let calls: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["target"] == "connector_server::rpc")
        .collect();
    let connector_id = created.name.rsplit('/').next().unwrap();
    let account = parent.strip_prefix("accounts/").unwrap();
    let get = calls
        .iter()
        .find(|call| call["method"] == "GetConnector" && call["code"] == "OK")
        .unwrap_or_else(|| panic!("a GetConnector line in {calls:#?}"));
    assert_eq!(get["span"]["api_key"], "admin", "{get}");
    assert_eq!(get["span"]["account"], account, "{get}");
    assert_eq!(get["span"]["connector"], connector_id, "{get}");
    assert!(get["latency_ms"].as_f64().is_some(), "{get}");
    let refused = calls
        .iter()
        .find(|call| call["code"] == "UNAUTHENTICATED")
        .unwrap_or_else(|| panic!("a refused call in {calls:#?}"));
    assert_eq!(refused["method"], "ListConnectorTypes");
    assert_eq!(
        calls
            .iter()
            .filter(|call| call["method"] == "CreateConnector")
            .count(),
        1,
        "each call is logged once"
    );
    // At `trace`, the most verbose level: no key, account key or token anywhere.
    for secret in [api_key.as_str(), storage.key1.as_str(), "not-a-key"] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    binary.signal("-TERM");
}
