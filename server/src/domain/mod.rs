//! The domain: connector lifecycle rules (create once per external account, reauthorize the same
//! account only, never rename, delete for good, hand out short-lived access only).
//!
//! It depends on providers, persistence and crypto, and knows nothing of gRPC: transport turns
//! requests into the validated values of [`model`] and [`Error`] into statuses.

mod azure_keys;
pub mod connector_type;
pub mod error;
mod events;
pub mod model;
pub(crate) mod oauth;
mod revocation;
pub(crate) mod service;
mod token_cache;

pub use error::{Error, FieldViolation, Result};
pub use events::{ConnectorEvent, EventKind, EventPage, RevocationOutcome};
pub use oauth::{
    Callback, CallbackStep, Completion, OAuthSettings, ReturnTo, StartedAuthorization,
};
pub use revocation::RevocationSettings;
pub use service::{ConnectorPage, ConnectorUpdate, Connectors, Lifecycle, ListFilter};
