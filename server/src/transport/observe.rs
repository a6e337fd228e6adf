//! Observing every ConnectorService call: counted and timed by method and gRPC status code for
//! the metrics, and logged once when it finishes (target `connector_server::rpc`: method,
//! code, latency, and the API key id, account and connector the call named, recorded on its
//! span by the authentication and the handlers). Never a request or response body: nothing
//! secret reaches the log.
//!
//! A call's status is in the response headers when it failed before answering
//! (trailers-only), else in the trailers at the end of the body; a body dropped before its
//! trailers is a call the client cancelled.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Instant,
};

use http_body::{Body, Frame};
use tower::{Layer, Service};

use crate::metrics::Metrics;

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
        let method = method_name(request.uri().path());
        let span = tracing::info_span!(
            "rpc",
            method,
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
    method: &'static str,
    started: Instant,
    span: tracing::Span,
    finished: bool,
}

impl Call {
    fn finish(&mut self, code: &'static str) {
        if self.finished {
            return;
        }
        self.finished = true;
        let elapsed = self.started.elapsed();
        self.metrics.rpc(self.method, code, elapsed);
        let latency_ms = elapsed.as_secs_f64() * 1e3;
        // Failures on our side stay visible when per-call lines are filtered to `warn`.
        if matches!(
            code,
            "INTERNAL" | "UNKNOWN" | "DATA_LOSS" | "UNAVAILABLE" | "DEADLINE_EXCEEDED"
        ) {
            tracing::warn!(
                target: "connector_server::rpc",
                parent: &self.span,
                method = self.method,
                code,
                latency_ms,
                "call failed"
            );
        } else {
            tracing::info!(
                target: "connector_server::rpc",
                parent: &self.span,
                method = self.method,
                code,
                latency_ms,
                "call finished"
            );
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish("CANCELLED");
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
            Poll::Ready(Some(Err(_))) => self.call.finish("INTERNAL"),
            Poll::Ready(None) => self.call.finish("UNKNOWN"),
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

/// The `grpc-status` in headers or trailers, by its name.
fn code_in(headers: &http::HeaderMap) -> Option<&'static str> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    Some(code_name(tonic::Code::from_i32(code)))
}

/// The canonical name of a status code.
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

/// The method a request path names, from the service's descriptor (a closed set: a path that
/// names no method is `unknown`, so a client cannot add series).
fn method_name(path: &str) -> &'static str {
    static METHODS: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    let methods = METHODS.get_or_init(|| {
        use prost::Message as _;
        let descriptors =
            prost_types::FileDescriptorSet::decode(connector_api::FILE_DESCRIPTOR_SET)
                .unwrap_or_default();
        let mut methods = HashMap::new();
        for file in &descriptors.file {
            for service in &file.service {
                let service_name = format!("{}.{}", file.package(), service.name());
                for method in &service.method {
                    // Leaked once per process: the names live as long as the metrics.
                    let name: &'static str = Box::leak(method.name().to_owned().into_boxed_str());
                    methods.insert(format!("/{service_name}/{name}"), name);
                }
            }
        }
        methods
    });
    methods.get(path).copied().unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_come_from_the_descriptor_and_nothing_else_is_a_label() {
        assert_eq!(
            method_name("/connector.v1.ConnectorService/GetConnector"),
            "GetConnector"
        );
        assert_eq!(
            method_name("/connector.v1.ConnectorService/WatchConnectorEvents"),
            "WatchConnectorEvents"
        );
        assert_eq!(
            method_name("/connector.v1.ConnectorService/NoSuchMethod"),
            "unknown"
        );
    }
}
