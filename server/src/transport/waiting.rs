//! What the port answers while the server waits for its database at start-up.
//!
//! A replica started beside a database that is restarting (or not up yet) should not exit: its
//! supervisor would only start it again. It binds its port, reports health `NOT_SERVING` (so a
//! load balancer or Kubernetes keeps traffic away) and answers every other call `UNAVAILABLE`
//! with `DATABASE_UNAVAILABLE`, which clients retry. Once the database opens, this server stops
//! accepting and hands the listener to the real one.

use std::{future::Future, time::Duration};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;

use super::{Error, SERVICE_NAME};
use crate::domain;

/// Serves health `NOT_SERVING` on `listener` until `ready` resolves; returns the listener, for
/// the real server, and what `ready` gave.
pub(crate) async fn until<T>(
    listener: TcpListener,
    tls: Option<tonic::transport::ServerTlsConfig>,
    ready: impl Future<Output = T>,
) -> Result<(TcpListener, T), Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    health
        .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
        .await;
    // Every path but health's, gRPC's `UNIMPLEMENTED` fallback included, answers UNAVAILABLE.
    let routes = tonic::service::Routes::new(health_service)
        .into_axum_router()
        .fallback(|| async {
            let status: tonic::Status = domain::Error::StorageUnavailable.into();
            status.into_http::<axum::body::Body>()
        });
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    let mut incoming = TcpListenerStream::new(listener);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut serving = Box::pin(
        server
            .accept_http1(true)
            .add_routes(routes.into())
            .serve_with_incoming_shutdown(&mut incoming, async {
                let _ = stopped.await;
            }),
    );
    let value = tokio::select! {
        served = &mut serving => {
            // It stopped before the database opened: it could not serve.
            served?;
            return Err(Error::Stopped);
        }
        value = ready => value,
    };
    let _ = stop.send(());
    // Connections it holds are told to go away; a client still holding one after a moment (a
    // health watch) is cut off with the waiting server, and reconnects to the real one.
    if let Ok(served) = tokio::time::timeout(Duration::from_secs(5), &mut serving).await {
        served?;
    }
    drop(serving);
    Ok((incoming.into_inner(), value))
}
