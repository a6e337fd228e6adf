//! The one place errors become gRPC statuses: the domain's, and the transport's own refusals
//! (API keys, limits, the deadline). Every status a client can act on carries
//! `google.rpc.ErrorInfo` with a stable `UPPER_SNAKE_CASE` reason; bad fields add `BadRequest`
//! violations; retryable ones add `RetryInfo`; `INTERNAL` is logged here and shown without
//! detail.

use std::{collections::HashMap, time::Duration};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use super::Refusal;
use crate::domain::Error;

/// The ErrorInfo domain of every error this service returns.
pub(crate) const ERROR_DOMAIN: &str = "connector-service";

fn to_map(metadata: &[(&str, String)]) -> HashMap<String, String> {
    metadata
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .collect()
}

/// The status of a refusal the transport makes itself; a domain error is mapped as such.
impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Self {
        let message = refusal.to_string();
        let mut details = ErrorDetails::new();
        let (code, reason, metadata): (Code, &str, Vec<(&str, String)>) = match refusal {
            Refusal::Domain(error) => return error.into(),
            Refusal::ApiKeyMissing => (Code::Unauthenticated, "API_KEY_MISSING", vec![]),
            Refusal::ApiKeyInvalid => (Code::Unauthenticated, "API_KEY_INVALID", vec![]),
            Refusal::ApiKeyAmbiguous => (Code::Unauthenticated, "API_KEY_AMBIGUOUS", vec![]),
            Refusal::CapabilityMissing(capability) => (
                Code::PermissionDenied,
                "CAPABILITY_MISSING",
                vec![("capability", capability.to_owned())],
            ),
            Refusal::AccountAccessDenied(account) => (
                Code::PermissionDenied,
                "ACCOUNT_ACCESS_DENIED",
                vec![("account", format!("accounts/{account}"))],
            ),
            Refusal::RequestTooLarge(limit) => (
                Code::ResourceExhausted,
                "REQUEST_TOO_LARGE",
                vec![("max_request_bytes", limit.to_string())],
            ),
            Refusal::MalformedRequest => (Code::InvalidArgument, "MALFORMED_REQUEST", vec![]),
            Refusal::Overloaded(limit) => {
                details.set_retry_info(Some(Duration::from_secs(1)));
                (
                    Code::ResourceExhausted,
                    "OVERLOADED",
                    vec![("max_in_flight_requests", limit.to_string())],
                )
            }
            Refusal::TooManyWatches { scope, limit } => {
                details.set_retry_info(Some(Duration::from_secs(30)));
                (
                    Code::ResourceExhausted,
                    "TOO_MANY_WATCHES",
                    vec![("scope", scope.to_owned()), ("limit", limit.to_string())],
                )
            }
            Refusal::DeadlineExceeded(_) => (Code::DeadlineExceeded, "REQUEST_TIMEOUT", vec![]),
        };
        answer(code, reason, &metadata, message, details)
    }
}

/// The status of a domain error.
impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = wire_message(&error);
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
            Error::AdminRequired { .. } => (Code::FailedPrecondition, "ADMIN_REQUIRED", vec![]),
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
            Error::OAuthClientRejected(detail) => {
                // Every caller is affected until an operator acts: log it loudly, here once.
                tracing::error!(%detail, "the identity provider rejects our client credentials: fix the app registration's secret in the configuration");
                (Code::FailedPrecondition, "OAUTH_CLIENT_REJECTED", vec![])
            }
            Error::ConcurrentModification(_) => (Code::Aborted, "CONCURRENT_MODIFICATION", vec![]),
            Error::StorageUnavailable => {
                details.set_retry_info(Some(Duration::from_secs(1)));
                (Code::Unavailable, "DATABASE_UNAVAILABLE", vec![])
            }
            Error::Internal(context) => {
                tracing::error!(%context, "internal error");
                details.set_error_info("INTERNAL", ERROR_DOMAIN, HashMap::new());
                return Status::with_error_details(Code::Internal, "internal error", details);
            }
        };
        answer(code, reason, &metadata, message, details)
    }
}

fn answer(
    code: Code,
    reason: &str,
    metadata: &[(&str, String)],
    message: String,
    mut details: ErrorDetails,
) -> Status {
    details.set_error_info(reason, ERROR_DOMAIN, to_map(metadata));
    Status::with_error_details(code, message, details)
}

/// The message a client reads: the domain's own, except where the domain says only what is
/// wrong and a client also needs the call to make instead, which is this API's to name.
fn wire_message(error: &Error) -> String {
    match error {
        Error::OAuthAuthorizationRequired(connector_type) => format!(
            "connectors of type {connector_type} are authorized through OAuth 2.0: call StartAuthorization, not CreateConnector or ReauthorizeConnector"
        ),
        Error::NoAccessToken(connector_type) => format!(
            "connectors of type {connector_type} have no short-lived token: a worker gets their credentials from RevealConnectorCredentials, with a key that has the `reveal` capability"
        ),
        Error::NotRevealable(connector_type) => format!(
            "the credentials of connectors of type {connector_type} are never revealed: call GetAccessToken for a short-lived one"
        ),
        Error::CredentialsRequired(connector_type) => format!(
            "connectors of type {connector_type} are created with credentials: call CreateConnector, not StartAuthorization"
        ),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{connector_type::examples, model::AccountId};

    fn answered(status: &Status) -> (Code, String, String, HashMap<String, String>) {
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.domain, ERROR_DOMAIN);
        (
            status.code(),
            info.reason,
            status.message().to_owned(),
            info.metadata,
        )
    }

    /// The wire text of the errors whose domain message names no RPC: the client still reads
    /// the call to make, word for word as before the domain stopped naming it.
    #[test]
    fn the_transport_names_the_rpc_a_domain_error_leaves_out() {
        // The wording is the same for every type; any one stands for all.
        let any = examples::catalogue()
            .iter()
            .next()
            .expect("an example type");
        for (error, code, reason, message) in [
            (
                Error::OAuthAuthorizationRequired(any),
                Code::FailedPrecondition,
                "OAUTH_AUTHORIZATION_REQUIRED",
                format!("connectors of type {any} are authorized through OAuth 2.0: call StartAuthorization, not CreateConnector or ReauthorizeConnector"),
            ),
            (
                Error::NoAccessToken(any),
                Code::FailedPrecondition,
                "USE_REVEAL_CREDENTIALS",
                format!("connectors of type {any} have no short-lived token: a worker gets their credentials from RevealConnectorCredentials, with a key that has the `reveal` capability"),
            ),
            (
                Error::NotRevealable(any),
                Code::FailedPrecondition,
                "USE_GET_ACCESS_TOKEN",
                format!("the credentials of connectors of type {any} are never revealed: call GetAccessToken for a short-lived one"),
            ),
            (
                Error::CredentialsRequired(any),
                Code::FailedPrecondition,
                "CREDENTIALS_REQUIRED",
                format!("connectors of type {any} are created with credentials: call CreateConnector, not StartAuthorization"),
            ),
            (
                Error::AdminRequired {
                    who_may_consent: "Global, Privileged Role, Cloud Application or Application Administrator",
                },
                Code::FailedPrecondition,
                "ADMIN_REQUIRED",
                "the account that signed in is not an administrator who may consent for the whole tenant (Global, Privileged Role, Cloud Application or Application Administrator); sign in as one".to_owned(),
            ),
        ] {
            assert!(
                !error.to_string().contains("call ") && !error.to_string().contains("Reveal"),
                "the domain names an RPC: {error}"
            );
            let (got_code, got_reason, got_message, _) = answered(&Status::from(error));
            assert_eq!(
                (got_code, got_reason.as_str(), got_message.as_str()),
                (code, reason, message.as_str())
            );
        }
    }

    /// The transport's own refusals answer as they did when they were domain errors.
    #[test]
    fn refusals_keep_their_code_reason_metadata_and_message() {
        let account = AccountId::new("acme").expect("an account id");
        /// A refusal, and the code, reason, message and metadata it is answered with.
        type Case = (
            Refusal,
            Code,
            &'static str,
            &'static str,
            &'static [(&'static str, &'static str)],
        );
        let cases: [Case; 10] = [
            (
                Refusal::ApiKeyMissing,
                Code::Unauthenticated,
                "API_KEY_MISSING",
                "missing `authorization: Bearer <api key>` metadata",
                &[],
            ),
            (
                Refusal::ApiKeyInvalid,
                Code::Unauthenticated,
                "API_KEY_INVALID",
                "unknown API key",
                &[],
            ),
            (
                Refusal::ApiKeyAmbiguous,
                Code::Unauthenticated,
                "API_KEY_AMBIGUOUS",
                "the call carries more than one authorization header; send exactly one API key",
                &[],
            ),
            (
                Refusal::CapabilityMissing("tokens"),
                Code::PermissionDenied,
                "CAPABILITY_MISSING",
                "this API key may not make this call: it lacks the `tokens` capability",
                &[("capability", "tokens")],
            ),
            (
                Refusal::AccountAccessDenied(account),
                Code::PermissionDenied,
                "ACCOUNT_ACCESS_DENIED",
                "this API key may not act on accounts/acme",
                &[("account", "accounts/acme")],
            ),
            (
                Refusal::RequestTooLarge(1024),
                Code::ResourceExhausted,
                "REQUEST_TOO_LARGE",
                "the request message is larger than the 1024 bytes this service accepts",
                &[("max_request_bytes", "1024")],
            ),
            (
                Refusal::MalformedRequest,
                Code::InvalidArgument,
                "MALFORMED_REQUEST",
                "the request is not a valid message of this method's request type",
                &[],
            ),
            (
                Refusal::Overloaded(8),
                Code::ResourceExhausted,
                "OVERLOADED",
                "the server is busy: 8 calls are in flight; retry after a moment",
                &[("max_in_flight_requests", "8")],
            ),
            (
                Refusal::TooManyWatches {
                    scope: "key",
                    limit: 2,
                },
                Code::ResourceExhausted,
                "TOO_MANY_WATCHES",
                "too many event watches: this key already holds 2; close one or watch less often",
                &[("scope", "key"), ("limit", "2")],
            ),
            (
                Refusal::DeadlineExceeded(Duration::from_millis(1500)),
                Code::DeadlineExceeded,
                "REQUEST_TIMEOUT",
                "the request did not finish within 1.5s",
                &[],
            ),
        ];
        for (refusal, code, reason, message, metadata) in cases {
            let metadata: HashMap<String, String> = metadata
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect();
            assert_eq!(
                answered(&Status::from(refusal)),
                (code, reason.to_owned(), message.to_owned(), metadata)
            );
        }
        let passed_on = Status::from(Refusal::from(Error::StorageUnavailable));
        assert_eq!(
            answered(&passed_on),
            (
                Code::Unavailable,
                "DATABASE_UNAVAILABLE".to_owned(),
                "the database is unavailable".to_owned(),
                HashMap::new()
            )
        );
    }
}
