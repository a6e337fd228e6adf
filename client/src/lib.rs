//! `connector-client`: the thin client a migration orchestrator uses to talk to Connector
//! Service. It depends only on the API crate and tonic (no database, no server code).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use connector_client::{ConnectorClient, pb};
//!
//! let client = ConnectorClient::connect("http://127.0.0.1:50051", "csk_...").await?;
//! let types = client.list_connector_types(pb::ListConnectorTypesRequest {}).await?;
//! println!("{} connector types", types.connector_types.len());
//! # Ok(()) }
//! ```
//!
//! `https://` endpoints are verified against the system's root certificates; a private CA and
//! a client certificate (mTLS) are set with [`ConnectorClient::builder`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use connector_client::ConnectorClient;
//!
//! let client = ConnectorClient::builder("https://connectors.internal:50051", "csk_...")
//!     .ca_certificate_pem(std::fs::read("ca.pem")?)
//!     .client_identity_pem(std::fs::read("worker.pem")?, std::fs::read("worker.key")?)
//!     .connect()
//!     .await?;
//! # let _ = client; Ok(()) }
//! ```

#![forbid(unsafe_code)]

use connector_api::pb::connector_service_client::ConnectorServiceClient;
use tonic::{
    Request, Status,
    metadata::AsciiMetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

pub use connector_api::pb;
pub use tonic::{Code, Status as RpcStatus};
pub use tonic_types::{ErrorDetails, StatusExt};

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint is not a valid URI.
    #[error("invalid endpoint: {0}")]
    InvalidEndpoint(String),
    /// The API key cannot be sent as gRPC metadata.
    #[error("the API key contains characters that cannot be sent as metadata")]
    InvalidApiKey,
    /// The server could not be reached.
    #[error("cannot connect: {0}")]
    Connect(#[from] tonic::transport::Error),
}

/// Adds `authorization: Bearer <key>` to every call. `Debug` hides the key.
#[derive(Clone)]
pub struct BearerKey(AsciiMetadataValue);

impl std::fmt::Debug for BearerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerKey(<redacted>)")
    }
}

impl Interceptor for BearerKey {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A Connector Service client; cheap to clone, safe to share between tasks.
#[derive(Debug, Clone)]
pub struct ConnectorClient {
    inner: ConnectorServiceClient<InterceptedService<Channel, BearerKey>>,
}

/// A resuming watch of an account's connector events (see [`ConnectorClient::watch_events`]).
/// Dropping it stops the watch.
#[derive(Debug)]
pub struct EventWatch {
    events: tokio::sync::mpsc::Receiver<Result<pb::ConnectorEvent, Status>>,
    task: tokio::task::JoinHandle<()>,
}

impl EventWatch {
    /// The next event; `None` after a permanent error was returned.
    pub async fn next(&mut self) -> Option<Result<pb::ConnectorEvent, Status>> {
        self.events.recv().await
    }
}

impl Drop for EventWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Errors that retrying the same request cannot fix.
fn is_permanent(status: &Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::InvalidArgument
            | tonic::Code::NotFound
            | tonic::Code::PermissionDenied
            | tonic::Code::Unauthenticated
            | tonic::Code::FailedPrecondition
            | tonic::Code::Unimplemented
    )
}

/// The `google.rpc.ErrorInfo` reason of a failed call, if it carries one.
pub fn error_reason(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|info| info.reason)
}

macro_rules! rpcs {
    ($($(#[$doc:meta])* $method:ident($request:ty) -> $response:ty;)*) => {
        impl ConnectorClient {
            $(
                $(#[$doc])*
                pub async fn $method(&self, request: $request) -> Result<$response, Status> {
                    self.inner.clone().$method(request).await.map(tonic::Response::into_inner)
                }
            )*
        }
    };
}

/// How to reach a server: its endpoint, the API key, and for `https://` the certificates to
/// trust and to present (see [`ConnectorClient::builder`]). `Debug` hides the key.
pub struct ClientBuilder {
    endpoint: String,
    api_key: String,
    ca_certificate_pem: Option<Vec<u8>>,
    identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoint", &self.endpoint)
            .field("ca_certificate", &self.ca_certificate_pem.is_some())
            .field("client_identity", &self.identity_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Trusts this CA (PEM) for the server's certificate, instead of the system's roots.
    #[must_use]
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificate_pem = Some(pem.into());
        self
    }

    /// Presents this client certificate (PEM chain) and private key (PEM) to a server that
    /// requires mutual TLS.
    #[must_use]
    pub fn client_identity_pem(
        mut self,
        certificate: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity_pem = Some((certificate.into(), key.into()));
        self
    }

    /// Connects. An `https://` endpoint is verified against the CA given, or the system's
    /// roots; `http://` is plaintext (loopback, or a mesh that encrypts for us).
    pub async fn connect(self) -> Result<ConnectorClient, Error> {
        let mut endpoint = Endpoint::from_shared(self.endpoint.clone())
            .map_err(|_| Error::InvalidEndpoint(self.endpoint.clone()))?;
        if self.endpoint.starts_with("https://") {
            // rustls needs a process-wide provider when more than one is compiled in (as in a
            // program that also links ring); one installed by the program is kept.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let mut tls = ClientTlsConfig::new();
            tls = match self.ca_certificate_pem {
                Some(pem) => tls.ca_certificate(Certificate::from_pem(pem)),
                None => tls.with_native_roots(),
            };
            if let Some((certificate, key)) = self.identity_pem {
                tls = tls.identity(Identity::from_pem(certificate, key));
            }
            endpoint = endpoint.tls_config(tls)?;
        } else if self.ca_certificate_pem.is_some() || self.identity_pem.is_some() {
            return Err(Error::InvalidEndpoint(format!(
                "{}: certificates were given for a plaintext endpoint; use https://",
                self.endpoint
            )));
        }
        ConnectorClient::with_channel(endpoint.connect().await?, self.api_key)
    }
}

impl ConnectorClient {
    /// Connects to `endpoint` (for example `http://127.0.0.1:50051`, or `https://…` verified
    /// against the system's root certificates), sending `api_key` with every call.
    pub async fn connect(
        endpoint: impl Into<String>,
        api_key: impl AsRef<str>,
    ) -> Result<Self, Error> {
        Self::builder(endpoint, api_key).connect().await
    }

    /// A client with TLS settings: a private CA, a client certificate (mTLS).
    pub fn builder(endpoint: impl Into<String>, api_key: impl AsRef<str>) -> ClientBuilder {
        ClientBuilder {
            endpoint: endpoint.into(),
            api_key: api_key.as_ref().to_owned(),
            ca_certificate_pem: None,
            identity_pem: None,
        }
    }

    /// Watches an account's connector events after `after_cursor` (0: from the beginning),
    /// following new ones as they happen. When the stream breaks (a restart, a network
    /// failure) it reconnects, backing off up to two seconds, and resumes after the last cursor
    /// it delivered, so every event arrives exactly once and in order. A permanent error (bad
    /// request, no access) is delivered once, and the watch ends.
    pub fn watch_events(&self, parent: impl Into<String>, after_cursor: i64) -> EventWatch {
        let (sender, events) = tokio::sync::mpsc::channel(256);
        let inner = self.inner.clone();
        let parent = parent.into();
        let task = tokio::spawn(async move {
            let mut after = after_cursor;
            let mut backoff = std::time::Duration::from_millis(100);
            loop {
                let request = pb::WatchConnectorEventsRequest {
                    parent: parent.clone(),
                    after_cursor: after,
                };
                match inner.clone().watch_connector_events(request).await {
                    Ok(response) => {
                        let mut stream = response.into_inner();
                        loop {
                            match stream.message().await {
                                Ok(Some(event)) => {
                                    after = event.cursor;
                                    backoff = std::time::Duration::from_millis(100);
                                    if sender.send(Ok(event)).await.is_err() {
                                        return;
                                    }
                                }
                                Ok(None) => break,
                                Err(status) if is_permanent(&status) => {
                                    let _ = sender.send(Err(status)).await;
                                    return;
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    Err(status) if is_permanent(&status) => {
                        let _ = sender.send(Err(status)).await;
                        return;
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
            }
        });
        EventWatch { events, task }
    }

    /// Uses an existing channel (for custom TLS, timeouts or load balancing).
    pub fn with_channel(channel: Channel, api_key: impl AsRef<str>) -> Result<Self, Error> {
        let value = AsciiMetadataValue::try_from(format!("Bearer {}", api_key.as_ref()))
            .map_err(|_| Error::InvalidApiKey)?;
        Ok(Self {
            inner: ConnectorServiceClient::with_interceptor(channel, BearerKey(value)),
        })
    }
}

rpcs! {
    /// Lists every connector type.
    list_connector_types(pb::ListConnectorTypesRequest) -> pb::ListConnectorTypesResponse;
    /// Gets one connector type.
    get_connector_type(pb::GetConnectorTypeRequest) -> pb::ConnectorType;
    /// The connector type that serves a Microsoft service.
    resolve_connector_type(pb::ResolveConnectorTypeRequest) -> pb::ResolveConnectorTypeResponse;
    /// Creates a credential-based connector.
    create_connector(pb::CreateConnectorRequest) -> pb::Connector;
    /// Starts linking an OAuth 2.0 connector: the URL for the user's browser.
    start_authorization(pb::StartAuthorizationRequest) -> pb::StartAuthorizationResponse;
    /// Starts reauthorizing an OAuth 2.0 connector.
    start_reauthorization(pb::StartReauthorizationRequest) -> pb::StartReauthorizationResponse;
    /// Completes an authorization with the provider's redirect parameters.
    complete_authorization(pb::CompleteAuthorizationRequest) -> pb::Connector;
    /// Gets a connector.
    get_connector(pb::GetConnectorRequest) -> pb::Connector;
    /// Lists an account's connectors, one page at a time.
    list_connectors(pb::ListConnectorsRequest) -> pb::ListConnectorsResponse;
    /// Updates a connector's labels.
    update_connector(pb::UpdateConnectorRequest) -> pb::Connector;
    /// Reauthorizes a credential-based connector.
    reauthorize_connector(pb::ReauthorizeConnectorRequest) -> pb::Connector;
    /// Deletes a connector for good.
    delete_connector(pb::DeleteConnectorRequest) -> pb::DeleteConnectorResponse;
    /// Deletes every connector of a customer account.
    delete_account(pb::DeleteAccountRequest) -> pb::DeleteAccountResponse;
    /// Gets a short-lived credential for moving data.
    get_access_token(pb::GetAccessTokenRequest) -> pb::GetAccessTokenResponse;
    /// Gets a password connector's stored credentials (needs the `reveal` capability).
    reveal_connector_credentials(pb::RevealConnectorCredentialsRequest) -> pb::RevealConnectorCredentialsResponse;
    /// Lists an account's connector lifecycle events, oldest first.
    list_connector_events(pb::ListConnectorEventsRequest) -> pb::ListConnectorEventsResponse;
    /// Records data moved with a connector.
    record_transfer(pb::RecordTransferRequest) -> pb::Connector;
}
