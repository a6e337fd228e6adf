//! What the transport answers a call with when it does not answer it: a refusal of its own (the
//! API key, the service's limits, the deadline, unreadable bytes), made before or around the
//! domain and named by nothing in it, or the domain's error passed on. `transport::status` maps
//! both to a gRPC status.

use std::time::Duration;

use crate::domain::{self, model::AccountId};

/// Why the transport answers a call with an error.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The domain refused or failed.
    #[error(transparent)]
    Domain(#[from] domain::Error),
    /// The call carries no `authorization: Bearer <api key>`.
    #[error("missing `authorization: Bearer <api key>` metadata")]
    ApiKeyMissing,
    /// The API key is not one the server knows.
    #[error("unknown API key")]
    ApiKeyInvalid,
    /// The call carried more than one `authorization` header.
    #[error("the call carries more than one authorization header; send exactly one API key")]
    ApiKeyAmbiguous,
    /// The API key lacks the capability this call needs (`read`, `manage` or `tokens`).
    #[error("this API key may not make this call: it lacks the `{0}` capability")]
    CapabilityMissing(&'static str),
    /// The API key may not act on this customer account.
    #[error("this API key may not act on accounts/{0}")]
    AccountAccessDenied(AccountId),
    /// The request message is larger than the service accepts.
    #[error("the request message is larger than the {0} bytes this service accepts")]
    RequestTooLarge(usize),
    /// The request bytes are not the method's request message.
    #[error("the request is not a valid message of this method's request type")]
    MalformedRequest,
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
    /// The call did not finish within the server's deadline.
    #[error("the request did not finish within {0:?}")]
    DeadlineExceeded(Duration),
}
