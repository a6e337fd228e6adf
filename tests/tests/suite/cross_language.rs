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
//! - `buf curl` (reflection v1) calls an RPC;
//! - the README's "Clients in other languages" blocks, run as written in a shell with only the
//!   system's `PATH`: they generate the Python and Go clients of `examples/` through their
//!   `buf.gen.yaml` and run them, and each prints the `ErrorInfo` reason and a `BadRequest` field
//!   violation it read from the `grpc-status-details-bin` trailer. The code the README quotes
//!   must be the examples' code.
//!
//! The tools come from `scripts/test` through `TEST_PYTHON`, `GRPCURL_BIN` and `BUF_BIN`; the
//! README blocks install theirs with `scripts/tools.sh`, as a user's shell does.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
};

use connector_client::pb;
use connector_tests::{
    ADMIN_KEY, Azurite, Backend, TestServer, on_both_backends, readme_script, tool_env,
    unique_account,
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

// The README's clients in other languages. One backend: the calls fail before storage matters
// beyond a lookup, and the blocks generate into examples/, which two runs at once would share.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_python_client_reads_an_errors_reason() {
    readme_client_reads_an_errors_reason(ReadmeClient {
        block: "clients-python",
        code_block: "clients-python-code",
        source: "examples/python/read_error.py",
        not_found: "NOT_FOUND",
        invalid_argument: "INVALID_ARGUMENT",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_go_client_reads_an_errors_reason() {
    readme_client_reads_an_errors_reason(ReadmeClient {
        block: "clients-go",
        code_block: "clients-go-code",
        source: "examples/go/main.go",
        not_found: "NotFound",
        invalid_argument: "InvalidArgument",
    })
    .await;
}

/// One language's README blocks and example, and how it spells the two codes.
struct ReadmeClient {
    /// The marker of the shell block that generates and runs the example.
    block: &'static str,
    /// The marker of the code block quoting how the example reads the details.
    code_block: &'static str,
    /// The example's source, from the workspace root.
    source: &'static str,
    not_found: &'static str,
    invalid_argument: &'static str,
}

async fn readme_client_reads_an_errors_reason(client: ReadmeClient) {
    assert_eq!(
        readme_code(client.code_block),
        example_excerpt(&workspace_root().join(client.source)),
        "the README's `{}` block is not the code between the example markers of {}",
        client.code_block,
        client.source,
    );

    let server = TestServer::start(Backend::Sqlite).await;
    let script = format!("set -e\n{}", readme_script(client.block));
    let mut shell = Command::new("timeout");
    shell
        .args(["900", "bash", "-c", &script])
        .current_dir(workspace_root())
        // A fresh shell: the system's PATH and HOME (Go keeps its build cache there), no
        // variable of the test run, and the server and key the examples read.
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .env(
            "HOME",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
        )
        .env("CONNECTOR_ADDRESS", authority(&server))
        .env("CONNECTOR_API_KEY", ADMIN_KEY);
    let run = Run::of(shell).await;
    assert!(
        run.status.success(),
        "the README's {} block failed\n{run}",
        client.block
    );

    let violation = "  field violation: credentials.azure_storage_account_key.account_name: ";
    run.assert_lines_in_order(&[
        &format!("GetConnector: {}", client.not_found),
        "  reason: CONNECTOR_NOT_FOUND (domain connector-service)",
        &format!("CreateConnector: {}", client.invalid_argument),
        "  reason: INVALID_ARGUMENT (domain connector-service)",
        violation,
    ]);
}

/// The `PATH` of a fresh login shell on Debian, before anything a user or a tool adds.
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The workspace root (the tests crate's parent).
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
}

/// The body of the fenced code block between `<!-- {marker}:start -->` and `<!-- {marker}:end
/// -->` in README.md, without its fences.
fn readme_code(marker: &str) -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let block = readme
        .split(&format!("<!-- {marker}:start -->"))
        .nth(1)
        .and_then(|rest| rest.split(&format!("<!-- {marker}:end -->")).next())
        .unwrap_or_else(|| panic!("{marker} markers in README.md"));
    let lines: Vec<&str> = block.trim().lines().collect();
    assert!(
        lines.len() >= 2 && lines[0].starts_with("```") && lines[lines.len() - 1] == "```",
        "no fenced code block between the {marker} markers"
    );
    lines[1..lines.len() - 1].join("\n")
}

/// The lines of `path` between its `example:start` and `example:end` marker lines, without
/// leading or trailing blank lines.
fn example_excerpt(path: &Path) -> String {
    let source = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let excerpt: Vec<&str> = source
        .lines()
        .skip_while(|line| !line.contains("example:start"))
        .skip(1)
        .take_while(|line| !line.contains("example:end"))
        .collect();
    excerpt.join("\n").trim_matches('\n').to_owned()
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

    /// Asserts that stdout has lines starting with each of `prefixes`, in that order.
    #[track_caller]
    fn assert_lines_in_order(&self, prefixes: &[&str]) {
        let mut lines = self.stdout.lines();
        for prefix in prefixes {
            assert!(
                lines.any(|line| line.starts_with(prefix)),
                "no line starting with `{prefix}` (after the ones before it)\n{self}"
            );
        }
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
