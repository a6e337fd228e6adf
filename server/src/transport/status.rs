//! The one place domain errors become gRPC statuses. Every status a client can act on carries
//! `google.rpc.ErrorInfo` with a stable `UPPER_SNAKE_CASE` reason; bad fields add `BadRequest`
//! violations; retryable ones add `RetryInfo`; `INTERNAL` is logged here and shown without
//! detail.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::domain::Error;

/// The ErrorInfo domain of every error this service returns.
pub(crate) const ERROR_DOMAIN: &str = "connector-service";

fn to_map(metadata: &[(&str, String)]) -> HashMap<String, String> {
    metadata
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .collect()
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        let mut details = ErrorDetails::new();
        // Metadata keys named after a pinned attribute's value ("expected_fingerprint").
        let pinned_keys: [String; 2];
        let (code, reason, metadata): (Code, &str, Vec<(&str, String)>) = match error {
            Error::InvalidArgument(violations) => {
                for violation in violations {
                    details.add_bad_request_violation(violation.field, violation.description);
                }
                (Code::InvalidArgument, "INVALID_ARGUMENT", vec![])
            }
            Error::ConnectorNotFound(name) => (
                Code::NotFound,
                "CONNECTOR_NOT_FOUND",
                vec![("connector", name)],
            ),
            Error::ConnectorTypeNotFound(name) => (
                Code::NotFound,
                "CONNECTOR_TYPE_NOT_FOUND",
                vec![("connector_type", format!("connectorTypes/{name}"))],
            ),
            Error::AlreadyExists {
                connector_type,
                existing,
            } => (
                Code::AlreadyExists,
                "CONNECTOR_ALREADY_EXISTS",
                vec![
                    ("connector", existing.to_string()),
                    ("connector_type", format!("connectorTypes/{connector_type}")),
                ],
            ),
            Error::CredentialsRejected(_) => {
                details.add_bad_request_violation(
                    "credentials",
                    "the cloud service rejected these credentials",
                );
                (Code::InvalidArgument, "CREDENTIALS_REJECTED", vec![])
            }
            Error::EndpointNotAllowed { field, rule } => {
                let field = super::conversions::credential_field_path(field);
                details.add_bad_request_violation(field.clone(), rule);
                (
                    Code::InvalidArgument,
                    "ENDPOINT_NOT_ALLOWED",
                    vec![("field", field), ("rule", "PUBLIC_ADDRESS_REQUIRED".into())],
                )
            }
            Error::ProviderUnavailable { retry_after, .. } => {
                details.set_retry_info(Some(retry_after));
                (Code::Unavailable, "PROVIDER_UNAVAILABLE", vec![])
            }
            Error::AuthorizationInterrupted { retry_after } => {
                details.set_retry_info(Some(retry_after));
                (Code::Aborted, "AUTHORIZATION_INTERRUPTED", vec![])
            }
            Error::OAuthAuthorizationRequired(connector_type) => (
                Code::FailedPrecondition,
                "OAUTH_AUTHORIZATION_REQUIRED",
                vec![("connector_type", format!("connectorTypes/{connector_type}"))],
            ),
            Error::CredentialsTypeMismatch { expected, .. } => {
                details.add_bad_request_violation(
                    "credentials",
                    format!("credentials must be those of a connectorTypes/{expected} connector"),
                );
                (Code::InvalidArgument, "CREDENTIALS_TYPE_MISMATCH", vec![])
            }
            Error::AccountMismatch { name, expected, .. } => (
                Code::FailedPrecondition,
                "ACCOUNT_MISMATCH",
                vec![
                    ("connector", name.to_string()),
                    ("external_account", expected),
                ],
            ),
            Error::PinnedChanged {
                name,
                attribute,
                expected,
                presented,
            } => {
                let (noun, value_name) = (attribute.noun, attribute.value_name);
                details.set_localized_message(
                    "en-US",
                    format!(
                        "The server's {noun} changed to {presented}. If you expect that (the server was rebuilt), reauthorize the connector and accept the new {value_name}."
                    ),
                );
                pinned_keys = [
                    format!("expected_{value_name}"),
                    format!("presented_{value_name}"),
                ];
                let mut metadata = vec![
                    (pinned_keys[0].as_str(), expected),
                    (pinned_keys[1].as_str(), presented),
                ];
                if let Some(name) = name {
                    metadata.push(("connector", name.to_string()));
                }
                (Code::FailedPrecondition, attribute.changed_reason, metadata)
            }
            Error::Deauthorized {
                name,
                reason,
                with_credentials,
            } => {
                let method = if with_credentials {
                    "ReauthorizeConnector"
                } else {
                    "StartReauthorization"
                };
                // A message a UI can show as is, and the RPC to call in the metadata; no Help
                // link, as the service has no public documentation URL of its own to point at.
                details.set_localized_message(
                    "en-US",
                    format!(
                        "This connector lost its authorization ({}). Reauthorize it ({method}) to use it again.",
                        reason.as_str().to_lowercase()
                    ),
                );
                (
                    Code::FailedPrecondition,
                    "CONNECTOR_DEAUTHORIZED",
                    vec![
                        ("connector", name.to_string()),
                        ("deauthorization_reason", reason.as_str().to_owned()),
                        ("reauthorize_with", method.to_owned()),
                    ],
                )
            }
            Error::NoAccessToken(connector_type) => (
                Code::FailedPrecondition,
                "USE_REVEAL_CREDENTIALS",
                vec![
                    ("connector_type", format!("connectorTypes/{connector_type}")),
                    ("rpc", "RevealConnectorCredentials".to_owned()),
                ],
            ),
            Error::NotRevealable(connector_type) => (
                Code::FailedPrecondition,
                "USE_GET_ACCESS_TOKEN",
                vec![
                    ("connector_type", format!("connectorTypes/{connector_type}")),
                    ("rpc", "GetAccessToken".to_owned()),
                ],
            ),
            Error::CredentialsRequired(connector_type) => (
                Code::FailedPrecondition,
                "CREDENTIALS_REQUIRED",
                vec![("connector_type", format!("connectorTypes/{connector_type}"))],
            ),
            Error::OAuthNotConfigured(connector_type) => (
                Code::FailedPrecondition,
                "CONNECTOR_TYPE_NOT_CONFIGURED",
                vec![("connector_type", format!("connectorTypes/{connector_type}"))],
            ),
            Error::AuthorizationStateInvalid(why) => (
                Code::FailedPrecondition,
                "AUTHORIZATION_STATE_INVALID",
                vec![("state", why.to_owned())],
            ),
            Error::AuthorizationExpired => {
                (Code::FailedPrecondition, "AUTHORIZATION_EXPIRED", vec![])
            }
            Error::AuthorizationDenied(_) => (Code::PermissionDenied, "ACCESS_DENIED", vec![]),
            Error::AdminRequired => (Code::FailedPrecondition, "ADMIN_REQUIRED", vec![]),
            Error::AuthorizationCodeRejected(_) => (
                Code::FailedPrecondition,
                "AUTHORIZATION_CODE_REJECTED",
                vec![],
            ),
            Error::DisplayNameImmutable => {
                details.add_bad_request_violation(
                    "update_mask",
                    "display_name cannot be changed; delete the connector and add it again to rename it",
                );
                (Code::InvalidArgument, "DISPLAY_NAME_IMMUTABLE", vec![])
            }
            Error::EtagMismatch(name) => {
                (Code::Aborted, "ETAG_MISMATCH", vec![("connector", name)])
            }
            Error::ApiKeyMissing => (Code::Unauthenticated, "API_KEY_MISSING", vec![]),
            Error::ApiKeyInvalid => (Code::Unauthenticated, "API_KEY_INVALID", vec![]),
            Error::ApiKeyAmbiguous => (Code::Unauthenticated, "API_KEY_AMBIGUOUS", vec![]),
            Error::CapabilityMissing(capability) => (
                Code::PermissionDenied,
                "CAPABILITY_MISSING",
                vec![("capability", capability.to_owned())],
            ),
            Error::RequestTooLarge(limit) => (
                Code::ResourceExhausted,
                "REQUEST_TOO_LARGE",
                vec![("max_request_bytes", limit.to_string())],
            ),
            Error::Overloaded(limit) => {
                details.set_retry_info(Some(std::time::Duration::from_secs(1)));
                (
                    Code::ResourceExhausted,
                    "OVERLOADED",
                    vec![("max_in_flight_requests", limit.to_string())],
                )
            }
            Error::TooManyWatches { scope, limit } => {
                details.set_retry_info(Some(std::time::Duration::from_secs(30)));
                (
                    Code::ResourceExhausted,
                    "TOO_MANY_WATCHES",
                    vec![("scope", scope.to_owned()), ("limit", limit.to_string())],
                )
            }
            Error::MalformedRequest => (Code::InvalidArgument, "MALFORMED_REQUEST", vec![]),
            Error::OAuthClientRejected(detail) => {
                // Every caller is affected until an operator acts: log it loudly, here once.
                tracing::error!(%detail, "the identity provider rejects our client credentials: fix the app registration's secret in the configuration");
                (Code::FailedPrecondition, "OAUTH_CLIENT_REJECTED", vec![])
            }
            Error::AccountAccessDenied(account) => (
                Code::PermissionDenied,
                "ACCOUNT_ACCESS_DENIED",
                vec![("account", format!("accounts/{account}"))],
            ),
            Error::ConcurrentModification(_) => (Code::Aborted, "CONCURRENT_MODIFICATION", vec![]),
            Error::DeadlineExceeded(_) => (Code::DeadlineExceeded, "REQUEST_TIMEOUT", vec![]),
            Error::StorageUnavailable => {
                details.set_retry_info(Some(std::time::Duration::from_secs(1)));
                (Code::Unavailable, "DATABASE_UNAVAILABLE", vec![])
            }
            Error::Internal(context) => {
                tracing::error!(%context, "internal error");
                details.set_error_info("INTERNAL", ERROR_DOMAIN, HashMap::new());
                return Status::with_error_details(Code::Internal, "internal error", details);
            }
        };
        details.set_error_info(reason, ERROR_DOMAIN, to_map(&metadata));
        Status::with_error_details(code, message, details)
    }
}
