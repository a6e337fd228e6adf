//! The domain: connector lifecycle rules (create once per external account, reauthorize the same
//! account only, never rename, delete for good, hand out short-lived access only).
//!
//! It depends on providers, persistence and crypto, and knows nothing of gRPC: transport turns
//! requests into the validated values of [`model`] and [`Error`] into statuses.

mod access;
pub mod connector_type;
mod credential_checks;
pub mod error;
mod events;
mod health;
mod lifecycle;
pub mod model;
pub(crate) mod oauth;
mod oauth_completion;
mod oauth_tokens;
mod observer;
mod records;
mod revocation;
pub(crate) mod rows;
mod services;
mod settings;
mod token_cache;

/// Credentials as named fields, a provider's verdict on them, and the credentials it accepted
/// (from the provider boundary).
pub use crate::providers::credentials::{CredentialFields, FieldError, Parsed};
pub use access::Access;
pub use credential_checks::CredentialProviders;
pub use error::{Error, FieldViolation, Result};
pub use events::{ConnectorEvent, EventKind, EventPage, Events};
pub use health::{Availability, Health, HealthReport};
pub use lifecycle::{ConnectorPage, ConnectorUpdate, Lifecycle, ListFilter};
pub use model::RevocationOutcome;
pub use oauth::{
    Authorizations, Callback, CallbackStep, Completion, ReturnTo, StartedAuthorization,
};
pub use observer::{Observer, RevocationTry, Sweep, Unobserved};
pub use revocation::Revocations;
pub use services::{Dependencies, Services, compose};
pub use settings::{LifecycleSettings, OAuthSettings, RevocationSettings};
