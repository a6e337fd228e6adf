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
    Azurite, Backend, ConfigHook, OAuthWorld, ServerBinary, assert_error, azure_create, free_port,
    on_both_backends, tool_env, unique_parent, write_file,
};
use identity_emulator::{Failure, fixtures};

on_both_backends!(the_domains_reports_are_counted);

/// A Prometheus server of its own, on loopback, scraping `target` every second and
/// evaluating the README's alert rules.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        write_file(&dir.path().join("rules.yml"), &readme_alert_rules());
        write_file(
            &config,
            &format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files: ['rules.yml']\n\
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

    /// The alert rules as Prometheus last evaluated them (empty while it is starting).
    async fn rules(&self) -> Vec<serde_json::Value> {
        let url = format!("http://127.0.0.1:{}/api/v1/rules", self.port);
        let Ok(response) = reqwest::get(url).await else {
            return Vec::new();
        };
        let Ok(body) = response.json::<serde_json::Value>().await else {
            return Vec::new();
        };
        body["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
            .collect()
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

/// The service every call is counted under.
const SERVICE: &str = "connector.v1.ConnectorService";

/// The `grpc_server_started_total` series of a method.
fn started(method: &str, kind: &str) -> String {
    format!(
        r#"grpc_server_started_total{{grpc_service="{SERVICE}",grpc_method="{method}",grpc_type="{kind}"}}"#
    )
}

/// The `grpc_server_handled_total` series of a method and a code (spelt as Go prints it).
fn handled(method: &str, kind: &str, code: &str) -> String {
    format!(
        r#"grpc_server_handled_total{{grpc_service="{SERVICE}",grpc_method="{method}",grpc_type="{kind}",grpc_code="{code}"}}"#
    )
}

/// The example alert rules of the README's Metrics section, as written there.
fn readme_alert_rules() -> String {
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("README.md"),
    )
    .unwrap();
    let block = readme
        .split("<!-- alert-rules:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- alert-rules:end -->").next())
        .expect("alert-rules markers in README.md");
    block
        .trim()
        .trim_start_matches("```yaml")
        .trim_end_matches("```")
        .to_owned()
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
        (handled("CreateConnector", "unary", "OK"), 1.0),
        (handled("GetConnector", "unary", "OK"), 1.0),
        (handled("GetConnector", "unary", "NotFound"), 1.0),
        (
            handled("ListConnectorTypes", "unary", "Unauthenticated"),
            1.0,
        ),
        (started("GetConnector", "unary"), 2.0),
        // The watch is still open: started, not handled.
        (started("WatchConnectorEvents", "server_stream"), 1.0),
        (
            handled("WatchConnectorEvents", "server_stream", "OK"),
            0.0,
        ),
        (
            r#"connector_provider_request_duration_seconds_count{type="azure-blob-storage",operation="check"}"#.to_owned(),
            1.0,
        ),
        (
            r#"connector_connectors{type="azure-blob-storage",state="authorized"}"#.to_owned(),
            1.0,
        ),
        ("connector_watch_streams_open".to_owned(), 1.0),
        ("connector_database_up".to_owned(), 1.0),
        ("connector_revocation_outbox_depth".to_owned(), 0.0),
        (r#"connector_sweeps_total{outcome="ok"}"#.to_owned(), 1.0),
    ] {
        assert_eq!(
            sample(&exposition, &series),
            Some(expected),
            "{series} in\n{exposition}"
        );
    }
    for family in [
        "grpc_server_handling_seconds_bucket{le=\"0.001\",grpc_service=\"connector.v1.ConnectorService\",grpc_method=\"GetConnector\",grpc_type=\"unary\"}",
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
    let query = r#"sum(rate(grpc_server_handled_total{grpc_method="ListConnectorTypes",grpc_code="OK"}[1m]))"#;
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
    // No refresh has happened, and the refresh-failure alert still has data: a rate of 0 for
    // every OAuth 2.0 type, not an empty answer.
    let failing = prometheus
        .query(r#"sum by (type) (rate(connector_token_refreshes_total{outcome="failed"}[5m]))"#)
        .await;
    assert!(failing.len() >= 6, "{failing:?}");
    assert!(
        failing.iter().all(|series| series["value"][1] == "0"),
        "{failing:?}"
    );
    // The README's alert rules load and evaluate without error against these names (a rule
    // on a metric that does not exist evaluates fine too: the query above checks the data).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rules = prometheus.rules().await;
        if !rules.is_empty() && rules.iter().all(|rule| rule["health"] == "ok") {
            break;
        }
        assert!(
            rules.iter().all(|rule| rule["health"] != "err"),
            "a README alert rule fails: {rules:#?}"
        );
        assert!(
            Instant::now() < deadline,
            "the README's alert rules never evaluated: {rules:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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

/// Every status code as Go's `codes.Code` prints it: the `grpc_code` values of
/// go-grpc-prometheus that dashboards and alert rules match on.
const GO_CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

fn epoch_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// What a dashboard finds on a server that has done nothing yet: every counter of a closed
/// label set at 0 (with its HELP and TYPE), the build, the process, and the gRPC families under
/// the names and labels of go-grpc-prometheus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_server_has_every_series_at_its_first_scrape() {
    let workdir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let before_start = epoch_seconds();
    let binary = ServerBinary::start(
        workdir.path(),
        port,
        &[(
            "CONNECTOR_METRICS_LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )],
    )
    .ready()
    .await;
    let exposition = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scraped = epoch_seconds();
    let expect = |series: &str, expected: f64| {
        assert_eq!(
            sample(&exposition, series),
            Some(expected),
            "{series} in\n{exposition}"
        );
    };

    // The counters that only move on an event, described and at zero before any.
    for family in [
        "connector_token_refreshes",
        "connector_deauthorizations",
        "connector_revocations",
        "connector_sweeps",
        "grpc_server_started",
        "grpc_server_handled",
        "process_cpu_seconds",
    ] {
        for line in [
            format!("# HELP {family} "),
            format!("# TYPE {family} counter\n"),
        ] {
            assert!(exposition.contains(&line), "{line:?} in\n{exposition}");
        }
    }
    let catalogue = connector_server::connector_types::catalogue();
    let oauth_types: Vec<&str> = catalogue
        .iter()
        .filter(|connector_type| !connector_type.info().auth_method.uses_credentials())
        .map(|connector_type| connector_type.as_str())
        .collect();
    assert!(oauth_types.contains(&"google-drive"), "{oauth_types:?}");
    for connector_type in &oauth_types {
        for outcome in ["refreshed", "grant_lost", "failed"] {
            expect(
                &format!(
                    r#"connector_token_refreshes_total{{type="{connector_type}",outcome="{outcome}"}}"#
                ),
                0.0,
            );
        }
    }
    for reason in ["inactivity", "revoked", "expired"] {
        expect(
            &format!(r#"connector_deauthorizations_total{{reason="{reason}"}}"#),
            0.0,
        );
    }
    for outcome in ["revoked", "not_supported", "failed", "retry"] {
        expect(
            &format!(r#"connector_revocations_total{{outcome="{outcome}"}}"#),
            0.0,
        );
    }
    expect(r#"connector_sweeps_total{outcome="failed"}"#, 0.0);
    expect(
        r#"connector_connectors{type="webdav",state="authorized"}"#,
        0.0,
    );
    expect(
        r#"connector_provider_request_duration_seconds_count{type="azure-blob-storage",operation="check"}"#,
        0.0,
    );

    // The gRPC families: every method, with every code, at zero (the health check that said
    // the server was ready is another service, not counted).
    for (method, kind) in [
        ("GetConnector", "unary"),
        ("CreateConnector", "unary"),
        ("WatchConnectorEvents", "server_stream"),
    ] {
        expect(&started(method, kind), 0.0);
        for code in GO_CODES {
            expect(&handled(method, kind, code), 0.0);
        }
        expect(
            &format!(
                r#"grpc_server_handling_seconds_count{{grpc_service="{SERVICE}",grpc_method="{method}",grpc_type="{kind}"}}"#
            ),
            0.0,
        );
    }
    assert!(
        exposition.contains("# TYPE grpc_server_handling_seconds histogram\n"),
        "{exposition}"
    );
    assert!(
        !exposition.contains("connector_rpc_"),
        "renamed: {exposition}"
    );

    // The build: the same version and commit `connector-server --version` prints.
    let version = Command::new(connector_tests::workspace_binary("connector-server"))
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    // "connector-server 0.1.0 (commit 0123456789ab)"
    let (number, commit) = version
        .trim()
        .strip_prefix("connector-server ")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|rest| rest.split_once(" (commit "))
        .unwrap_or_else(|| panic!("--version printed {version:?}"));
    expect(
        &format!(r#"connector_build_info{{version="{number}",commit="{commit}"}}"#),
        1.0,
    );
    assert!(
        exposition.contains("# TYPE connector_build_info gauge\n"),
        "{exposition}"
    );

    // The process: figures a running server can have.
    let value = |name: &str| {
        assert!(
            exposition.contains(&format!("# HELP {} ", name.trim_end_matches("_total"))),
            "{name} in\n{exposition}"
        );
        sample(&exposition, name).unwrap_or_else(|| panic!("{name} in\n{exposition}"))
    };
    let cpu = value("process_cpu_seconds_total");
    let cores = std::thread::available_parallelism().unwrap().get() as f64;
    assert!(
        (0.0..=(scraped - before_start + 1.0) * cores).contains(&cpu),
        "cpu {cpu}"
    );
    let resident = value("process_resident_memory_bytes");
    let size = value("process_virtual_memory_bytes");
    assert!(
        resident > 1e6 && resident < size,
        "resident {resident}, virtual {size}"
    );
    let (open, max) = (value("process_open_fds"), value("process_max_fds"));
    // At least stdin, stdout, stderr, the two listeners and the database.
    assert!(open >= 6.0 && open < max, "{open} of {max}");
    let started_at = value("process_start_time_seconds");
    // The boot time it is counted from is whole seconds: up to a second early.
    assert!(
        started_at >= before_start - 1.5 && started_at <= scraped + 0.5,
        "started {started_at}, test {before_start}..{scraped}"
    );
    binary.signal("-TERM");
}

/// Scrapes `url` until every `(series, value)` in `wanted` has its value; panics after 20 s.
async fn scrape_until(url: &str, wanted: &[(&str, f64)]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let exposition = reqwest::get(url).await.unwrap().text().await.unwrap();
        let missing: Vec<_> = wanted
            .iter()
            .filter(|(series, value)| sample(&exposition, series) != Some(*value))
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not counted: {missing:?} in\n{exposition}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the domain reports as it works reaches the metrics: a grant lost at a refresh counts a
/// deauthorization for its reason, the revocation it queues counts its outcome, and a sweep at
/// start-up counts itself and the connectors it deauthorized for inactivity.
async fn the_domains_reports_are_counted(backend: Backend) {
    let metrics_port = free_port();
    let mut world = OAuthWorld::start_customized(backend, true, |options| {
        options.configure = Some(ConfigHook::new(move |config| {
            config.metrics_listen = Some(([127, 0, 0, 1], metrics_port).into());
        }));
    })
    .await;
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let link = |parent: String| {
        let world = &world;
        async move {
            world
                .link(
                    &parent,
                    "connectorTypes/onedrive-consumer",
                    fixtures::ALICE_UPN,
                )
                .await
                .expect("linked")
        }
    };

    // Both linked before the clock moves: the emulator signs id tokens in real time.
    let lost = link(unique_parent()).await;
    link(unique_parent()).await;
    world
        .emulator
        .fail_next_token_calls(1, Failure::InvalidGrant { aadsts: 50173 });
    world.server.clock.advance(chrono::Duration::hours(2));
    let refused = world
        .server
        .client()
        .await
        .get_access_token(pb::GetAccessTokenRequest { name: lost.name })
        .await
        .expect_err("the grant is gone");
    let reason = assert_error(
        &refused,
        tonic::Code::FailedPrecondition,
        "CONNECTOR_DEAUTHORIZED",
    )["deauthorization_reason"]
        .to_lowercase();
    let deauthorized = format!(r#"connector_deauthorizations_total{{reason="{reason}"}}"#);
    scrape_until(
        &metrics_url,
        &[
            (&deauthorized, 1.0),
            (r#"connector_revocations_total{outcome="revoked"}"#, 1.0),
            (
                r#"connector_deauthorizations_total{reason="inactivity"}"#,
                0.0,
            ),
        ],
    )
    .await;

    // The other connector, past its inactivity deadline, is swept when the server starts again
    // (the counts start again with the process).
    world.server.clock.advance(chrono::Duration::days(91));
    world.server.restart().await;
    scrape_until(
        &metrics_url,
        &[
            (r#"connector_sweeps_total{outcome="ok"}"#, 1.0),
            (
                r#"connector_deauthorizations_total{reason="inactivity"}"#,
                1.0,
            ),
            (r#"connector_revocations_total{outcome="revoked"}"#, 1.0),
        ],
    )
    .await;
}
