//! Requests tonic could not read. tonic answers a message over the size limit with
//! `OUT_OF_RANGE` and bytes that are not the request message with `INTERNAL`, both without
//! details, before any handler runs. This layer gives them the service's error shape:
//! `RESOURCE_EXHAUSTED` `REQUEST_TOO_LARGE` (gRPC's convention for a message over the limit,
//! with the limit in ErrorInfo) and `INVALID_ARGUMENT` `MALFORMED_REQUEST` (the caller's bytes
//! are wrong; `INTERNAL` would page an operator for a client's bug).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::{Code, Status};
use tower::{Layer, Service};

use super::Refusal;

/// Applies [`Unreadable`] to a service.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnreadableLayer {
    /// The largest request message accepted, for the answer.
    pub(crate) max_request_bytes: usize,
}

impl<S> Layer<S> for UnreadableLayer {
    type Service = Unreadable<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Unreadable {
            inner,
            max_request_bytes: self.max_request_bytes,
        }
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for Unreadable<S> {
    const NAME: &'static str = S::NAME;
}

/// Rewrites tonic's answers to unreadable requests (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct Unreadable<S> {
    inner: S,
    max_request_bytes: usize,
}

impl<S, Request, Body> Service<Request> for Unreadable<S>
where
    S: Service<Request, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    Body: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let limit = self.max_request_bytes;
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            // tonic answers these before the handler, as a trailers-only response: the status
            // is in the headers.
            let Some(status) = Status::from_header_map(response.headers()) else {
                return Ok(response);
            };
            let replaced = match status.code() {
                Code::OutOfRange if status.message().contains("message length too large") => {
                    Refusal::RequestTooLarge(limit)
                }
                Code::Internal
                    if status
                        .message()
                        .starts_with("failed to decode Protobuf message") =>
                {
                    Refusal::MalformedRequest
                }
                _ => return Ok(response),
            };
            Ok(Status::from(replaced).into_http())
        })
    }
}
