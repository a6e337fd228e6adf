//! Load shedding: at most a configured number of connector-service calls in flight in this
//! process. One more is answered at once with `RESOURCE_EXHAUSTED` `OVERLOADED` and
//! `RetryInfo`, instead of queueing until everyone's calls time out. (A watch counts only
//! while it opens: its stream is capped separately.)

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::sync::Semaphore;
use tonic::Status;
use tower::{Layer, Service};

use super::Refusal;

/// Applies [`Shed`] to a service.
#[derive(Debug, Clone)]
pub(crate) struct ShedLayer {
    in_flight: Arc<Semaphore>,
    limit: usize,
}

impl ShedLayer {
    /// At most `limit` calls in flight.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            in_flight: self.in_flight.clone(),
            limit: self.limit,
        }
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for Shed<S> {
    const NAME: &'static str = S::NAME;
}

/// Refuses a call when `limit` are already in flight.
#[derive(Debug, Clone)]
pub(crate) struct Shed<S> {
    inner: S,
    in_flight: Arc<Semaphore>,
    limit: usize,
}

impl<S, Request, Body> Service<Request> for Shed<S>
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
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            let refused = Status::from(Refusal::Overloaded(self.limit));
            return Box::pin(async move { Ok(refused.into_http()) });
        };
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await;
            drop(permit);
            response
        })
    }
}
