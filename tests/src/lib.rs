//! Test support, written once: starting the real server on `127.0.0.1:0` over SQLite or a fresh
//! PostgreSQL database, a shared Azurite emulator, API keys, and assertions on rich gRPC errors.
//!
//! Tests talk to the server only through `connector-client` (and grpcurl / Python for the
//! cross-language checks). External tools come from `scripts/test` through environment
//! variables: `TEST_POSTGRES_URL`, `AZURITE_BLOB_BIN`, `GRPCURL_BIN`, `BUF_BIN`, `TEST_PYTHON`.

#![forbid(unsafe_code)]

use std::{
    collections::{BTreeSet, HashMap},
    io::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, OnceLock},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use chrono::Utc;
use connector_client::{ConnectorClient, pb};
use connector_server::{
    Config,
    access::{ApiKey, Scope},
    clock::ManualClock,
    config::MasterKeyConfig,
};
use sea_orm::{ConnectionTrait as _, Database};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

pub mod browser;
pub mod readme;
pub mod ssh;

pub use connector_client;
pub use connector_server;
pub use readme::readme_script;
pub use ssh::SshServer;

/// The API key every test server accepts for all accounts.
pub const ADMIN_KEY: &str = "test-admin-key";
/// An API key limited to [`SCOPED_ACCOUNT`].
pub const SCOPED_KEY: &str = "test-scoped-key";
/// The only account [`SCOPED_KEY`] may use.
pub const SCOPED_ACCOUNT: &str = "scoped-account";

/// Which database a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: a SQLite file in the data directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server named by `TEST_POSTGRES_URL`.
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each listed `async fn(Backend)`, in modules
/// `sqlite` and `postgres`, so every integration test runs on both databases.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A required environment variable set by `scripts/test`.
pub fn tool_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite with `scripts/test`, which installs and starts the tools the tests need")
    })
}

/// A unique customer account id for one test.
pub fn unique_account() -> String {
    format!("acct-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// `accounts/{unique account}`: a parent no other test uses.
pub fn unique_parent() -> String {
    format!("accounts/{}", unique_account())
}

// ---------------------------------------------------------------------------------------------
// Azurite

/// A storage account configured in the shared Azurite emulator, with its two keys.
#[derive(Debug, Clone)]
pub struct StorageAccount {
    /// Account name.
    pub name: String,
    /// Primary key, base64.
    pub key1: String,
    /// Secondary key, base64.
    pub key2: String,
}

/// The shared Azurite emulator of this test process.
#[derive(Debug)]
pub struct Azurite {
    port: u16,
    accounts: Vec<StorageAccount>,
    _process: Child,
}

/// How many storage accounts Azurite is started with.
pub const STORAGE_ACCOUNTS: usize = 16;

impl Azurite {
    /// Starts Azurite once per test process and returns it. The emulator is run under a shell
    /// that kills it when this process's end of its stdin closes, so it never outlives the tests.
    pub fn shared() -> &'static Azurite {
        static AZURITE: OnceLock<Azurite> = OnceLock::new();
        AZURITE.get_or_init(Azurite::start)
    }

    fn start() -> Azurite {
        Self::start_with(
            (0..STORAGE_ACCOUNTS)
                .map(|i| StorageAccount {
                    name: format!("store{i:02}"),
                    key1: BASE64.encode(format!("primary-key-of-store{i:02}-for-tests")),
                    key2: BASE64.encode(format!("secondary-key-of-store{i:02}-for-tests")),
                })
                .collect(),
        )
    }

    /// Starts a private Azurite with these accounts; it stops when dropped. (A server pointed
    /// at it sees storage accounts whose keys may differ from the shared emulator's: a key
    /// rotated by the customer.)
    pub fn start_with(accounts: Vec<StorageAccount>) -> Azurite {
        let binary = tool_env("AZURITE_BLOB_BIN");
        let accounts_env = accounts
            .iter()
            .map(|account| format!("{}:{}:{}", account.name, account.key1, account.key2))
            .collect::<Vec<_>>()
            .join(";");
        let workdir = tempfile::tempdir().expect("temp dir").keep();
        let port = free_port();
        let script = format!(
            "'{binary}' --blobHost 127.0.0.1 --blobPort {port} --location '{}' --skipApiVersionCheck --loose --silent --disableTelemetry & child=$!; cat >/dev/null; kill $child",
            workdir.display()
        );
        let process = Command::new("sh")
            .args(["-c", &script])
            .env("AZURITE_ACCOUNTS", accounts_env)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start azurite-blob");
        wait_for_port(port, Duration::from_secs(30));
        Azurite {
            port,
            accounts,
            _process: process,
        }
    }

    /// The Blob endpoint template for the server (`http://127.0.0.1:PORT/{account}`).
    pub fn endpoint_template(&self) -> String {
        format!("http://127.0.0.1:{}/{{account}}", self.port)
    }

    /// The Blob endpoint of one account.
    pub fn endpoint(&self, account: &str) -> String {
        format!("http://127.0.0.1:{}/{account}", self.port)
    }

    /// Storage account number `i`.
    pub fn account(&self, i: usize) -> &StorageAccount {
        &self.accounts[i]
    }

    /// Uses a SAS the way a migration does: creates a fresh container with it, and lists that
    /// container's blobs. Returns the first status other than success, or 201 when both worked.
    pub async fn use_sas(&self, account: &str, sas: &str) -> u16 {
        let container = format!("m{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let created = self
            .create_container_with_sas(account, &container, sas)
            .await;
        if created != 201 {
            return created;
        }
        let listed = reqwest::Client::new()
            .get(format!(
                "{}/{container}?restype=container&comp=list&{sas}",
                self.endpoint(account)
            ))
            .header("x-ms-version", "2021-08-06")
            .send()
            .await
            .expect("azurite answers")
            .status()
            .as_u16();
        if listed == 200 { 201 } else { listed }
    }

    /// Calls a service-level operation with a SAS: `list` (List Containers) or `properties`
    /// (Set Blob Service Properties, which changes CORS and retention settings). Returns the
    /// HTTP status.
    pub async fn service_call_with_sas(&self, account: &str, call: &str, sas: &str) -> u16 {
        let http = reqwest::Client::new();
        let request = match call {
            "list" => http.get(format!("{}/?comp=list&{sas}", self.endpoint(account))),
            _ => http
                .put(format!(
                    "{}/?restype=service&comp=properties&{sas}",
                    self.endpoint(account)
                ))
                .header("content-type", "application/xml")
                .body(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><StorageServiceProperties>\
                     <DeleteRetentionPolicy><Enabled>false</Enabled></DeleteRetentionPolicy>\
                     </StorageServiceProperties>",
                ),
        };
        request
            .header("x-ms-version", "2021-08-06")
            .send()
            .await
            .expect("azurite answers")
            .status()
            .as_u16()
    }

    /// Creates a container with a SAS query string; returns the HTTP status.
    pub async fn create_container_with_sas(
        &self,
        account: &str,
        container: &str,
        sas: &str,
    ) -> u16 {
        reqwest::Client::new()
            .put(format!(
                "{}/{container}?restype=container&{sas}",
                self.endpoint(account)
            ))
            .header("x-ms-version", "2021-08-06")
            .header("content-length", "0")
            .send()
            .await
            .expect("azurite answers")
            .status()
            .as_u16()
    }
}

/// An endpoint template (`http://127.0.0.1:PORT/{account}`) whose server accepts connections
/// and never answers, to exercise timeouts. It stops when the returned handle is dropped.
pub async fn hanging_endpoint() -> (String, HangingServer) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (
        format!("http://127.0.0.1:{port}/{{account}}"),
        HangingServer(task),
    )
}

/// An endpoint template whose server answers every request with the same Azure Storage error,
/// as Azure does in situations Azurite cannot produce (a storage firewall refusing our address,
/// key access disabled on the account). It stops when the returned handle is dropped.
pub async fn azure_error_endpoint(
    status: u16,
    code: &str,
    message: &str,
) -> (String, HangingServer) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let response = format!(
        "HTTP/1.1 {status} Refused\r\nx-ms-error-code: {code}\r\ncontent-type: application/xml\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut request = vec![0u8; 16 * 1024];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (
        format!("http://127.0.0.1:{port}/{{account}}"),
        HangingServer(task),
    )
}

/// Keeps a [`hanging_endpoint`] or an [`azure_error_endpoint`] alive.
#[derive(Debug)]
pub struct HangingServer(JoinHandle<()>);

impl Drop for HangingServer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A PostgreSQL cluster of a test's own, which the test may stop and start (a database
/// outage) without disturbing the shared one. Run as the `postgres` OS user when the tests run
/// as root, as `scripts/tools.sh` does. Stopped and removed when dropped.
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl PrivatePostgres {
    /// Creates and starts a cluster (`PG_BINDIR` from `scripts/test`).
    pub fn start() -> PrivatePostgres {
        let dir = std::env::temp_dir().join(format!("connector-outage-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let cluster = PrivatePostgres {
            port: free_port(),
            dir,
        };
        if Self::as_root() {
            cluster.run(
                "chown",
                &[
                    "-R",
                    "postgres:postgres",
                    &cluster.dir.display().to_string(),
                ],
            );
        }
        let data = cluster.data();
        cluster.pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "--no-instructions",
            ],
        );
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nfsync = off\n",
            cluster.port,
            cluster.dir.display()
        );
        cluster.run(
            "sh",
            &[
                "-c",
                &format!("printf \"{conf}\" >> {data}/postgresql.conf"),
            ],
        );
        cluster.start_again();
        cluster
    }

    /// `postgres://…` of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the cluster at once (`pg_ctl stop -m immediate`): clients lose their connections.
    pub fn stop(&self) {
        self.pg(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    /// Starts the stopped cluster again.
    pub fn start_again(&self) {
        let log = format!("{}/postgres.log", self.dir.display());
        self.pg(
            "pg_ctl",
            &["-D", &self.data(), "-l", &log, "-w", "-t", "60", "start"],
        );
    }

    fn data(&self) -> String {
        format!("{}/data", self.dir.display())
    }

    fn as_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
    }

    fn pg(&self, program: &str, args: &[&str]) {
        let program = format!("{}/{program}", tool_env("PG_BINDIR"));
        if Self::as_root() {
            let mut all = vec!["-u", "postgres", "--", program.as_str()];
            all.extend(args);
            self.run("runuser", &all);
        } else {
            self.run(&program, args);
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let output = Command::new(program)
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("{program}: {error}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let program = format!("{}/pg_ctl", tool_env("PG_BINDIR"));
        let mut command = if Self::as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--", &program]);
            command
        } else {
            Command::new(&program)
        };
        let _ = command
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .current_dir("/")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `connector-server` binary running in a working directory, its logs in files there.
#[derive(Debug)]
pub struct ServerBinary {
    /// The port it listens on.
    pub port: u16,
    child: Child,
    workdir: std::path::PathBuf,
}

impl ServerBinary {
    /// Starts the binary in `workdir`, listening on `127.0.0.1:port`, with `env` added and
    /// logs at `trace` in a file of `workdir`.
    pub fn start(workdir: &Path, port: u16, env: &[(&str, String)]) -> ServerBinary {
        Self::start_listening(workdir, &format!("127.0.0.1:{port}"), env)
    }

    /// Like [`Self::start`], listening on `listen` (`address:port`).
    pub fn start_listening(workdir: &Path, listen: &str, env: &[(&str, String)]) -> ServerBinary {
        let port = listen
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("address:port");
        // Logs go to a file: at `trace` they would fill a pipe nobody reads and stall the server.
        let log =
            std::fs::File::create(workdir.join(format!("server-{}.log", uuid::Uuid::new_v4())))
                .expect("log file");
        let child = Command::new(workspace_binary("connector-server"))
            .current_dir(workdir)
            .env("CONNECTOR_LISTEN", listen)
            // The most verbose level: secrets must stay out of every log line.
            .env("RUST_LOG", "trace")
            .env_remove("DATABASE_URL")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start connector-server");
        ServerBinary {
            child,
            port,
            workdir: workdir.to_owned(),
        }
    }

    /// Waits until it serves (plaintext health check), for 30 s at most.
    pub async fn ready(self) -> Self {
        wait_until_serving(
            &format!("http://127.0.0.1:{}", self.port),
            Duration::from_secs(30),
        )
        .await;
        self
    }

    /// Sends a signal and waits for the process to end; returns its status and logs.
    pub fn signal(self, signal: &str) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        self.exit_within(Duration::from_secs(20))
    }

    /// Waits up to `limit` for the process to end by itself (a refused start); returns its
    /// status and logs.
    pub fn exit_within(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Every log file of this working directory: the runs before this one too.
                let mut logs = String::new();
                for entry in std::fs::read_dir(&self.workdir).expect("workdir").flatten() {
                    if entry.file_name().to_string_lossy().ends_with(".log") {
                        logs += &std::fs::read_to_string(entry.path()).unwrap_or_default();
                    }
                }
                return (status, logs);
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("server did not stop within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Waits until a server at `endpoint` answers health checks: it is listening and done starting
/// (a process binds its port before it has created its files and opened its database).
pub async fn wait_until_serving(endpoint: &str, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let answered = async {
            let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
                .ok()?
                .connect()
                .await
                .ok()?;
            tonic_health::pb::health_client::HealthClient::new(channel)
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .ok()
        };
        if tokio::time::timeout(Duration::from_secs(2), answered)
            .await
            .ok()
            .flatten()
            .is_some()
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{endpoint} is not serving after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port that was free a moment ago.
///
/// Never the same port twice in one test process: tests run in parallel, and a port handed to
/// one helper process (ChromeDriver, wsgidav, moto) is free again until that process binds it,
/// so the OS could hand it to another test meanwhile.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("bind an ephemeral port");
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// Waits until something accepts connections on a loopback port (a startup, not a clock).
pub fn wait_for_port(port: u16, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on port {port} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A WebDAV server (wsgidav, from PyPI) on a free loopback port, serving an empty directory
/// with HTTP Basic users. Stopped when dropped.
#[derive(Debug)]
pub struct WebDavServer {
    /// Its port.
    pub port: u16,
    process: Child,
    dir: tempfile::TempDir,
}

impl WebDavServer {
    /// Starts one accepting `users` (name, password).
    pub fn start(users: &[(&str, &str)]) -> WebDavServer {
        Self::start_on(free_port(), users, tempfile::tempdir().expect("temp dir"))
    }

    fn start_on(port: u16, users: &[(&str, &str)], dir: tempfile::TempDir) -> WebDavServer {
        let root = dir.path().join("root");
        // A collection below the root too (`/dav/`), for URLs with a path.
        std::fs::create_dir_all(root.join("dav")).expect("root");
        let users: String = users
            .iter()
            .map(|(name, password)| {
                format!("      \"{name}\":\n        password: \"{password}\"\n")
            })
            .collect();
        let config = dir.path().join("wsgidav.yaml");
        std::fs::write(
            &config,
            format!(
                "host: 127.0.0.1\nport: {port}\nverbose: 0\nprovider_mapping:\n  \"/\": \"{}\"\n\
                 http_authenticator:\n  domain_controller: null\n  accept_basic: true\n  \
                 accept_digest: false\n  default_to_digest: false\n\
                 simple_dc:\n  user_mapping:\n    \"*\":\n{users}",
                root.display()
            ),
        )
        .expect("wsgidav config");
        let process = Command::new(tool_env("WSGIDAV_BIN"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wsgidav");
        wait_for_port(port, Duration::from_secs(30));
        WebDavServer { port, process, dir }
    }

    /// The base URL of its root collection.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Stops it and starts it again on the same port with other users (a password changed at
    /// the server).
    pub fn restart_with(mut self, users: &[(&str, &str)]) -> WebDavServer {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let port = self.port;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        // Wait for the port to be free again.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "port {port} stays busy"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self::start_on(port, users, dir)
    }
}

impl Drop for WebDavServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// An AWS access key of an IAM user at [`Moto`].
#[derive(Debug, Clone)]
pub struct AwsKey {
    /// The user's ARN.
    pub arn: String,
    /// Access key id.
    pub id: String,
    /// Secret access key.
    pub secret: String,
}

/// moto's server mode (PyPI) as STS and IAM on a free loopback port, with request signing
/// enforced: users `alice` and `bob` (one account, `123456789012`) are created while moto still
/// accepts unsigned calls, each with an access key and a policy allowing
/// `sts:GetSessionToken`; every later call must be signed with a real key. Stopped when dropped.
#[derive(Debug)]
pub struct Moto {
    /// Its base URL.
    pub url: String,
    /// Alice's key.
    pub alice: AwsKey,
    /// Bob's key (same account).
    pub bob: AwsKey,
    process: Child,
}

/// The calls `Moto::start` makes before moto starts checking signatures.
const MOTO_SETUP_CALLS: usize = 6;

const MOTO_SETUP: &str = r#"
import json, sys, boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="setup", aws_secret_access_key="setup")
policy = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["sts:GetSessionToken", "sts:GetCallerIdentity"], "Resource": "*"}]})
keys = {}
for name in ("alice", "bob"):
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.put_user_policy(UserName=name, PolicyName="sessions", PolicyDocument=policy)
    keys[name] = {"arn": arn, "id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
print(json.dumps(keys))
"#;

impl Moto {
    /// Starts moto and creates the users.
    pub fn start() -> Moto {
        let port = free_port();
        let process = Command::new(tool_env("MOTO_SERVER_BIN"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", MOTO_SETUP_CALLS.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        wait_for_port(port, Duration::from_secs(60));
        let url = format!("http://127.0.0.1:{port}");
        let output = Command::new(tool_env("TEST_PYTHON"))
            .args(["-c", MOTO_SETUP, &url])
            .output()
            .expect("run the moto setup");
        assert!(
            output.status.success(),
            "moto setup failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let keys: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the keys as JSON");
        let key = |name: &str| AwsKey {
            arn: keys[name]["arn"].as_str().expect("arn").to_owned(),
            id: keys[name]["id"].as_str().expect("id").to_owned(),
            secret: keys[name]["secret"].as_str().expect("secret").to_owned(),
        };
        Moto {
            alice: key("alice"),
            bob: key("bob"),
            url,
            process,
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Databases

/// Creates an empty PostgreSQL database and returns its URL.
pub async fn fresh_postgres_database() -> String {
    let admin_url = tool_env("TEST_POSTGRES_URL");
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(admin_url.as_str())
        .await
        .expect("connect to TEST_POSTGRES_URL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    admin.close().await.ok();
    let (base, _) = admin_url.rsplit_once('/').expect("URL has a database path");
    format!("{base}/{name}")
}

/// Drops a PostgreSQL database, disconnecting its users first.
pub async fn drop_postgres_database(url: &str) {
    let admin_url = tool_env("TEST_POSTGRES_URL");
    let name = url.rsplit_once('/').expect("URL has a database path").1;
    let admin = Database::connect(admin_url.as_str())
        .await
        .expect("connect to TEST_POSTGRES_URL");
    admin
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop test database");
    admin.close().await.ok();
}

// ---------------------------------------------------------------------------------------------
// The server

/// How to start a test server; defaults are sensible for most tests.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Database backend.
    pub backend: Backend,
    /// Blob endpoint template; `None` means the shared Azurite.
    pub azure_blob_endpoint: Option<String>,
    /// Configure the test API keys (else the server generates an admin key file).
    pub configure_api_keys: bool,
    /// Configure a master key explicitly (always for PostgreSQL; for SQLite `false` exercises
    /// the generated key file).
    pub configure_master_key: bool,
    /// Largest request message accepted.
    pub max_request_bytes: Option<usize>,
    /// How often health checks the database.
    pub health_check_interval: Option<Duration>,
    /// Timeout of each request to a cloud service.
    pub provider_timeout: Option<Duration>,
    /// Deadline of each RPC.
    pub request_timeout: Option<Duration>,
    /// OAuth 2.0: identity platform and Graph base URLs, app registrations, return URLs.
    pub oauth: Option<OAuthOptions>,
    /// Share another test server's database and master key (a second process of one
    /// deployment).
    pub share_database_of: Option<(String, Option<String>)>,
    /// Tries of a revocation before it is `FAILED`.
    pub revocation_max_attempts: Option<u32>,
    /// How often the revocation worker polls (default 50 ms).
    pub revocation_poll_interval: Option<Duration>,
    /// Use this clock (another server's, so one move moves both) instead of a new one.
    pub clock: Option<ManualClock>,
    /// Last changes to the configuration, for settings no other option covers.
    pub configure: Option<ConfigHook>,
}

/// A change to a test server's configuration (see [`ServerOptions::configure`]).
#[derive(Clone)]
pub struct ConfigHook(pub Arc<dyn Fn(&mut Config) + Send + Sync>);

impl ConfigHook {
    /// A hook running `change`.
    pub fn new(change: impl Fn(&mut Config) + Send + Sync + 'static) -> Self {
        Self(Arc::new(change))
    }
}

impl std::fmt::Debug for ConfigHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigHook")
    }
}

/// OAuth 2.0 settings of a test server.
#[derive(Clone)]
pub struct OAuthOptions {
    /// Identity platform base URL (the emulator's).
    pub login_base: String,
    /// Graph base URL (the emulator's).
    pub graph_base: String,
    /// App registrations.
    pub apps: Vec<(&'static str, connector_server::config::OAuthAppConfig)>,
    /// Allowed return URLs.
    pub return_urls: Vec<String>,
}

impl std::fmt::Debug for OAuthOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthOptions")
            .field("login_base", &self.login_base)
            .field("return_urls", &self.return_urls)
            .finish_non_exhaustive()
    }
}

impl ServerOptions {
    /// Defaults for a backend.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            azure_blob_endpoint: None,
            configure_api_keys: true,
            configure_master_key: backend == Backend::Postgres,
            max_request_bytes: None,
            health_check_interval: None,
            provider_timeout: None,
            request_timeout: None,
            oauth: None,
            share_database_of: None,
            revocation_max_attempts: None,
            revocation_poll_interval: None,
            clock: None,
            configure: None,
        }
    }
}

/// A server started in this process on `127.0.0.1:0`, with its data directory, database, clock
/// and keys. It can be stopped and started again on the same data.
#[derive(Debug)]
pub struct TestServer {
    /// The options it was started with.
    pub options: ServerOptions,
    /// Its injected clock; tests move it.
    pub clock: ManualClock,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its database URL (`sqlite://…` or `postgres://…`).
    pub database_url: String,
    /// The master key in use (base64), when configured.
    pub master_key: Option<String>,
    address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), connector_server::Error>>>,
    _data: Arc<tempfile::TempDir>,
}

/// A random base64 master key.
pub fn random_master_key() -> String {
    let key: [u8; 32] = std::array::from_fn(|_| rand_byte());
    BASE64.encode(key)
}

fn rand_byte() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

impl TestServer {
    /// Starts a server with default options on `backend`.
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(ServerOptions::new(backend)).await
    }

    /// Starts a server with `options`.
    pub async fn start_with(options: ServerOptions) -> TestServer {
        let data = Arc::new(tempfile::tempdir().expect("temp dir"));
        let data_dir = data.path().to_owned();
        let (database_url, master_key) = match &options.share_database_of {
            Some((url, key)) => (url.clone(), key.clone()),
            None => (
                match options.backend {
                    Backend::Sqlite => connector_server::persistence::Store::sqlite_url(&data_dir),
                    Backend::Postgres => fresh_postgres_database().await,
                },
                options.configure_master_key.then(random_master_key),
            ),
        };
        let clock = options
            .clock
            .clone()
            .unwrap_or_else(|| ManualClock::new(Utc::now()));
        let mut server = TestServer {
            options,
            clock,
            data_dir,
            database_url,
            master_key,
            address: "127.0.0.1:0".parse().expect("address"),
            shutdown: None,
            task: None,
            _data: data,
        };
        server.boot().await.expect("test server starts");
        server
    }

    /// The configuration this server runs with.
    pub fn config(&self) -> Config {
        let mut config = Config::new(&self.data_dir);
        config.database_url = Some(self.database_url.clone());
        // Many test servers share one PostgreSQL server: keep each pool small.
        config.database_max_connections = 4;
        config.clock = Arc::new(self.clock.clone());
        let azure_blob_endpoint = self
            .options
            .azure_blob_endpoint
            .clone()
            .unwrap_or_else(|| Azurite::shared().endpoint_template());
        config
            .types
            .set("azure-blob-storage", "endpoint", azure_blob_endpoint);
        config.master_key = self.master_key.clone().map(|key| MasterKeyConfig {
            id: "test-key".to_owned(),
            key_base64: key.into(),
        });
        if self.options.configure_api_keys {
            config.api_keys = vec![
                ApiKey {
                    id: "admin".to_owned(),
                    sha256: ApiKey::hash(ADMIN_KEY),
                    scope: Scope::AllAccounts,
                    capabilities: ApiKey::all_capabilities(),
                },
                ApiKey {
                    id: "scoped".to_owned(),
                    sha256: ApiKey::hash(SCOPED_KEY),
                    scope: Scope::Accounts(BTreeSet::from([SCOPED_ACCOUNT.to_owned()])),
                    capabilities: ApiKey::all_capabilities(),
                },
            ];
        }
        if let Some(bytes) = self.options.max_request_bytes {
            config.max_request_bytes = bytes;
        }
        if let Some(interval) = self.options.health_check_interval {
            config.health_check_interval = interval;
        }
        if let Some(timeout) = self.options.provider_timeout {
            config.provider_timeout = timeout;
        }
        if let Some(timeout) = self.options.request_timeout {
            config.request_timeout = timeout;
        }
        if let Some(attempts) = self.options.revocation_max_attempts {
            config.revocation_max_attempts = attempts;
        }
        // The revocation worker reads the injected clock; polling often lets it see a clock
        // the test moved without the test waiting long.
        config.revocation_poll_interval = self
            .options
            .revocation_poll_interval
            .unwrap_or(Duration::from_millis(50));
        if let Some(oauth) = &self.options.oauth {
            for (type_id, app) in &oauth.apps {
                config.set_oauth_app(type_id, app.clone());
                if MICROSOFT_TYPES.contains(type_id) {
                    config
                        .types
                        .set(type_id, "login_url", oauth.login_base.clone());
                    config
                        .types
                        .set(type_id, "graph_url", oauth.graph_base.clone());
                }
            }
            config.return_urls = oauth.return_urls.clone();
        }
        if let Some(ConfigHook(configure)) = &self.options.configure {
            configure(&mut config);
        }
        config
    }

    /// Starts the server with [`Self::config`]; an error means it refused to start.
    pub async fn boot(&mut self) -> Result<(), String> {
        self.boot_with(self.config()).await
    }

    /// Starts the server with a given configuration.
    pub async fn boot_with(&mut self, config: Config) -> Result<(), String> {
        assert!(self.task.is_none(), "server already running");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        self.address = listener.local_addr().expect("local address");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let mut task = tokio::spawn(connector_server::run(listener, config, async {
            let _ = stopped.await;
        }));
        // Ready when the health service answers, or failed when `run` returned early.
        loop {
            tokio::select! {
                result = &mut task => {
                    return Err(match result {
                        Ok(Ok(())) => "server stopped right away".to_owned(),
                        Ok(Err(error)) => error.to_string(),
                        Err(panic) => format!("server panicked: {panic}"),
                    });
                }
                ready = self.health_status() => {
                    if ready.is_ok() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        self.shutdown = Some(shutdown);
        self.task = Some(task);
        Ok(())
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }

    /// Stops and starts the server on the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.boot().await.expect("server restarts");
    }

    /// Options for a second server process sharing this one's database and master key.
    pub fn sharing_options(&self) -> ServerOptions {
        let mut options = self.options.clone();
        options.share_database_of = Some((self.database_url.clone(), self.master_key.clone()));
        options
    }

    /// The OAuth 2.0 redirect URI of this server.
    pub fn redirect_uri(&self) -> String {
        format!("http://{}/oauth/callback", self.address)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A client with the admin key.
    pub async fn client(&self) -> ConnectorClient {
        self.client_with_key(ADMIN_KEY).await
    }

    /// A client with any key.
    pub async fn client_with_key(&self, key: &str) -> ConnectorClient {
        ConnectorClient::connect(self.endpoint(), key)
            .await
            .expect("connect")
    }

    /// The health status of the whole server (service "").
    pub async fn health_status(&self) -> Result<i32, Status> {
        let channel = tonic::transport::Endpoint::from_shared(self.endpoint())
            .expect("endpoint")
            .connect()
            .await
            .map_err(|error| Status::unavailable(error.to_string()))?;
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let response = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await?;
        Ok(response.into_inner().status)
    }

    /// Runs a SQL query that returns one integer (test inspection of what is at rest).
    pub async fn query_i64(&self, sql: &str) -> i64 {
        let db = Database::connect(self.database_url.as_str())
            .await
            .expect("connect");
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await
            .expect("query")
            .expect("one row");
        let value: i64 = row.try_get_by_index(0).expect("an integer");
        db.close().await.ok();
        value
    }

    /// Runs a SQL query that returns one text value.
    pub async fn query_string(&self, sql: &str) -> String {
        let db = Database::connect(self.database_url.as_str())
            .await
            .expect("connect");
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await
            .expect("query")
            .expect("one row");
        let value: String = row.try_get_by_index(0).expect("a text value");
        db.close().await.ok();
        value
    }

    /// Runs a SQL query and returns the first column of every row as bytes.
    pub async fn query_blobs(&self, sql: &str) -> Vec<Vec<u8>> {
        let db = Database::connect(self.database_url.as_str())
            .await
            .expect("connect");
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await
            .expect("query");
        db.close().await.ok();
        rows.iter()
            .map(|row| row.try_get_by_index::<Vec<u8>>(0).expect("a blob"))
            .collect()
    }

    /// Marks a connector deauthorized (reason REVOKED) directly in the database, as the lifecycle
    /// rules of a later issue will.
    pub async fn deauthorize_in_database(&self, name: &str) {
        use connector_server::clock::Clock as _;
        let id = name.rsplit('/').next().expect("a connector name");
        self.execute_sql(&format!(
            "UPDATE connector SET state = 'DEAUTHORIZED', deauthorization_reason = 'REVOKED', \
             deauthorize_time = {}, revision = revision + 1 WHERE id = '{id}'",
            self.clock.now().timestamp_micros()
        ))
        .await;
    }

    /// Writes `count` authorized Azure connectors straight into the database (more than
    /// Azurite's few storage accounts could link), with the given inactivity deadline, in
    /// statements of 1000 rows.
    pub async fn seed_connectors(&self, account: &str, count: usize, inactivity_deadline: i64) {
        let db = Database::connect(self.database_url.as_str())
            .await
            .expect("connect");
        let ids: Vec<String> = (0..count)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        for (chunk_number, chunk) in ids.chunks(1000).enumerate() {
            let rows: Vec<String> = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let n = chunk_number * 1000 + i;
                    format!(
                        "('{id}', '{account}', 'azure-blob-storage', 'seeded {n}', 'AUTHORIZED', \
                         NULL, NULL, 'seeded{n:06}', 'seeded{n:06}', '{{}}', 1, 1, 1, NULL, 1, \
                         {inactivity_deadline})"
                    )
                })
                .collect();
            db.execute_unprepared(&format!(
                "INSERT INTO connector (id, account, connector_type, display_name, state, \
                 deauthorization_reason, deauthorize_time, external_account_id, \
                 external_account_label, labels, create_time, update_time, authorize_time, \
                 last_transfer_time, revision, inactivity_deadline) VALUES {}",
                rows.join(", ")
            ))
            .await
            .expect("seed connectors");
        }
        db.close().await.ok();
    }

    /// Runs SQL statements against the server's database (for tampering tests).
    pub async fn execute_sql(&self, sql: &str) {
        let db = Database::connect(self.database_url.as_str())
            .await
            .expect("connect");
        db.execute_unprepared(sql).await.expect("execute");
        db.close().await.ok();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Requests and assertions

/// A `CreateConnectorRequest` for an Azure storage account.
pub fn azure_create(
    parent: &str,
    account: &StorageAccount,
    display_name: &str,
) -> pb::CreateConnectorRequest {
    azure_create_with_key(parent, &account.name, &account.key1, display_name)
}

/// A `CreateConnectorRequest` for an Azure storage account with an explicit key.
pub fn azure_create_with_key(
    parent: &str,
    account: &str,
    key: &str,
    display_name: &str,
) -> pb::CreateConnectorRequest {
    pb::CreateConnectorRequest {
        parent: parent.to_owned(),
        connector: Some(pb::Connector {
            connector_type: "connectorTypes/azure-blob-storage".to_owned(),
            display_name: display_name.to_owned(),
            ..Default::default()
        }),
        credentials: Some(azure_credentials(account, key)),
    }
}

/// Azure account key credentials.
pub fn azure_credentials(account: &str, key: &str) -> pb::Credentials {
    pb::Credentials {
        kind: Some(pb::credentials::Kind::AzureStorageAccountKey(
            pb::AzureStorageAccountKey {
                account_name: account.to_owned(),
                account_key: key.to_owned(),
            },
        )),
    }
}

/// Credentials as named fields (`Credentials.fields`), for any credential type.
pub fn named_credentials(values: &[(&str, &str)]) -> pb::Credentials {
    pb::Credentials {
        kind: Some(pb::credentials::Kind::Fields(pb::CredentialFields {
            values: values
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        })),
    }
}

/// A `CreateConnectorRequest` for connector type `connector_type` (an id such as `webdav`).
pub fn create_request(
    parent: &str,
    connector_type: &str,
    display_name: &str,
    credentials: pb::Credentials,
) -> pb::CreateConnectorRequest {
    pb::CreateConnectorRequest {
        parent: parent.to_owned(),
        connector: Some(pb::Connector {
            connector_type: format!("connectorTypes/{connector_type}"),
            display_name: display_name.to_owned(),
            ..Default::default()
        }),
        credentials: Some(credentials),
    }
}

/// Asserts a status code and ErrorInfo reason; returns the ErrorInfo metadata.
#[track_caller]
pub fn assert_error(status: &Status, code: Code, reason: &str) -> HashMap<String, String> {
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "unexpected reason in {status:?}");
    assert!(!info.domain.is_empty());
    info.metadata
}

/// The fields named by the BadRequest violations of a status.
pub fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad_request| {
            bad_request
                .field_violations
                .into_iter()
                .map(|violation| violation.field)
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts INVALID_ARGUMENT with a violation on `field`.
#[track_caller]
pub fn assert_invalid_field(status: &Status, field: &str) {
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "unexpected status: {status:?}"
    );
    let fields = violated_fields(status);
    assert!(
        fields.iter().any(|f| f == field),
        "no violation on `{field}` in {fields:?} ({status:?})"
    );
}

/// Reads a file's bytes (for at-rest checks).
pub fn read_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// Whether `haystack` contains `needle`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Path of a workspace binary (built by `scripts/test` before the tests run).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/<test> → target/debug/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(name))
        .expect("target directory");
    assert!(
        path.exists(),
        "{} is missing: `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// Writes a file (test configuration).
pub fn write_file(path: &Path, content: &str) {
    let mut file = std::fs::File::create(path).expect("create file");
    file.write_all(content.as_bytes()).expect("write file");
}

// ---------------------------------------------------------------------------------------------
// OAuth 2.0

/// The return URL every OAuth test server allows.
pub const RETURN_URL: &str = "https://orchestrator.example/connectors/done";

/// A test server wired to a fresh identity emulator, with apps for the three OAuth types.
#[derive(Debug)]
pub struct OAuthWorld {
    /// The identity platform and Graph emulator.
    pub emulator: identity_emulator::Emulator,
    /// The server.
    pub server: TestServer,
}

impl OAuthWorld {
    /// Starts an emulator and a server using it.
    pub async fn start(backend: Backend) -> OAuthWorld {
        Self::start_with_revocation(backend, false).await
    }

    /// Like [`Self::start`]; with `revocation`, the apps use the emulator's RFC 7009 endpoint.
    pub async fn start_with_revocation(backend: Backend, revocation: bool) -> OAuthWorld {
        Self::start_customized(backend, revocation, |_| {}).await
    }

    /// Like [`Self::start_with_revocation`], with server options changed by `customize`.
    pub async fn start_customized(
        backend: Backend,
        revocation: bool,
        customize: impl FnOnce(&mut ServerOptions),
    ) -> OAuthWorld {
        let emulator = identity_emulator::Emulator::start()
            .await
            .expect("emulator");
        let mut options = ServerOptions::new(backend);
        let revocation_url = revocation.then(|| emulator.revoke_url());
        options.oauth = Some(oauth_options(&emulator, revocation_url));
        customize(&mut options);
        let server = TestServer::start_with(options).await;
        emulator
            .add_redirect_uri(
                identity_emulator::fixtures::CLIENT_ID,
                &server.redirect_uri(),
            )
            .expect("register the redirect URI");
        OAuthWorld { emulator, server }
    }

    /// Like [`Self::start`], on a server that opted in to completing authorizations at its
    /// callback after the user confirms (`callback_completes_authorizations`).
    pub async fn start_confirming(backend: Backend) -> OAuthWorld {
        Self::start_customized(backend, false, |options| {
            options.configure = Some(ConfigHook::new(|config| {
                config.callback_completes_authorizations = true;
            }));
        })
        .await
    }

    /// Starts a second server process on the same database and emulator.
    pub async fn second_server(&self) -> TestServer {
        let server = TestServer::start_with(self.server.sharing_options()).await;
        self.emulator
            .add_redirect_uri(
                identity_emulator::fixtures::CLIENT_ID,
                &server.redirect_uri(),
            )
            .expect("register the redirect URI");
        server
    }

    /// Starts an authorization and returns its URL.
    pub async fn authorization_url(&self, parent: &str, connector_type: &str) -> String {
        self.server
            .client()
            .await
            .start_authorization(pb::StartAuthorizationRequest {
                parent: parent.to_owned(),
                connector_type: connector_type.to_owned(),
                ..Default::default()
            })
            .await
            .expect("started")
            .authorization_url
    }

    /// Links a connector: starts an authorization, signs in at the emulator as `account`
    /// (a user principal name), and completes it through `CompleteAuthorization`.
    pub async fn link(
        &self,
        parent: &str,
        connector_type: &str,
        account: &str,
    ) -> Result<pb::Connector, Status> {
        let client = self.server.client().await;
        let started = client
            .start_authorization(pb::StartAuthorizationRequest {
                parent: parent.to_owned(),
                connector_type: connector_type.to_owned(),
                ..Default::default()
            })
            .await?;
        let redirect = self
            .emulator
            .complete_authorization(&started.authorization_url, account)
            .expect("the emulator signs in");
        client
            .complete_authorization(callback_request(&redirect))
            .await
    }
}

/// The Microsoft OAuth 2.0 types: their endpoints are the identity platform's and Graph's.
pub const MICROSOFT_TYPES: [&str; 3] = [
    "office-365",
    "onedrive-consumer",
    "onedrive-for-business-user",
];

/// The emulator settings for a server: every OAuth type uses the emulator's fixture client.
pub fn oauth_options(
    emulator: &identity_emulator::Emulator,
    revocation_url: Option<String>,
) -> OAuthOptions {
    use connector_server::config::OAuthAppConfig;
    let app = || OAuthAppConfig {
        client_id: identity_emulator::fixtures::CLIENT_ID.to_owned(),
        client_secret: identity_emulator::fixtures::CLIENT_SECRET.to_owned().into(),
        tenant: None,
        scopes: None,
        revocation_url: revocation_url.clone(),
        authorize_url: None,
        token_url: None,
        identity_url: None,
        issuer: None,
    };
    OAuthOptions {
        login_base: emulator.base_url().to_owned(),
        graph_base: emulator.base_url().to_owned(),
        apps: vec![
            ("onedrive-consumer", app()),
            ("onedrive-for-business-user", app()),
            ("office-365", app()),
        ],
        return_urls: vec![RETURN_URL.to_owned()],
    }
}

/// A `CompleteAuthorizationRequest` from the provider's redirect (the `Location` it sent the
/// browser to).
pub fn callback_request(redirect: &str) -> pb::CompleteAuthorizationRequest {
    let url = reqwest::Url::parse(redirect).expect("a redirect URL");
    let get = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    pb::CompleteAuthorizationRequest {
        state: get("state"),
        code: get("code"),
        error: get("error"),
        error_description: get("error_description"),
        tenant: get("tenant"),
        admin_consent: get("admin_consent"),
        iss: get("iss"),
    }
}

/// The browser's part at a callback that asks for confirmation: opens `redirect` (the
/// provider's redirect to the callback), checks it is the confirmation page naming `account`,
/// and submits it with `decision` (`confirm` or `cancel`). Returns the answer to the submission.
pub async fn confirm_at_callback(
    redirect: &str,
    account: &str,
    decision: &str,
) -> reqwest::Response {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let shown = http.get(redirect).send().await.expect("callback answers");
    assert_eq!(shown.status().as_u16(), 200);
    let page = shown.text().await.unwrap();
    assert!(page.contains("Confirm the link"), "{page}");
    assert!(
        page.contains(&format!("<strong id=\"account\">{account}</strong>")),
        "the page names the customer account: {page}"
    );
    let callback = redirect.split('?').next().unwrap();
    http.post(callback)
        .form(&[
            ("state", query_param(redirect, "state").unwrap_or_default()),
            ("code", query_param(redirect, "code").unwrap_or_default()),
            ("decision", decision.to_owned()),
        ])
        .send()
        .await
        .expect("callback answers")
}

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

/// A second `connector-server` process (the real binary) started in `dir` with the config file
/// `config` (its database) and `master_key`, listening on a free loopback port, serving once
/// this returns; `stderr` gets its logs at `rust_log`. Kill it when done.
pub async fn start_second_process(
    dir: &Path,
    config: &Path,
    master_key: &str,
    rust_log: &str,
    stderr: Stdio,
) -> (Child, String) {
    let port = free_port();
    let second = Command::new(workspace_binary("connector-server"))
        .current_dir(dir)
        .env("CONNECTOR_CONFIG", config)
        .env("CONNECTOR_LISTEN", format!("127.0.0.1:{port}"))
        .env("CONNECTOR_MASTER_KEY", master_key)
        .env("CONNECTOR_MASTER_KEY_ID", "test-key")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start the second process");
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_until_serving(&endpoint, Duration::from_secs(30)).await;
    (second, endpoint)
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

/// A query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}
