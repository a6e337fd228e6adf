//! Observing every ConnectorService call: counted when it starts, counted and timed by method
//! and gRPC status code when it ends (the `grpc_server_*` metrics), and logged once when it
//! finishes (target `connector_server::rpc`: method, code, latency, and the API key id, account and connector the call named, recorded on its
//! span by the authentication and the handlers). Never a request or response body: nothing
//! secret reaches the log.
//!
//! A call's status is in the response headers when it failed before answering
//! (trailers-only), else in the trailers at the end of the body; a body dropped before its
//! trailers is a call the client cancelled.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use http_body::{Body, Frame};
use tower::{Layer, Service};

use crate::metrics::{Metrics, RpcMethod, rpc_method};

/// Applies [`Observe`] to a service.
#[derive(Debug, Clone)]
pub(crate) struct ObserveLayer(pub(crate) Arc<Metrics>);

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Observe<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for Observe<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, Request, ResBody> Service<http::Request<Request>> for Observe<S>
where
    S: Service<http::Request<Request>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Request>) -> Self::Future {
        let method = rpc_method(request.uri().path());
        self.metrics.rpc_started(method);
        let span = tracing::info_span!(
            "rpc",
            method = method.name(),
            api_key = tracing::field::Empty,
            account = tracing::field::Empty,
            connector = tracing::field::Empty,
        );
        let mut call = Call {
            metrics: self.metrics.clone(),
            method,
            started: Instant::now(),
            span: span.clone(),
            finished: false,
        };
        // The authentication runs here, in the span, and records the key id on it.
        let response = span.in_scope(|| self.inner.call(request));
        Box::pin(tracing::Instrument::instrument(
            async move {
                let response = response.await?;
                if let Some(code) = code_in(response.headers()) {
                    call.finish(code);
                }
                Ok(response.map(|body| tonic::body::Body::new(ObservedBody { body, call })))
            },
            span,
        ))
    }
}

/// One call being observed until its status is known.
struct Call {
    metrics: Arc<Metrics>,
    method: &'static RpcMethod,
    started: Instant,
    span: tracing::Span,
    finished: bool,
}

impl Call {
    fn finish(&mut self, code: tonic::Code) {
        if self.finished {
            return;
        }
        self.finished = true;
        let elapsed = self.started.elapsed();
        self.metrics.rpc_handled(self.method, code, elapsed);
        let latency_ms = elapsed.as_secs_f64() * 1e3;
        let method = self.method.name();
        // Failures on our side stay visible when per-call lines are filtered to `warn`.
        let failed = matches!(
            code,
            tonic::Code::Internal
                | tonic::Code::Unknown
                | tonic::Code::DataLoss
                | tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
        );
        let code = code_name(code);
        if failed {
            tracing::warn!(
                target: "connector_server::rpc",
                parent: &self.span,
                method,
                code,
                latency_ms,
                "call failed"
            );
        } else {
            tracing::info!(
                target: "connector_server::rpc",
                parent: &self.span,
                method,
                code,
                latency_ms,
                "call finished"
            );
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled);
    }
}

/// The response body, watched for the trailers that carry the status.
struct ObservedBody<B> {
    body: B,
    call: Call,
}

impl<B> Body for ObservedBody<B>
where
    B: Body<Data = bytes::Bytes> + Unpin,
{
    type Data = bytes::Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(code_in) {
                    self.call.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.call.finish(tonic::Code::Internal),
            Poll::Ready(None) => self.call.finish(tonic::Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The `grpc-status` in headers or trailers.
fn code_in(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    Some(tonic::Code::from_i32(code))
}

/// The canonical name of a status code, as the logs give it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
