//! The server's deadline for each call. tonic's own timeout answers `CANCELLED` with no details;
//! this layer answers `DEADLINE_EXCEEDED` with ErrorInfo reason `REQUEST_TIMEOUT`, like every
//! other error the service returns, so a client can tell a slow call from a cancelled one.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tonic::Status;
use tower::{Layer, Service};

use super::Refusal;

/// Applies [`Deadline`] to every call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeadlineLayer(pub(crate) Duration);

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            limit: self.0,
        }
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for Deadline<S> {
    const NAME: &'static str = S::NAME;
}

/// Answers `DEADLINE_EXCEEDED` when the inner service takes longer than the limit.
#[derive(Debug, Clone)]
pub(crate) struct Deadline<S> {
    inner: S,
    limit: Duration,
}

impl<S, Request, Body> Service<Request> for Deadline<S>
where
    S: Service<Request, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    Body: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let limit = self.limit;
        let call = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit, call).await {
                Ok(response) => response,
                Err(_) => Ok(Status::from(Refusal::DeadlineExceeded(limit)).into_http()),
            }
        })
    }
}
