//! The gRPC server metrics, under the names and labels of grpc-ecosystem/go-grpc-prometheus,
//! which the common gRPC dashboards and alert rules query: `grpc_server_started_total`,
//! `grpc_server_handled_total` and `grpc_server_handling_seconds`, labelled `grpc_service`,
//! `grpc_method`, `grpc_type` and (once handled) `grpc_code`, the code spelt as Go's
//! `codes.Code` prints it (`OK`, `NotFound`, `Canceled`).
//!
//! Every method of the served API is registered at zero, with every code, as
//! go-grpc-prometheus's `InitializeMetrics` does: a rate or an error ratio has data from the
//! first scrape rather than from the first failure.

use std::{borrow::Cow, collections::HashMap, sync::OnceLock, time::Duration};

use prometheus_client::{
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

/// `grpc_service`, `grpc_method`, `grpc_type`.
type MethodLabels = [(&'static str, &'static str); 3];
/// The method's labels and `grpc_code`.
type HandledLabels = [(&'static str, &'static str); 4];

/// A method of the served API, as the labels name it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RpcMethod {
    /// The full service name, `connector.v1.ConnectorService`.
    service: Cow<'static, str>,
    /// The method's name, `GetConnector`.
    method: Cow<'static, str>,
    /// `unary`, `client_stream`, `server_stream` or `bidi_stream`.
    kind: &'static str,
}

impl RpcMethod {
    /// The method's name (`GetConnector`), as the call logs give it.
    pub(crate) fn name(&'static self) -> &'static str {
        &self.method
    }

    fn labels(&'static self) -> MethodLabels {
        [
            ("grpc_service", &self.service),
            ("grpc_method", &self.method),
            ("grpc_type", self.kind),
        ]
    }
}

/// What a path naming no method of the descriptor is counted under: a closed set, so a
/// client cannot add series by making up paths.
static UNKNOWN: RpcMethod = RpcMethod {
    service: Cow::Borrowed("unknown"),
    method: Cow::Borrowed("unknown"),
    kind: "unknown",
};

/// Every method of the API, by request path (`/connector.v1.ConnectorService/GetConnector`),
/// read once from the service's descriptor.
fn methods() -> &'static HashMap<String, RpcMethod> {
    static METHODS: OnceLock<HashMap<String, RpcMethod>> = OnceLock::new();
    METHODS.get_or_init(|| {
        use prost::Message as _;
        let descriptors =
            prost_types::FileDescriptorSet::decode(connector_api::FILE_DESCRIPTOR_SET)
                .unwrap_or_default();
        let mut methods = HashMap::new();
        for file in &descriptors.file {
            for service in &file.service {
                let service_name = format!("{}.{}", file.package(), service.name());
                for method in &service.method {
                    let kind = match (method.client_streaming(), method.server_streaming()) {
                        (false, false) => "unary",
                        (true, false) => "client_stream",
                        (false, true) => "server_stream",
                        (true, true) => "bidi_stream",
                    };
                    methods.insert(
                        format!("/{service_name}/{}", method.name()),
                        RpcMethod {
                            service: Cow::Owned(service_name.clone()),
                            method: Cow::Owned(method.name().to_owned()),
                            kind,
                        },
                    );
                }
            }
        }
        methods
    })
}

/// The method a request path names; [`UNKNOWN`] (labelled `unknown`) for any other path.
pub(crate) fn method(path: &str) -> &'static RpcMethod {
    methods().get(path).unwrap_or(&UNKNOWN)
}

/// Every status code, in numeric order.
const CODES: [tonic::Code; 17] = [
    tonic::Code::Ok,
    tonic::Code::Cancelled,
    tonic::Code::Unknown,
    tonic::Code::InvalidArgument,
    tonic::Code::DeadlineExceeded,
    tonic::Code::NotFound,
    tonic::Code::AlreadyExists,
    tonic::Code::PermissionDenied,
    tonic::Code::ResourceExhausted,
    tonic::Code::FailedPrecondition,
    tonic::Code::Aborted,
    tonic::Code::OutOfRange,
    tonic::Code::Unimplemented,
    tonic::Code::Internal,
    tonic::Code::Unavailable,
    tonic::Code::DataLoss,
    tonic::Code::Unauthenticated,
];

/// A code as Go's `codes.Code.String()` spells it: the `grpc_code` values dashboards and
/// alert rules written for go-grpc-prometheus match on (note `Canceled`, one `l`).
fn code_label(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The three families, registered without the `connector_` prefix so that the names are the
/// ones dashboards know.
#[derive(Debug)]
pub(super) struct GrpcMetrics {
    started: Family<MethodLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    handling: Family<MethodLabels, Histogram, fn() -> Histogram>,
}

impl GrpcMetrics {
    /// Registers the families in `registry`, every method and code at zero.
    pub(super) fn register(registry: &mut Registry, histogram: fn() -> Histogram) -> Self {
        let grpc = GrpcMetrics {
            started: Family::default(),
            handled: Family::default(),
            handling: Family::new_with_constructor(histogram),
        };
        registry.register(
            "grpc_server_started",
            "ConnectorService calls started, by method",
            grpc.started.clone(),
        );
        registry.register(
            "grpc_server_handled",
            "ConnectorService calls finished, by method and status code (refused keys and shed \
             calls included; a call the client abandoned is Canceled)",
            grpc.handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "ConnectorService call latency (a watch: how long its stream stayed open)",
            grpc.handling.clone(),
        );
        // Created, not recorded: `get_or_create`'s read guard is dropped at once.
        for method in methods().values() {
            let labels = method.labels();
            drop(grpc.started.get_or_create(&labels));
            drop(grpc.handling.get_or_create(&labels));
            for code in CODES {
                drop(grpc.handled.get_or_create(&handled_labels(method, code)));
            }
        }
        grpc
    }

    /// A call begins.
    pub(super) fn started(&self, method: &'static RpcMethod) {
        self.started.get_or_create(&method.labels()).inc();
    }

    /// A call ended with `code` after `elapsed`.
    pub(super) fn handled(&self, method: &'static RpcMethod, code: tonic::Code, elapsed: Duration) {
        self.handled
            .get_or_create(&handled_labels(method, code))
            .inc();
        self.handling
            .get_or_create(&method.labels())
            .observe(elapsed.as_secs_f64());
    }
}

fn handled_labels(method: &'static RpcMethod, code: tonic::Code) -> HandledLabels {
    let [service, name, kind] = method.labels();
    [service, name, kind, ("grpc_code", code_label(code))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_come_from_the_descriptor_and_nothing_else_is_a_label() {
        let get = method("/connector.v1.ConnectorService/GetConnector");
        assert_eq!(
            get.labels(),
            [
                ("grpc_service", "connector.v1.ConnectorService"),
                ("grpc_method", "GetConnector"),
                ("grpc_type", "unary"),
            ]
        );
        let watch = method("/connector.v1.ConnectorService/WatchConnectorEvents");
        assert_eq!(watch.name(), "WatchConnectorEvents");
        assert_eq!(watch.kind, "server_stream");
        let made_up = method("/connector.v1.ConnectorService/NoSuchMethod");
        assert_eq!(made_up, &UNKNOWN);
        assert_eq!(made_up.labels().map(|(_, value)| value), ["unknown"; 3]);
    }

    #[test]
    fn codes_are_spelt_as_go_prints_them() {
        assert_eq!(code_label(tonic::Code::NotFound), "NotFound");
        assert_eq!(code_label(tonic::Code::Cancelled), "Canceled");
        // One label value per code, so no two codes share a series.
        let labels: std::collections::HashSet<_> = CODES.into_iter().map(code_label).collect();
        assert_eq!(labels.len(), CODES.len());
    }
}
