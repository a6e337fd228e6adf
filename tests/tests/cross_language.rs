//! The contract works from outside Rust.
//!
//! Every other integration test talks to the server through `connector-client`, which is
//! compiled from the same `proto/` files by the same prost/tonic tool-chain as the server, so a
//! mistake both sides share (a wire detail, a missing reflection descriptor, metadata handling)
//! would go unnoticed. These tests call the real server with tools that know nothing of our Rust
//! code:
//!
//! - a Python client generated at run time from `proto/` with `grpc_tools.protoc`
//!   (`tests/python/client_check.py`) manages a connector end to end;
//! - grpcurl (reflection v1alpha) lists and describes the services, calls an RPC with and
//!   without an API key, and checks health;
//! - `buf curl` (reflection v1) calls an RPC.
//!
//! The tools come from `scripts/test` through `TEST_PYTHON`, `GRPCURL_BIN` and `BUF_BIN`.

use std::{
    path::PathBuf,
    process::{Command, ExitStatus},
};

use connector_client::pb;
use connector_tests::{
    ADMIN_KEY, Azurite, Backend, TestServer, on_both_backends, tool_env, unique_account,
};
use serde_json::Value;
use tonic::Code;

on_both_backends!(
    python_generated_client_manages_a_connector,
    grpcurl_lists_services_and_calls_with_a_key,
    buf_curl_calls_with_reflection,
);

/// The storage account (in the shared Azurite) these tests link connectors to.
const STORAGE_ACCOUNT: usize = 15;

/// Every connector type the service supports, ordered by name as `ListConnectorTypes` returns
/// them.
const CONNECTOR_TYPES: [&str; 10] = [
    "connectorTypes/amazon-s3",
    "connectorTypes/azure-blob-storage",
    "connectorTypes/box",
    "connectorTypes/dropbox",
    "connectorTypes/google-drive",
    "connectorTypes/office-365",
    "connectorTypes/onedrive-consumer",
    "connectorTypes/onedrive-for-business-user",
    "connectorTypes/sftp",
    "connectorTypes/webdav",
];

async fn python_generated_client_manages_a_connector(backend: Backend) {
    let server = TestServer::start(backend).await;
    let parent = format!("accounts/{}", unique_account());
    let storage = Azurite::shared().account(STORAGE_ACCOUNT);
    let display_name = "Created from Python";

    let mut python = Command::new(tool_env("TEST_PYTHON"));
    python
        .arg(client_check_script())
        .args(["--address", &authority(&server)])
        .args(["--parent", &parent])
        .args(["--storage-account", &storage.name])
        .args(["--display-name", display_name])
        // Secrets go through the environment, not the command line.
        .env("CONNECTOR_API_KEY", ADMIN_KEY)
        .env("AZURE_STORAGE_ACCOUNT_KEY", &storage.key1);
    let run = Run::of(python).await;
    assert!(
        run.status.success(),
        "the Python client check failed\n{run}"
    );

    // The summary proves the Python side really talked to this server: the connector id in
    // the name is assigned by the server.
    let summary = run.last_json_line();
    let name = summary["connector"].as_str().unwrap_or_default();
    assert!(
        name.starts_with(&format!("{parent}/connectors/")),
        "no connector of {parent} in the summary\n{run}"
    );
    assert_eq!(summary["display_name"], display_name, "{run}");
    assert_eq!(summary["state"], "STATE_AUTHORIZED", "{run}");
    assert_eq!(summary["external_account"], storage.name.as_str(), "{run}");
    assert_eq!(summary["listed"], 1, "{run}");
    assert_eq!(summary["get_after_delete"], "NOT_FOUND", "{run}");
    assert_eq!(summary["without_key"], "UNAUTHENTICATED", "{run}");

    // And the Rust client agrees that the connector Python deleted is gone.
    let client = server.client().await;
    let error = client
        .get_connector(pb::GetConnectorRequest {
            name: name.to_owned(),
        })
        .await
        .expect_err("deleted from Python");
    assert_eq!(error.code(), Code::NotFound, "{error:?}");
    let listed = client
        .list_connectors(pb::ListConnectorsRequest {
            parent,
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(listed.connectors.is_empty(), "{:?}", listed.connectors);
}

async fn grpcurl_lists_services_and_calls_with_a_key(backend: Backend) {
    let server = TestServer::start(backend).await;
    let address = authority(&server);
    let authorization = format!("authorization: Bearer {ADMIN_KEY}");

    let list = Run::of(grpcurl(["-plaintext", &address, "list"])).await;
    assert!(list.status.success(), "{list}");
    for service in [
        "connector.v1.ConnectorService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            list.stdout.lines().any(|line| line.trim() == service),
            "`list` does not name {service}\n{list}"
        );
    }

    let describe = Run::of(grpcurl([
        "-plaintext",
        &address,
        "describe",
        "connector.v1.ConnectorService",
    ]))
    .await;
    assert!(describe.status.success(), "{describe}");
    assert!(
        describe.stdout.contains("rpc ListConnectorTypes"),
        "{describe}"
    );

    let types = Run::of(grpcurl([
        "-plaintext",
        "-H",
        &authorization,
        "-d",
        "{}",
        &address,
        "connector.v1.ConnectorService/ListConnectorTypes",
    ]))
    .await;
    assert!(types.status.success(), "{types}");
    let listed = types.json();
    let names: Vec<&str> = listed["connectorTypes"]
        .as_array()
        .unwrap_or_else(|| panic!("no connectorTypes\n{types}"))
        .iter()
        .filter_map(|connector_type| connector_type["name"].as_str())
        .collect();
    assert_eq!(names, CONNECTOR_TYPES, "{types}");

    // Reflection is open, the service is not.
    let without_key = Run::of(grpcurl([
        "-plaintext",
        "-d",
        "{}",
        &address,
        "connector.v1.ConnectorService/ListConnectorTypes",
    ]))
    .await;
    // grpcurl exits with 64 plus the gRPC code when the RPC itself fails.
    assert_eq!(
        without_key.status.code(),
        Some(64 + Code::Unauthenticated as i32),
        "{without_key}"
    );
    assert!(
        without_key.stderr.contains("Unauthenticated"),
        "{without_key}"
    );
    assert!(
        !without_key.stdout.contains("connectorTypes/"),
        "{without_key}"
    );

    // Health needs no key, for the server and for the connector service.
    for service in ["", "connector.v1.ConnectorService"] {
        let request = serde_json::json!({ "service": service }).to_string();
        let health = Run::of(grpcurl([
            "-plaintext",
            "-d",
            &request,
            &address,
            "grpc.health.v1.Health/Check",
        ]))
        .await;
        assert!(health.status.success(), "{health}");
        assert_eq!(health.json()["status"], "SERVING", "{health}");
    }
}

async fn buf_curl_calls_with_reflection(backend: Backend) {
    let server = TestServer::start(backend).await;
    let url = format!(
        "{}/connector.v1.ConnectorService/ResolveConnectorType",
        server.endpoint()
    );
    let data = r#"{"microsoftService":"MICROSOFT_SERVICE_SHAREPOINT_ONLINE"}"#;
    let authorization = format!("authorization: Bearer {ADMIN_KEY}");

    let resolved = Run::of(buf_curl(["-H", &authorization, "--data", data, &url])).await;
    assert!(resolved.status.success(), "{resolved}");
    assert_eq!(
        resolved.json()["connectorType"]["name"],
        "connectorTypes/office-365",
        "{resolved}"
    );

    // Without the key the call fails; buf exits with the gRPC code shifted left by three.
    let without_key = Run::of(buf_curl(["--data", data, &url])).await;
    assert_eq!(
        without_key.status.code(),
        Some((Code::Unauthenticated as i32) << 3),
        "{without_key}"
    );
    assert!(
        without_key.stderr.contains("unauthenticated"),
        "{without_key}"
    );
}

/// `HOST:PORT` of a test server, as grpcurl and the Python client want it.
fn authority(server: &TestServer) -> String {
    let endpoint = server.endpoint();
    endpoint
        .strip_prefix("http://")
        .unwrap_or(&endpoint)
        .to_owned()
}

/// `tests/python/client_check.py`.
fn client_check_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/client_check.py")
}

/// A grpcurl command with `args`, bounded in time.
fn grpcurl<'a>(args: impl IntoIterator<Item = &'a str>) -> Command {
    let mut command = Command::new(tool_env("GRPCURL_BIN"));
    command.args(["-max-time", "60"]).args(args);
    command
}

/// A `buf curl` command over gRPC (HTTP/2 without TLS) with `args`, bounded in time. The schema
/// comes from server reflection.
fn buf_curl<'a>(args: impl IntoIterator<Item = &'a str>) -> Command {
    let mut command = Command::new(tool_env("BUF_BIN"));
    command
        .args(["curl", "--protocol", "grpc", "--http2-prior-knowledge"])
        .args(["--timeout", "60s"])
        .args(args);
    command
}

/// What an external command did: its command line, exit status and output. Its `Display` is
/// meant for assertion messages.
#[derive(Debug)]
struct Run {
    command_line: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Runs `command` to completion on a blocking thread, so the test server keeps its runtime
    /// workers while the command talks to it.
    async fn of(mut command: Command) -> Run {
        // Program and arguments only: the environment may hold secrets.
        let command_line = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|part| part.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("command thread")
            .unwrap_or_else(|error| panic!("cannot run {command_line}: {error}"));
        Run {
            command_line,
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Stdout as one JSON document.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error})\n{self}"))
    }

    /// The last non-empty stdout line as JSON.
    fn last_json_line(&self) -> Value {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or_else(|| panic!("no output\n{self}"));
        serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("last line is not JSON ({error})\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "command: {}", self.command_line)?;
        writeln!(f, "status: {}", self.status)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}
