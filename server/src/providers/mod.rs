//! Providers: the cloud-service side of each connector type. A provider checks credentials and
//! mints short-lived access for the orchestrator; it knows HTTP and the provider's protocol, and
//! nothing of connectors, accounts or storage.

pub mod azure_blob;
pub mod credentials;
pub mod endpoints;
pub mod id_token;
pub mod microsoft;
pub mod oauth;
pub mod s3;
pub mod sftp;
pub mod standard_oauth;
pub mod webdav;

use std::time::Duration;

/// What a provider call can fail with. Never carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The provider said the credentials are wrong or revoked.
    #[error("{0}")]
    CredentialsRejected(String),
    /// The provider refused the request for a reason other than the credentials being wrong:
    /// a storage firewall, key access disabled on the account, an unknown account, a request
    /// it does not accept. Enough to refuse linking with them; not proof they were revoked.
    #[error("{0}")]
    Refused(String),
    /// A customer-given endpoint is one this service's policy does not connect to (a private
    /// address while `allow_private_endpoints` is off). Nothing was sent to it: the
    /// credentials were not tried.
    #[error("{rule}")]
    EndpointNotAllowed {
        /// The credential field that named the endpoint.
        field: &'static str,
        /// The rule it breaks, in words a user can act on.
        rule: String,
    },
    /// The grant behind a token is gone (OAuth `invalid_grant`): revoked, expired, or a code
    /// that is wrong, used or not bound to the PKCE verifier.
    #[error("invalid_grant: {description}")]
    InvalidGrant {
        /// The provider's own error code, when given (Microsoft's AADSTS number), which its
        /// [`oauth::OAuthProvider::grant_lost`] reads.
        aadsts: Option<u32>,
        /// The provider's description.
        description: String,
    },
    /// The provider does not accept our app's own credentials (OAuth `invalid_client`: a
    /// client secret that is wrong or expired, AADSTS7000215 / 7000222). Nothing is wrong with
    /// the connector; an operator must fix the app registration or the configuration.
    #[error("the provider rejected this service's client credentials: {0}")]
    ClientRejected(String),
    /// The id token that came with the tokens fails a check (issuer, lifetime, nonce, audience,
    /// or it is unsigned): the sign-in cannot be trusted.
    #[error("the id token is not acceptable: {0}")]
    IdTokenRejected(String),
    /// Tenant-wide consent was given by someone without a directory role that may grant it.
    #[error(
        "the account that signed in holds no directory role that may consent for the whole tenant"
    )]
    AdminRequired {
        /// Who may consent, in the provider's words (its administrator roles), for the caller.
        who_may_consent: &'static str,
    },
    /// The service presented another value of its pinned attribute (an SSH host key) than the
    /// one pinned or given: it was rebuilt, or someone is in the middle. Nothing was sent to it.
    #[error("the server presents {} {presented}, not the expected {expected}", attribute.noun)]
    PinnedChanged {
        /// What is pinned.
        attribute: &'static credentials::PinnedAttribute,
        /// The value expected.
        expected: String,
        /// The value presented.
        presented: String,
    },
    /// The provider answered something this service cannot use.
    #[error("{0}")]
    Protocol(String),
    /// The provider could not be reached or failed transiently (5xx, 429, timeout).
    #[error("{message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// When a retry makes sense.
        retry_after: Duration,
    },
}

/// A provider's `Retry-After` in seconds, when it sent one.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}
