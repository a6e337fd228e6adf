//! The plain rows and constants the domain sees, and their conversions from the entities.

use sea_orm::ActiveValue::Set;

use super::entity::{authorization_attempt, connector, connector_event};
use crate::crypto::Sealed;

/// A connector as stored. Times are microseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorRow {
    /// Connector id.
    pub id: String,
    /// Customer account id.
    pub account: String,
    /// Connector type id.
    pub connector_type: String,
    /// Display name.
    pub display_name: String,
    /// `AUTHORIZED` or `DEAUTHORIZED`.
    pub state: String,
    /// Why it was deauthorized.
    pub deauthorization_reason: Option<String>,
    /// When it was deauthorized.
    pub deauthorize_time: Option<i64>,
    /// External account id.
    pub external_account_id: String,
    /// External account label.
    pub external_account_label: String,
    /// Labels as a JSON object.
    pub labels: String,
    /// Creation time.
    pub create_time: i64,
    /// Last change.
    pub update_time: i64,
    /// Last authorization.
    pub authorize_time: i64,
    /// Last transfer.
    pub last_transfer_time: Option<i64>,
    /// Revision, incremented on every change.
    pub revision: i64,
    /// When the connector is deauthorized for inactivity unless data moves.
    pub inactivity_deadline: i64,
    /// The server host key pinned (SFTP), `SHA256:…`.
    pub host_key_fingerprint: Option<String>,
}

/// Which connectors a list wants.
#[derive(Debug, Default, Clone)]
pub struct ConnectorQuery<'a> {
    /// Only this connector type.
    pub connector_type: Option<&'a str>,
    /// Only this state.
    pub state: Option<&'a str>,
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

/// A lifecycle event as stored. Times are microseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Position in the log; assigned on append.
    pub cursor: i64,
    /// Customer account.
    pub account: String,
    /// Connector id.
    pub connector_id: String,
    /// Connector type id.
    pub connector_type: String,
    /// `AUTHORIZED`, `REAUTHORIZED`, `DEAUTHORIZED` or `DELETED`.
    pub kind: String,
    /// Deauthorization reason, for `DEAUTHORIZED`.
    pub reason: Option<String>,
    /// When it happened.
    pub create_time: i64,
}

impl From<connector_event::Model> for EventRow {
    fn from(event: connector_event::Model) -> Self {
        EventRow {
            cursor: event.cursor,
            account: event.account,
            connector_id: event.connector_id,
            connector_type: event.connector_type,
            kind: event.kind,
            reason: event.reason,
            create_time: event.create_time,
        }
    }
}

/// Event kinds.
pub const EVENT_AUTHORIZED: &str = "AUTHORIZED";

/// A connector was reauthorized.
pub const EVENT_REAUTHORIZED: &str = "REAUTHORIZED";

/// A connector was deauthorized.
pub const EVENT_DEAUTHORIZED: &str = "DEAUTHORIZED";

/// A connector was deleted.
pub const EVENT_DELETED: &str = "DELETED";

/// A customer account was deleted.
pub const EVENT_ACCOUNT_DELETED: &str = "ACCOUNT_DELETED";

/// The final outcome of a revocation was recorded (`reason` holds the outcome).
pub const EVENT_REVOCATION_FINISHED: &str = "REVOCATION_FINISHED";

/// Revocation outcome: the provider revoked the token.
pub const REVOCATION_REVOKED: &str = "REVOKED";

/// Revocation outcome: the provider offers no way to revoke what we held.
pub const REVOCATION_NOT_SUPPORTED: &str = "NOT_SUPPORTED";

/// Revocation outcome: every try failed.
pub const REVOCATION_FAILED: &str = "FAILED";

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

/// The stored state of an authorized connector.
pub const STATE_AUTHORIZED: &str = "AUTHORIZED";

/// The stored state of a deauthorized connector.
pub const STATE_DEAUTHORIZED: &str = "DEAUTHORIZED";

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

impl From<connector::Model> for ConnectorRow {
    fn from(model: connector::Model) -> Self {
        Self {
            id: model.id,
            account: model.account,
            connector_type: model.connector_type,
            display_name: model.display_name,
            state: model.state,
            deauthorization_reason: model.deauthorization_reason,
            deauthorize_time: model.deauthorize_time,
            external_account_id: model.external_account_id,
            external_account_label: model.external_account_label,
            labels: model.labels,
            create_time: model.create_time,
            update_time: model.update_time,
            authorize_time: model.authorize_time,
            last_transfer_time: model.last_transfer_time,
            revision: model.revision,
            inactivity_deadline: model.inactivity_deadline,
            host_key_fingerprint: model.host_key_fingerprint,
        }
    }
}

impl From<ConnectorRow> for connector::ActiveModel {
    fn from(row: ConnectorRow) -> Self {
        Self {
            id: Set(row.id),
            account: Set(row.account),
            connector_type: Set(row.connector_type),
            display_name: Set(row.display_name),
            state: Set(row.state),
            deauthorization_reason: Set(row.deauthorization_reason),
            deauthorize_time: Set(row.deauthorize_time),
            external_account_id: Set(row.external_account_id),
            external_account_label: Set(row.external_account_label),
            labels: Set(row.labels),
            create_time: Set(row.create_time),
            update_time: Set(row.update_time),
            authorize_time: Set(row.authorize_time),
            last_transfer_time: Set(row.last_transfer_time),
            revision: Set(row.revision),
            inactivity_deadline: Set(row.inactivity_deadline),
            host_key_fingerprint: Set(row.host_key_fingerprint),
        }
    }
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
