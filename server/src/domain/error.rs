//! The domain's one error type. Transport maps it to a gRPC status in exactly one place
//! (`transport::status`); nothing here knows about gRPC. Its messages name no RPC, request
//! field or provider role: the transport words what a client should call instead, and a
//! provider supplies its own vocabulary (`AdminRequired`). Refusals that only the transport
//! makes (API keys, limits, deadlines) are the transport's own `Refusal`.

use std::time::Duration;

use super::{
    connector_type::ConnectorTypeId,
    model::{ConnectorName, DeauthorizationReason},
};
use crate::providers::credentials::PinnedAttribute;

/// A bad input field: the request field path and why it was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field in the request, for example `connector.display_name`.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

/// Everything a connector operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more request fields are invalid.
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// The connector does not exist (or the caller may not see it).
    #[error("connector {0} not found")]
    ConnectorNotFound(String),
    /// The connector type does not exist.
    #[error("connector type `{0}` not found")]
    ConnectorTypeNotFound(String),
    /// The customer account already has a connector for this external account.
    #[error(
        "this account already has a connector of type {connector_type} for that external account: {existing}; reauthorize it instead of adding another"
    )]
    AlreadyExists {
        /// The connector type.
        connector_type: ConnectorTypeId,
        /// The existing connector.
        existing: ConnectorName,
    },
    /// The cloud service rejected the credentials.
    #[error("the cloud service rejected the credentials: {0}")]
    CredentialsRejected(String),
    /// A credential field names an endpoint this server does not connect to (a private
    /// address); nothing was contacted, so nothing is known of the credentials.
    #[error("{rule}")]
    EndpointNotAllowed {
        /// The credential field (a catalogue field name).
        field: &'static str,
        /// The rule it breaks.
        rule: String,
    },
    /// The cloud service could not be reached or failed transiently.
    #[error("the cloud service is unavailable: {message}")]
    ProviderUnavailable {
        /// What happened, without secrets.
        message: String,
        /// When a retry makes sense.
        retry_after: Duration,
    },
    /// The provider or the database failed after the authorization's `state` was used up: the
    /// flow cannot be resumed with the same redirect, only started again.
    #[error(
        "the authorization was interrupted (the cloud service or the database was unavailable); it cannot be resumed: start it again"
    )]
    AuthorizationInterrupted {
        /// When starting again makes sense.
        retry_after: Duration,
    },
    /// The connector type is authorized through the OAuth 2.0 flow, not with credentials.
    #[error("connectors of type {0} are authorized through OAuth 2.0, not with credentials")]
    OAuthAuthorizationRequired(ConnectorTypeId),
    /// The connector type has no short-lived token (a password): workers get its stored
    /// credentials revealed instead.
    #[error(
        "connectors of type {0} have no short-lived token: their stored credentials are revealed instead"
    )]
    NoAccessToken(ConnectorTypeId),
    /// The connector type mints short-lived access; its long-lived secret is never revealed.
    #[error(
        "the credentials of connectors of type {0} are never revealed: only short-lived access is handed out"
    )]
    NotRevealable(ConnectorTypeId),
    /// The connector type is created with credentials, not through OAuth 2.0.
    #[error("connectors of type {0} are created with credentials, not through OAuth 2.0")]
    CredentialsRequired(ConnectorTypeId),
    /// The operator has not configured an OAuth 2.0 app for this connector type.
    #[error("connector type {0} is not configured on this server (no OAuth 2.0 app registration)")]
    OAuthNotConfigured(ConnectorTypeId),
    /// The `state` is unknown or was already used.
    #[error(
        "this authorization link is not valid: the state is {0}; start the authorization again"
    )]
    AuthorizationStateInvalid(&'static str),
    /// The `state` expired before the authorization completed.
    #[error("this authorization link expired; start the authorization again")]
    AuthorizationExpired,
    /// The user (or administrator) did not consent.
    #[error("access was not granted at the provider: {0}")]
    AuthorizationDenied(String),
    /// Tenant-wide consent was given by an account that may not grant it; nothing was linked.
    #[error(
        "the account that signed in is not an administrator who may consent for the whole tenant ({who_may_consent}); sign in as one"
    )]
    AdminRequired {
        /// Who may consent, in the provider's words (its administrator roles).
        who_may_consent: &'static str,
    },
    /// The provider rejected this service's own app credentials (a wrong or expired client
    /// secret): an operator's problem, not the caller's and not the connector's.
    #[error(
        "the identity provider rejected this service's app credentials (client secret wrong or expired); an operator must update the configuration"
    )]
    OAuthClientRejected(String),
    /// The provider refused the authorization code (wrong, used, or a PKCE mismatch).
    #[error("the provider refused the authorization code: {0}")]
    AuthorizationCodeRejected(String),
    /// Credentials for another connector type than the connector's.
    #[error("credentials for {given} do not fit a {expected} connector")]
    CredentialsTypeMismatch {
        /// The connector's type.
        expected: ConnectorTypeId,
        /// The credentials' type.
        given: ConnectorTypeId,
    },
    /// Reauthorization linked another external account than the connector's.
    #[error(
        "connector {name} is linked to {expected}, but the new credentials are for {given}; add a new connector for another account"
    )]
    AccountMismatch {
        /// The connector.
        name: ConnectorName,
        /// Its external account id.
        expected: String,
        /// The external account id the credentials are for.
        given: String,
    },
    /// The service presented another value of what its provider pins (an SSH host key) than
    /// the one pinned on the connector, or than the one the caller named.
    #[error(
        "the server presents {} {presented}, not {expected}; if the change is expected, reauthorize with {} set to {presented}",
        attribute.noun,
        attribute.field
    )]
    PinnedChanged {
        /// The connector, when there is one yet.
        name: Option<ConnectorName>,
        /// What is pinned.
        attribute: &'static PinnedAttribute,
        /// The value pinned or named.
        expected: String,
        /// The value the service presented.
        presented: String,
    },
    /// The connector lost its authorization and must be reauthorized before use.
    #[error("connector {name} is deauthorized ({}); reauthorize it to use it again", reason.as_str())]
    Deauthorized {
        /// The connector.
        name: ConnectorName,
        /// Why it was deauthorized.
        reason: DeauthorizationReason,
        /// Whether it is reauthorized with credentials (else through OAuth 2.0).
        with_credentials: bool,
    },
    /// An update tried to change the display name.
    #[error(
        "a connector's display name cannot be changed; to rename a connector, delete it and add it again"
    )]
    DisplayNameImmutable,
    /// The caller's etag no longer matches.
    #[error("connector {0} changed since it was read (etag mismatch); read it again and retry")]
    EtagMismatch(String),
    /// Other writers kept changing the same data at the same time; retrying is safe.
    #[error("{0} is being changed concurrently; retry")]
    ConcurrentModification(String),
    /// The database cannot be reached.
    #[error("the database is unavailable")]
    StorageUnavailable,
    /// A bug or broken invariant; logged with context, shown to callers without detail.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A single field violation.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|violation| format!("{}: {}", violation.field, violation.description))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Result of domain operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
