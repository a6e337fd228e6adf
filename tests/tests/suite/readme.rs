//! The README's grpcurl walk-through, run as written (between its `walkthrough` markers) in a
//! fresh shell at the repository root, as a new user runs it (see `connector_tests::readme`
//! for what that shell is given: no substitutions, `PATH=/usr/bin:/bin`), so a new user following
//! it gets what it promises. While it runs, 50051 and 10000 (where "Two commands" and a
//! default Azurite listen) are held, as a server left running would hold them: the walk-through
//! must neither collide with that server nor reach it.

use std::{net::TcpListener, time::Duration};

use connector_tests::readme::{FreshShell, printed_path, root_leftovers, run_readme_block};

#[test]
fn readme_walkthrough_works_as_written() {
    // Held until the end; a port someone else holds already is just as taken.
    let _taken: Vec<_> = [50051, 10000]
        .into_iter()
        .filter_map(|port| TcpListener::bind(("127.0.0.1", port)).ok())
        .collect();
    let before = root_leftovers();

    let output = run_readme_block(
        "walkthrough",
        FreshShell {
            // It shows two errors on purpose (AlreadyExists, NotFound).
            stop_on_error: false,
            timeout: Duration::from_secs(900),
        },
    );
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
    assert!(
        !all.contains("ended: see its output above") && !all.contains("command not found"),
        "{all}"
    );
    assert!(output.status.success(), "the walk-through failed:\n{all}");
    // It cleaned up after itself, and left nothing in the repository.
    let data = printed_path(&stdout, "data in ");
    assert!(!data.exists(), "{} is left behind", data.display());
    assert_eq!(
        root_leftovers(),
        before,
        "files left in the repository root"
    );
}
