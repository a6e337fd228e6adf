//! Azurite, the Azure Blob Storage emulator (npm): one shared per test process, or a private one
//! with accounts of a test's own; and fake Azure endpoints for what Azurite cannot do (never
//! answering, answering every request with one Azure Storage error).

use std::{
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use tokio::{net::TcpListener, task::JoinHandle};

use crate::{
    ports::{free_port, wait_for_port},
    tools::tool_env,
};

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
