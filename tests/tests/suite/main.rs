//! The black-box suite, compiled into one test binary so the server is linked once: a module
//! per area, each talking to real servers over gRPC (see `connector_tests` for the peers).

mod api_rules;
mod azure_connectors;
mod bounds;
mod browser;
mod capabilities;
mod connectorctl;
mod console;
mod credential_fields;
mod cross_language;
mod events;
mod grpc_web;
mod hardening;
mod lifecycle;
mod metrics;
mod oauth_connectors;
mod oauth_providers;
mod operate;
mod outage;
mod parallel_workers;
mod readme;
mod revocation;
mod s3_connectors;
mod secrets;
mod server_process;
mod sftp_connectors;
mod tls;
mod webdav_connectors;
