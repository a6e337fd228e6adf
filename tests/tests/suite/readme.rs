//! The README's grpcurl walk-through, run as written (between its `walkthrough` markers), so a
//! new user following it gets what it promises. Only what must differ on a shared test machine is
//! substituted: free ports instead of 50051 and 10000 (the server's through `CONNECTOR_LISTEN`),
//! the built binary instead of `cargo run`, and a temporary data directory.

use std::{path::Path, process::Command};

use connector_tests::{free_port, workspace_binary};

#[test]
fn readme_walkthrough_works_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let script = connector_tests::readme_script("walkthrough");
    let data = tempfile::tempdir().expect("temp dir");
    let (grpc_port, blob_port) = (free_port(), free_port());
    let script = script
        .replace("50051", &grpc_port.to_string())
        .replace("10000", &blob_port.to_string())
        .replace(
            "cargo run -p connector-server",
            &workspace_binary("connector-server").display().to_string(),
        )
        .replace("data/admin-api-key", "$CONNECTOR_DATA_DIR/admin-api-key");
    // Stop the background jobs (Azurite, the server) whatever happens.
    let script = format!("trap 'kill $(jobs -p) 2>/dev/null' EXIT\n{script}");

    // `timeout` bounds the run should the server never come up (the script waits for it).
    let output = Command::new("timeout")
        .args(["120", "bash", "-c", &script])
        .current_dir(root)
        .env("CONNECTOR_DATA_DIR", data.path())
        .env("CONNECTOR_LISTEN", format!("127.0.0.1:{grpc_port}"))
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let all = format!("{stdout}\n{stderr}");
    for expected in [
        "connector.v1.ConnectorService",
        "\"status\": \"SERVING\"",
        "connectorTypes/onedrive-for-business-user",
        "\"name\": \"connectorTypes/office-365\"",
        "\"state\": \"STATE_AUTHORIZED\"",
        "\"tokenType\": \"TOKEN_TYPE_AZURE_SAS\"",
        "create a container with the SAS: 201",
        "Code: AlreadyExists",
        "CONNECTOR_ALREADY_EXISTS",
        "Code: NotFound",
    ] {
        assert!(
            all.contains(expected),
            "walk-through output lacks `{expected}`:\n{all}"
        );
    }
}
