//! Conversions between the stored rows and domain values, and the small rules every
//! responsibility shares (a connector must be authorized to be used; which error a duplicate
//! link gets; how secrets are bound to their connector and field).

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};

use super::{
    connector_type::{Catalogue, ConnectorTypeId},
    error::{Error, Result},
    model::{
        AccountId, Connector, ConnectorId, ConnectorName, DeauthorizationReason, DisplayName,
        ExternalAccount, Labels, State,
    },
};
use crate::{
    crypto::{Sealed, Sealer},
    persistence::{self, ConnectorRow, ConnectorState},
    providers,
};

/// Associated data binding a ciphertext to its connector and field.
pub(super) fn secret_context(id: &ConnectorId, field: &str) -> Vec<u8> {
    stored_secret_context(id.as_str(), field)
}

/// Opens a sealed text field of a connector (a token) with `sealer`.
pub(super) fn open_text(
    sealer: &Sealer,
    id: &ConnectorId,
    field: &str,
    sealed: &Sealed,
) -> Result<SecretString> {
    let opened = sealer
        .open(sealed, &secret_context(id, field))
        .map_err(|error| Error::Internal(format!("connector {}: {error}", id.as_str())))?;
    String::from_utf8(opened.expose_secret().to_vec())
        .map(SecretString::from)
        .map_err(|_| Error::Internal(format!("connector {}: `{field}` is not text", id.as_str())))
}

/// [`secret_context`] from a stored connector id.
pub(crate) fn stored_secret_context(connector_id: &str, field: &str) -> Vec<u8> {
    format!("connector/{connector_id}/{field}").into_bytes()
}

pub(super) fn require_authorized(connector: &Connector) -> Result<()> {
    match connector.state {
        State::Authorized => Ok(()),
        State::Deauthorized { reason, .. } => Err(Error::Deauthorized {
            name: connector.name.clone(),
            reason,
            with_credentials: connector
                .connector_type
                .info()
                .auth_method
                .uses_credentials(),
        }),
    }
}

pub(super) fn already_exists(
    connector_type: ConnectorTypeId,
    account: &AccountId,
    existing: ConnectorRow,
) -> Error {
    match ConnectorId::new(&existing.id) {
        Ok(connector) => Error::AlreadyExists {
            connector_type,
            existing: ConnectorName {
                account: account.clone(),
                connector,
            },
        },
        Err(_) => Error::Internal(format!(
            "stored connector id `{}` is malformed",
            existing.id
        )),
    }
}

pub(super) fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

pub(super) fn from_micros(micros: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| Error::Internal(format!("stored time {micros} is out of range")))
}

/// A deauthorization reason as stored.
pub(super) fn stored_reason(reason: DeauthorizationReason) -> persistence::DeauthorizationReason {
    match reason {
        DeauthorizationReason::Inactivity => persistence::DeauthorizationReason::Inactivity,
        DeauthorizationReason::Revoked => persistence::DeauthorizationReason::Revoked,
        DeauthorizationReason::Expired => persistence::DeauthorizationReason::Expired,
    }
}

/// A stored deauthorization reason.
pub(super) fn reason_of(stored: persistence::DeauthorizationReason) -> DeauthorizationReason {
    match stored {
        persistence::DeauthorizationReason::Inactivity => DeauthorizationReason::Inactivity,
        persistence::DeauthorizationReason::Revoked => DeauthorizationReason::Revoked,
        persistence::DeauthorizationReason::Expired => DeauthorizationReason::Expired,
    }
}

/// The one conversion of a domain connector to its stored row ([`from_row`] is the other way).
pub(super) fn to_row(connector: &Connector) -> ConnectorRow {
    let (state, reason, deauthorize_time) = match connector.state {
        State::Authorized => (ConnectorState::Authorized, None, None),
        State::Deauthorized { reason, at } => (
            ConnectorState::Deauthorized,
            Some(stored_reason(reason)),
            Some(micros(at)),
        ),
    };
    ConnectorRow {
        id: connector.name.connector.as_str().to_owned(),
        account: connector.name.account.as_str().to_owned(),
        connector_type: connector.connector_type.as_str().to_owned(),
        display_name: connector.display_name.as_str().to_owned(),
        state,
        deauthorization_reason: reason,
        deauthorize_time,
        external_account_id: connector.external_account.id.clone(),
        external_account_label: connector.external_account.label.clone(),
        labels: serde_json::to_string(connector.labels.as_map())
            .expect("a string map always serialises"),
        create_time: micros(connector.create_time),
        update_time: micros(connector.update_time),
        authorize_time: micros(connector.authorize_time),
        last_transfer_time: connector.last_transfer_time.map(micros),
        revision: connector.revision,
        inactivity_deadline: micros(connector.inactivity_deadline),
        pinned: connector.external_account.pinned.clone(),
    }
}

pub(super) fn from_row(catalogue: &Catalogue, row: ConnectorRow) -> Result<Connector> {
    let corrupt =
        |what: &str| Error::Internal(format!("connector {} has a corrupt {what}", row.id));
    let state = match row.state {
        ConnectorState::Authorized => State::Authorized,
        ConnectorState::Deauthorized => State::Deauthorized {
            reason: reason_of(
                row.deauthorization_reason
                    .ok_or_else(|| corrupt("deauthorization reason"))?,
            ),
            at: from_micros(
                row.deauthorize_time
                    .ok_or_else(|| corrupt("deauthorize time"))?,
            )?,
        },
    };
    let labels: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&row.labels).map_err(|_| corrupt("labels"))?;
    Ok(Connector {
        name: ConnectorName {
            account: AccountId::new(&row.account).map_err(|_| corrupt("account"))?,
            connector: ConnectorId::new(&row.id).map_err(|_| corrupt("id"))?,
        },
        connector_type: catalogue
            .parse(&row.connector_type)
            .ok_or_else(|| corrupt("type"))?,
        display_name: DisplayName::new(&row.display_name).map_err(|_| corrupt("display name"))?,
        state,
        external_account: ExternalAccount {
            id: row.external_account_id.clone(),
            label: row.external_account_label.clone(),
            pinned: row.pinned.clone(),
        },
        labels: Labels::new(labels).map_err(|_| corrupt("labels"))?,
        create_time: from_micros(row.create_time)?,
        update_time: from_micros(row.update_time)?,
        authorize_time: from_micros(row.authorize_time)?,
        last_transfer_time: row.last_transfer_time.map(from_micros).transpose()?,
        revision: row.revision,
        inactivity_deadline: from_micros(row.inactivity_deadline)?,
    })
}

impl From<persistence::Error> for Error {
    fn from(error: persistence::Error) -> Self {
        match error {
            persistence::Error::Unavailable(message) => {
                tracing::warn!(%message, "database unavailable");
                Error::StorageUnavailable
            }
            persistence::Error::Contention(message) => {
                tracing::info!(%message, "concurrent transactions conflicted");
                Error::ConcurrentModification("the connector".into())
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<providers::Error> for Error {
    fn from(error: providers::Error) -> Self {
        match error {
            providers::Error::CredentialsRejected(message) | providers::Error::Refused(message) => {
                Error::CredentialsRejected(message)
            }
            providers::Error::EndpointNotAllowed { field, rule } => {
                Error::EndpointNotAllowed { field, rule }
            }
            providers::Error::InvalidGrant { description, .. } => {
                Error::CredentialsRejected(format!("invalid_grant: {description}"))
            }
            providers::Error::IdTokenRejected(message) => Error::AuthorizationCodeRejected(
                format!("the id token is not acceptable: {message}"),
            ),
            providers::Error::AdminRequired { who_may_consent } => {
                Error::AdminRequired { who_may_consent }
            }
            providers::Error::PinnedChanged {
                attribute,
                expected,
                presented,
            } => Error::PinnedChanged {
                name: None,
                attribute,
                expected,
                presented,
            },
            providers::Error::ClientRejected(message) => Error::OAuthClientRejected(message),
            // A provider answering what its protocol does not allow is treated as an outage.
            providers::Error::Protocol(message) => Error::ProviderUnavailable {
                message,
                retry_after: std::time::Duration::from_secs(30),
            },
            providers::Error::Unavailable {
                message,
                retry_after,
            } => Error::ProviderUnavailable {
                message,
                retry_after,
            },
        }
    }
}
