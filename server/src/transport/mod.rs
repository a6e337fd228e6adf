//! Transport: the tonic server with the connector service behind API-key authentication, the
//! standard health service and server reflection (v1 and v1alpha, so both current clients and
//! grpcurl 1.8 can describe the API).

mod auth;
mod callback;
mod console;
mod conversions;
mod deadline;
mod filter;
mod grpc;
mod names;
mod observe;
mod page_token;
mod refusal;
mod shed;
mod status;
mod unreadable;
pub(crate) mod waiting;
mod watch;

use std::{future::Future, time::Duration};

use connector_api::pb::connector_service_server::ConnectorServiceServer;
use tokio::net::TcpListener;
use tokio_stream::{StreamExt as _, wrappers::TcpListenerStream};
use tonic::service::interceptor::InterceptedService;
use tonic_health::ServingStatus;
use tower::Layer as _;

pub(crate) use console::CONSOLE_PATH;
pub(crate) use grpc::ConnectorApi;
pub(crate) use page_token::PageTokens;
pub use refusal::Refusal;

use crate::{
    access::ApiKey,
    domain::{Access, Authorizations, Availability, Events, Health, Lifecycle},
};

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reflection could not be built from the descriptor sets.
    #[error("cannot build server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The server failed while serving.
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// The server that answers while the database is awaited stopped on its own.
    #[error("the server waiting for the database stopped before it opened")]
    Stopped,
}

/// What the server needs to serve.
pub(crate) struct Serving {
    /// Create, list, update, reauthorize, delete.
    pub(crate) lifecycle: Lifecycle,
    /// OAuth 2.0 linking (the gRPC methods and the browser callback).
    pub(crate) authorizations: Authorizations,
    /// Handing out access and recording transfers.
    pub(crate) access: Access,
    /// The database check behind the health service.
    pub(crate) health: Health,
    /// The event log (listing and watching).
    pub(crate) events: Events,
    pub(crate) page_tokens: PageTokens,
    pub(crate) api_keys: Vec<ApiKey>,
    pub(crate) request_timeout: Duration,
    pub(crate) max_request_bytes: usize,
    pub(crate) health_check_interval: Duration,
    pub(crate) event_poll_interval: Duration,
    pub(crate) limits: crate::config::Limits,
    /// Serve the console at `/console/`.
    pub(crate) console: bool,
    /// Origins allowed to call over gRPC-Web from another origin (CORS); empty: none.
    pub(crate) cors_allowed_origins: Vec<String>,
    /// Where calls, watches and the database's health are counted.
    pub(crate) metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// TLS (and mTLS) for the port; `None`: plaintext.
    pub(crate) tls: Option<tonic::transport::ServerTlsConfig>,
}

const SERVICE_NAME: &str = "connector.v1.ConnectorService";

/// The path prefix of the connector service's methods.
const API_PATH_PREFIX: &str = "/connector.v1.ConnectorService/";

/// Serves until `shutdown` resolves, then finishes in-flight calls and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    serving: Serving,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    health
        .set_service_status(SERVICE_NAME, ServingStatus::Serving)
        .await;
    let health_watch = tokio::spawn(watch_health(
        health,
        serving.health,
        serving.metrics.clone(),
        serving.health_check_interval,
    ));

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(connector_api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // google.rpc error details, so grpcurl and buf can decode ErrorInfo and friends.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    let callback_authorizations = serving.authorizations.clone();
    // Long-lived event watches end when the server shuts down, so shutdown never waits on them.
    let (stop_watches, watches_stopped) = tokio::sync::watch::channel(false);
    let mut shutdown_started = watches_stopped.clone();
    let shutdown = async move {
        shutdown.await;
        let _ = stop_watches.send(true);
    };
    let limits = serving.limits;
    let feed = watch::EventFeed::start(
        serving.events.clone(),
        watch::WatchLimits {
            per_key: limits.max_watches_per_key,
            per_account: limits.max_watches_per_account,
            max_duration: limits.max_watch_duration,
        },
        serving.event_poll_interval,
        watches_stopped.clone(),
        serving.metrics.clone(),
    )
    .await;
    let api = ConnectorServiceServer::new(ConnectorApi::new(
        serving.lifecycle,
        serving.authorizations,
        serving.access,
        serving.events,
        serving.page_tokens,
        watches_stopped,
        feed,
    ))
    .max_decoding_message_size(serving.max_request_bytes);
    // The deadline applies to the connector service only: health and reflection are instant,
    // and a health `Watch` stream must be allowed to stay open.
    let api = unreadable::UnreadableLayer {
        max_request_bytes: serving.max_request_bytes,
    }
    .layer(api);
    let api = deadline::DeadlineLayer(serving.request_timeout).layer(api);
    // A call over the limit costs no decoding and no database (the key check before it is a
    // hash lookup).
    let api = shed::ShedLayer::new(limits.max_in_flight_requests).layer(api);
    let api = InterceptedService::new(api, auth::authenticate(&serving.api_keys));
    // Outermost, so refused keys and shed calls are counted and logged too.
    let api = observe::ObserveLayer(serving.metrics).layer(api);
    // gRPC-Web (browsers: the console) for this service only: the layer answers every other
    // HTTP/1.1 request 400, and the callback and the console are HTTP/1.1 pages.
    let api = tonic_web::GrpcWebLayer::new().layer(api);

    // gRPC, gRPC-Web, the OAuth 2.0 callback and the console share the port: HTTP/1.1
    // requests reach the callback and the console, gRPC-Web ones the services.
    let mut pages = callback::router(callback_authorizations);
    pages = pages.merge(if serving.console {
        console::router()
    } else {
        console::turned_off()
    });
    let routes = tonic::service::Routes::new(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(api)
        .into_axum_router()
        .merge(pages);
    // Preflights are answered before routing; other requests only gain the CORS headers.
    let browsers = tower::ServiceBuilder::new().option_layer(cors(&serving.cors_allowed_origins));
    let mut server = tonic::transport::Server::builder()
        .max_concurrent_streams(limits.max_concurrent_streams)
        .concurrency_limit_per_connection(limits.concurrency_per_connection)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .max_connection_age(limits.max_connection_age)
        .max_connection_age_grace(limits.max_connection_age_grace);
    if let Some(tls) = serving.tls {
        server = server.tls_config(tls)?;
    }
    // Every accepted connection gets TCP_NODELAY: tonic's own setting does not reach a listener
    // handed in as a stream, and an answer written in pieces would otherwise wait for the
    // client's delayed ACK (tens of milliseconds).
    let incoming = TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        })
    });
    let result = server
        .accept_http1(true)
        .layer(browsers)
        // Connector-service calls get their own span from `observe` (with the key, account
        // and connector); a second one per call would only cost.
        .trace_fn(|request| {
            let path = request.uri().path();
            if path.starts_with(API_PATH_PREFIX) {
                tracing::Span::none()
            } else {
                tracing::info_span!("request", path = %path)
            }
        })
        .add_routes(routes.into())
        .serve_with_incoming_shutdown(incoming, shutdown);
    // Shutdown waits for connections to finish, but never longer than the grace: a client
    // that neither finishes nor answers the GOAWAY must not keep the process alive.
    let grace = limits.shutdown_grace;
    let result = tokio::select! {
        result = result => result,
        () = async {
            let _ = shutdown_started.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(?grace, "connections still open after the shutdown grace; closing them");
            Ok(())
        }
    };
    health_watch.abort();
    Ok(result?)
}

/// CORS for gRPC-Web calls from the configured origins: the headers a gRPC-Web client sends,
/// and the status headers it must read. No credentials (cookies): calls carry the API key as
/// a bearer header. `None` without origins: a browser then allows same-origin calls only.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use http::{HeaderName, HeaderValue, Method, header};
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-grpc-web"),
                HeaderName::from_static("x-user-agent"),
                HeaderName::from_static("grpc-timeout"),
            ])
            .expose_headers([
                HeaderName::from_static("grpc-status"),
                HeaderName::from_static("grpc-message"),
                HeaderName::from_static("grpc-status-details-bin"),
            ])
            .max_age(Duration::from_secs(3600)),
    )
}

/// Reports NOT_SERVING while the domain's health check fails (the database does not answer),
/// SERVING again once it passes.
async fn watch_health(
    health: tonic_health::server::HealthReporter,
    checks: Health,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    let mut serving = true;
    loop {
        ticker.tick().await;
        let checked = checks.check(interval.max(Duration::from_secs(1))).await;
        metrics.set_database_up(checked.database == Availability::Up);
        let up = checked.serving();
        if up != serving {
            serving = up;
            let status = if up {
                tracing::info!("database reachable again: SERVING");
                ServingStatus::Serving
            } else {
                tracing::warn!("database unreachable: NOT_SERVING");
                ServingStatus::NotServing
            };
            health.set_service_status("", status).await;
            health.set_service_status(SERVICE_NAME, status).await;
        }
    }
}
