//! The domain's one error type. Transport maps it to a gRPC status in exactly one place
//! (`transport::status`); nothing here knows about gRPC.

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
    #[error(
        "connectors of type {0} are authorized through OAuth 2.0: call StartAuthorization, not CreateConnector or ReauthorizeConnector"
    )]
    OAuthAuthorizationRequired(ConnectorTypeId),
    /// The connector type has no short-lived token (a password): workers get its credentials
    /// from `RevealConnectorCredentials`.
    #[error(
        "connectors of type {0} have no short-lived token: a worker gets their credentials from RevealConnectorCredentials, with a key that has the `reveal` capability"
    )]
    NoAccessToken(ConnectorTypeId),
    /// The connector type mints short-lived access; its long-lived secret is never revealed.
    #[error(
        "the credentials of connectors of type {0} are never revealed: call GetAccessToken for a short-lived one"
    )]
    NotRevealable(ConnectorTypeId),
    /// The connector type is created with credentials (`CreateConnector`), not OAuth 2.0.
    #[error(
        "connectors of type {0} are created with credentials: call CreateConnector, not StartAuthorization"
    )]
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
    /// Tenant-wide consent (Office 365) was given by an account without a directory role that
    /// may grant it; nothing was linked.
    #[error(
        "the account that signed in is not an administrator who may consent for the whole tenant (Global, Privileged Role, Cloud Application or Application Administrator); sign in as one"
    )]
    AdminRequired,
    /// The provider rejected this service's own app credentials (a wrong or expired client
    /// secret): an operator's problem, not the caller's and not the connector's.
    #[error(
        "the identity provider rejected this service's app credentials (client secret wrong or expired); an operator must update the configuration"
    )]
    OAuthClientRejected(String),
    /// The request message is larger than the service accepts.
    #[error("the request message is larger than the {0} bytes this service accepts")]
    RequestTooLarge(usize),
    /// The request bytes are not the method's request message.
    #[error("the request is not a valid message of this method's request type")]
    MalformedRequest,
    /// The API key lacks the capability this call needs (`read`, `manage` or `tokens`).
    #[error("this API key may not make this call: it lacks the `{0}` capability")]
    CapabilityMissing(&'static str),
    /// The server is at its limit of calls in flight; retry after a moment.
    #[error("the server is busy: {0} calls are in flight; retry after a moment")]
    Overloaded(usize),
    /// The key (`scope = "key"`) or the account (`scope = "account"`) already holds as many
    /// event watches as allowed.
    #[error(
        "too many event watches: this {scope} already holds {limit}; close one or watch less often"
    )]
    TooManyWatches {
        /// `key` or `account`.
        scope: &'static str,
        /// The configured limit.
        limit: usize,
    },
    /// The call carried more than one `authorization` header.
    #[error("the call carries more than one authorization header; send exactly one API key")]
    ApiKeyAmbiguous,
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
    /// The call carries no `authorization: Bearer <api key>`.
    #[error("missing `authorization: Bearer <api key>` metadata")]
    ApiKeyMissing,
    /// The API key is not one the server knows.
    #[error("unknown API key")]
    ApiKeyInvalid,
    /// The API key may not act on this customer account.
    #[error("this API key may not act on accounts/{0}")]
    AccountAccessDenied(super::model::AccountId),
    /// Other writers kept changing the same data at the same time; retrying is safe.
    #[error("{0} is being changed concurrently; retry")]
    ConcurrentModification(String),
    /// The call did not finish within the server's deadline.
    #[error("the request did not finish within {0:?}")]
    DeadlineExceeded(Duration),
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
