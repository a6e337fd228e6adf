//! The rows the domain sees: connectors and events as their entity models, with typed values,
//! and the plain types of queries and outcomes.

use super::entity::authorization_attempt;
use crate::crypto::Sealed;

pub use super::entity::connector::Model as ConnectorRow;
pub use super::entity::connector_event::Model as EventRow;
pub use super::entity::values::{
    ConnectorState, DeauthorizationReason, EventKind, EventReason, RevocationOutcome,
};

/// Which connectors a list wants.
#[derive(Debug, Default, Clone)]
pub struct ConnectorQuery<'a> {
    /// Only this connector type.
    pub connector_type: Option<&'a str>,
    /// Only this state.
    pub state: Option<ConnectorState>,
    /// Only ids after this one (keyset pagination).
    pub after_id: Option<&'a str>,
    /// At most this many rows.
    pub limit: u64,
    /// Now, for the state filter: a connector past its inactivity deadline counts as
    /// deauthorized before the sweeper reaches it.
    pub now_micros: i64,
}

/// An OAuth 2.0 authorization attempt as stored. Times are microseconds since the epoch.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    /// SHA-256 (hex) of the `state`.
    pub state_hash: String,
    /// Customer account.
    pub account: String,
    /// Connector type id.
    pub connector_type: String,
    /// The connector being reauthorized, if any.
    pub connector_id: Option<String>,
    /// Display name for a new connector.
    pub display_name: Option<String>,
    /// Where to send the browser afterwards.
    pub return_url: Option<String>,
    /// The callback forwards the browser to `return_url` with the provider's parameters, and
    /// the orchestrator completes the authorization.
    pub orchestrator_completes: bool,
    /// The sealed PKCE verifier.
    pub pkce_verifier: Sealed,
    /// Creation time.
    pub create_time: i64,
    /// Expiry.
    pub expire_time: i64,
}

/// What consuming a `state` found.
#[derive(Debug)]
pub enum Consumed {
    /// The attempt, now used up.
    Attempt(Box<AttemptRow>),
    /// No such state.
    Unknown,
    /// It was used before.
    AlreadyUsed,
    /// It expired (and is now used up).
    Expired,
}

/// The secret the revocation outbox keeps: an OAuth 2.0 refresh token (revoking it ends the
/// grant and the access tokens issued from it, RFC 7009 §2.1).
pub const REVOCABLE_FIELD: &str = "refresh_token";

/// A revocation claimed from the outbox.
#[derive(Debug, Clone)]
pub struct RevocationRow {
    /// Outbox id.
    pub id: i64,
    /// Customer account.
    pub account: String,
    /// The connector the token belonged to.
    pub connector_id: String,
    /// Its type.
    pub connector_type: String,
    /// The secret field the token was stored under (part of its sealing context).
    pub field: String,
    /// The sealed token.
    pub token: Sealed,
    /// Tries so far, including the one this claim is for.
    pub attempts: u32,
}

/// What a guarded delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The connector and its secrets are gone, and a revocation is queued.
    Deleted,
    /// No such connector.
    NotFound,
    /// The connector exists but its revision is not the expected one.
    RevisionMismatch,
}

pub(super) fn attempt_row(found: authorization_attempt::Model) -> AttemptRow {
    AttemptRow {
        state_hash: found.state_hash,
        account: found.account,
        connector_type: found.connector_type,
        connector_id: found.connector_id,
        display_name: found.display_name,
        return_url: found.return_url,
        orchestrator_completes: found.orchestrator_completes,
        pkce_verifier: Sealed {
            key_id: found.key_id,
            nonce: found.nonce,
            ciphertext: found.ciphertext,
        },
        create_time: found.create_time,
        expire_time: found.expire_time,
    }
}
