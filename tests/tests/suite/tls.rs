//! TLS and mutual TLS through the real binary (issue 8): certificates are made at test time
//! with rcgen; the Rust client, grpcurl and the Python client generated from `proto/` all work
//! over TLS; plaintext to the TLS port fails; with mTLS a client without a certificate from the
//! configured CA is refused; and a server that would listen in the clear off loopback refuses
//! to start unless told a mesh encrypts for it.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use connector_client::{ConnectorClient, pb};
use connector_tests::{Azurite, ServerBinary, free_port, tool_env, unique_account, wait_for_port};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A private CA, a server certificate for `localhost` and `127.0.0.1`, a client certificate
/// from the CA, and a client certificate from another CA: PEM files in a directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = authority("Connector Service test CA");
        let rogue = authority("Someone else's CA");
        let write =
            |name: &str, content: String| std::fs::write(dir.path().join(name), content).unwrap();
        write("ca.pem", ca.0.clone());
        let (cert, key) = leaf(
            &ca.1,
            vec!["localhost".into(), "127.0.0.1".into()],
            "server",
        );
        write("server.pem", cert);
        write("server.key", key);
        let (cert, key) = leaf(&ca.1, Vec::new(), "worker");
        write("client.pem", cert);
        write("client.key", key);
        let (cert, key) = leaf(&rogue.1, Vec::new(), "intruder");
        write("rogue.pem", cert);
        write("rogue.key", key);
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }
}

/// A CA: its certificate (PEM) and what signs with it.
fn authority(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

/// A certificate signed by `issuer`, with its key: (certificate PEM, key PEM).
fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    names: Vec<String>,
    common_name: &str,
) -> (String, String) {
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// The binary with TLS (and mTLS when `mutual`), its admin key, and its `https://` endpoint.
async fn tls_server(workdir: &Path, pki: &Pki, mutual: bool) -> (ServerBinary, String, String) {
    let port = free_port();
    let mut env = vec![
        (
            "CONNECTOR_TLS_CERT",
            pki.path("server.pem").display().to_string(),
        ),
        (
            "CONNECTOR_TLS_KEY",
            pki.path("server.key").display().to_string(),
        ),
        (
            "CONNECTOR_AZURE_BLOB_ENDPOINT",
            Azurite::shared().endpoint_template(),
        ),
    ];
    if mutual {
        env.push((
            "CONNECTOR_TLS_CLIENT_CA",
            pki.path("ca.pem").display().to_string(),
        ));
    }
    let binary = ServerBinary::start(workdir, port, &env);
    let key_file = workdir.join("data").join(connector_server::ADMIN_KEY_FILE);
    // Ready once it has written its key file and answers a TLS client.
    let endpoint = format!("https://localhost:{port}");
    tokio::task::spawn_blocking(move || wait_for_port(port, Duration::from_secs(30)))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    loop {
        if let Ok(key) = std::fs::read_to_string(&key_file) {
            let key = key.trim().to_owned();
            let mut builder =
                ConnectorClient::builder(&endpoint, &key).ca_certificate_pem(pki.read("ca.pem"));
            if mutual {
                builder =
                    builder.client_identity_pem(pki.read("client.pem"), pki.read("client.key"));
            }
            match builder.connect().await {
                Ok(client) => match client
                    .list_connector_types(pb::ListConnectorTypesRequest {})
                    .await
                {
                    Ok(_) => return (binary, key, endpoint),
                    Err(status) => last = format!("{status:?}"),
                },
                Err(error) => last = format!("{error:?}"),
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the TLS server never answered: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a command on a blocking thread (the test's runtime keeps working).
async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("run the command"))
        .await
        .unwrap()
}

fn grpcurl(args: &[&str]) -> Command {
    let mut command = Command::new(tool_env("GRPCURL_BIN"));
    command.args(["-max-time", "30"]).args(args);
    command
}

/// The Python client generated from `proto/`, managing a connector over TLS.
fn python_check(port: u16, key: &str, pki: &Pki, client: Option<&str>) -> Command {
    let storage = Azurite::shared().account(15);
    let mut command = Command::new(tool_env("TEST_PYTHON"));
    command
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/client_check.py"))
        .args(["--address", &format!("localhost:{port}")])
        .args(["--parent", &format!("accounts/{}", unique_account())])
        .args(["--storage-account", &storage.name])
        .arg("--ca-file")
        .arg(pki.path("ca.pem"))
        .env("CONNECTOR_API_KEY", key)
        .env("AZURE_STORAGE_ACCOUNT_KEY", &storage.key1);
    if let Some(client) = client {
        command
            .arg("--cert-file")
            .arg(pki.path(&format!("{client}.pem")))
            .arg("--key-file")
            .arg(pki.path(&format!("{client}.key")));
    }
    command
}

fn list_types<'a>(authorization: &'a str, authority: &'a str) -> Vec<&'a str> {
    vec![
        "-H",
        authorization,
        "-d",
        "{}",
        authority,
        "connector.v1.ConnectorService/ListConnectorTypes",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_rust_grpcurl_and_python_clients_and_refuses_plaintext() {
    let pki = Pki::new();
    let workdir = tempfile::tempdir().unwrap();
    let (binary, key, endpoint) = tls_server(workdir.path(), &pki, false).await;
    let port = binary.port;

    // Rust: verified against the private CA.
    let client = ConnectorClient::builder(&endpoint, &key)
        .ca_certificate_pem(pki.read("ca.pem"))
        .connect()
        .await
        .expect("TLS connection");
    let types = client
        .list_connector_types(pb::ListConnectorTypesRequest {})
        .await
        .expect("a call over TLS");
    assert_eq!(
        types.connector_types.len(),
        connector_server::connector_types::MODULES.len()
    );
    // Without the CA, the server's certificate is not trusted.
    let untrusted = async {
        ConnectorClient::connect(&endpoint, &key)
            .await
            .ok()?
            .list_connector_types(pb::ListConnectorTypesRequest {})
            .await
            .ok()
    };
    assert!(
        untrusted.await.is_none(),
        "a certificate from an unknown CA is refused"
    );
    // Plaintext to the TLS port fails.
    let plaintext = async {
        ConnectorClient::connect(format!("http://127.0.0.1:{port}"), &key)
            .await
            .ok()?
            .list_connector_types(pb::ListConnectorTypesRequest {})
            .await
            .ok()
    };
    assert!(plaintext.await.is_none(), "plaintext to the TLS port fails");

    // grpcurl with -cacert; and -plaintext fails.
    let authorization = format!("authorization: Bearer {key}");
    let authority = format!("localhost:{port}");
    let ca = pki.path("ca.pem").display().to_string();
    let mut args = vec!["-cacert", ca.as_str()];
    args.extend(list_types(&authorization, &authority));
    let listed = run(grpcurl(&args)).await;
    assert!(listed.status.success(), "{listed:?}");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("connectorTypes/office-365"));
    let mut args = vec!["-plaintext"];
    args.extend(list_types(&authorization, &authority));
    assert!(
        !run(grpcurl(&args)).await.status.success(),
        "grpcurl -plaintext fails"
    );

    // Python with SSL channel credentials manages a connector end to end.
    let python = run(python_check(port, &key, &pki, None)).await;
    assert!(python.status.success(), "{python:?}");

    let (status, _) = tokio::task::spawn_blocking(move || binary.signal("-TERM"))
        .await
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_refuses_a_client_without_a_certificate_from_the_ca() {
    let pki = Pki::new();
    let workdir = tempfile::tempdir().unwrap();
    let (binary, key, endpoint) = tls_server(workdir.path(), &pki, true).await;
    let port = binary.port;

    let call = |identity: Option<&'static str>| {
        let (endpoint, key, ca) = (endpoint.clone(), key.clone(), pki.read("ca.pem"));
        let identity = identity.map(|name| {
            (
                pki.read(&format!("{name}.pem")),
                pki.read(&format!("{name}.key")),
            )
        });
        async move {
            let mut builder = ConnectorClient::builder(endpoint, key).ca_certificate_pem(ca);
            if let Some((cert, key)) = identity {
                builder = builder.client_identity_pem(cert, key);
            }
            match builder.connect().await {
                Ok(client) => client
                    .list_connector_types(pb::ListConnectorTypesRequest {})
                    .await
                    .map(|_| ())
                    .map_err(|status| status.to_string()),
                Err(error) => Err(error.to_string()),
            }
        }
    };
    call(Some("client"))
        .await
        .expect("the CA's client certificate is accepted");
    let refused = call(None).await.expect_err("no client certificate");
    assert!(
        !refused.contains("API_KEY"),
        "refused before any call: {refused}"
    );
    call(Some("rogue"))
        .await
        .expect_err("a certificate from another CA");

    // grpcurl: with the client certificate it works, without it the handshake fails.
    let authorization = format!("authorization: Bearer {key}");
    let authority = format!("localhost:{port}");
    let (ca, cert, client_key) = (
        pki.path("ca.pem").display().to_string(),
        pki.path("client.pem").display().to_string(),
        pki.path("client.key").display().to_string(),
    );
    let mut args = vec![
        "-cacert",
        ca.as_str(),
        "-cert",
        cert.as_str(),
        "-key",
        client_key.as_str(),
    ];
    args.extend(list_types(&authorization, &authority));
    let listed = run(grpcurl(&args)).await;
    assert!(listed.status.success(), "{listed:?}");
    let mut args = vec!["-cacert", ca.as_str()];
    args.extend(list_types(&authorization, &authority));
    let refused = run(grpcurl(&args)).await;
    assert!(
        !refused.status.success(),
        "grpcurl without a client certificate fails"
    );

    // Python with a client certificate.
    let python = run(python_check(port, &key, &pki, Some("client"))).await;
    assert!(python.status.success(), "{python:?}");
    let (status, _) = tokio::task::spawn_blocking(move || binary.signal("-TERM"))
        .await
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_off_loopback_is_refused_unless_allowed() {
    let workdir = tempfile::tempdir().unwrap();
    let port = free_port();
    let refused = ServerBinary::start_listening(workdir.path(), &format!("0.0.0.0:{port}"), &[]);
    let (status, logs) =
        tokio::task::spawn_blocking(move || refused.exit_within(Duration::from_secs(30)))
            .await
            .unwrap();
    assert!(!status.success(), "{logs}");
    assert!(logs.contains("refusing to listen on 0.0.0.0"), "{logs}");
    assert!(logs.contains("allow_plaintext"), "{logs}");

    let allowed = ServerBinary::start_listening(
        workdir.path(),
        &format!("0.0.0.0:{port}"),
        &[("CONNECTOR_ALLOW_PLAINTEXT", "true".to_owned())],
    )
    .ready()
    .await;
    let (status, _) = tokio::task::spawn_blocking(move || allowed.signal("-TERM"))
        .await
        .unwrap();
    assert!(status.success());
}
