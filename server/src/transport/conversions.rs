//! Conversions between the protobuf contract and domain values, all in one module:
//! domain → proto with `From`, proto → domain with validating functions that name the request
//! field of every violation.

use chrono::{DateTime, Utc};
use connector_api::pb;
use secrecy::ExposeSecret as _;

use super::names::connector_type_name;
use crate::domain::{
    CredentialFields, Error, FieldError, FieldViolation, Result,
    connector_type::{AuthMethod, Catalogue, ConnectorTypeId, MicrosoftService},
    model::{AccessToken, AccessTokenKind, Connector, DeauthorizationReason, Labels, State},
};

pub(crate) fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

impl From<AuthMethod> for pb::AuthMethod {
    fn from(method: AuthMethod) -> Self {
        match method {
            AuthMethod::AccountKey => pb::AuthMethod::AccountKey,
            AuthMethod::Password => pb::AuthMethod::Password,
            AuthMethod::OAuth2Delegated => pb::AuthMethod::Oauth2Delegated,
            AuthMethod::OAuth2AdminConsent => pb::AuthMethod::Oauth2AdminConsent,
        }
    }
}

impl From<MicrosoftService> for pb::MicrosoftService {
    fn from(service: MicrosoftService) -> Self {
        match service {
            MicrosoftService::AzureBlobStorage => pb::MicrosoftService::AzureBlobStorage,
            MicrosoftService::OneDriveConsumer => pb::MicrosoftService::OnedriveConsumer,
            MicrosoftService::OneDriveForBusinessAdministrator => {
                pb::MicrosoftService::OnedriveForBusinessAdministrator
            }
            MicrosoftService::OneDriveForBusinessUser => {
                pb::MicrosoftService::OnedriveForBusinessUser
            }
            MicrosoftService::SharePointOnline => pb::MicrosoftService::SharepointOnline,
        }
    }
}

/// Parses the `microsoft_service` request field.
pub(crate) fn microsoft_service(value: i32) -> Result<MicrosoftService> {
    match pb::MicrosoftService::try_from(value) {
        Ok(pb::MicrosoftService::AzureBlobStorage) => Ok(MicrosoftService::AzureBlobStorage),
        Ok(pb::MicrosoftService::OnedriveConsumer) => Ok(MicrosoftService::OneDriveConsumer),
        Ok(pb::MicrosoftService::OnedriveForBusinessAdministrator) => {
            Ok(MicrosoftService::OneDriveForBusinessAdministrator)
        }
        Ok(pb::MicrosoftService::OnedriveForBusinessUser) => {
            Ok(MicrosoftService::OneDriveForBusinessUser)
        }
        Ok(pb::MicrosoftService::SharepointOnline) => Ok(MicrosoftService::SharePointOnline),
        Ok(pb::MicrosoftService::Unspecified) | Err(_) => Err(Error::invalid(
            "microsoft_service",
            "must name a Microsoft service, for example MICROSOFT_SERVICE_SHAREPOINT_ONLINE",
        )),
    }
}

/// A catalogue entry, with whether this server has it configured.
pub(crate) fn connector_type(id: ConnectorTypeId, configured: bool) -> pb::ConnectorType {
    let connector_type = id.info();
    pb::ConnectorType {
        name: connector_type_name(id),
        display_name: connector_type.display_name.to_owned(),
        auth_method: pb::AuthMethod::from(connector_type.auth_method).into(),
        microsoft_services: connector_type
            .microsoft_services
            .iter()
            .map(|&service| pb::MicrosoftService::from(service).into())
            .collect(),
        description: connector_type.description.to_owned(),
        credential_fields: connector_type
            .credential_fields
            .iter()
            .map(|field| pb::CredentialField {
                name: field.name.to_owned(),
                display_name: field.display_name.to_owned(),
                secret: field.secret,
                required: field.required,
                validation_hint: field.validation_hint.to_owned(),
                identifies_account: field.identifies_account,
            })
            .collect(),
        services: connector_type
            .services
            .iter()
            .map(|&service| service.to_owned())
            .collect(),
        configured,
        deletion: Some(pb::ConnectorDeletion {
            revokes_access: connector_type.deletion.revokes_access,
            access: connector_type.deletion.access.to_owned(),
            check: connector_type.deletion.check.to_owned(),
        }),
        identity_provider: connector_type
            .identity_provider
            .unwrap_or_default()
            .to_owned(),
    }
}

impl From<DeauthorizationReason> for pb::connector::DeauthorizationReason {
    fn from(reason: DeauthorizationReason) -> Self {
        match reason {
            DeauthorizationReason::Inactivity => Self::Inactivity,
            DeauthorizationReason::Revoked => Self::Revoked,
            DeauthorizationReason::Expired => Self::Expired,
        }
    }
}

impl From<Connector> for pb::Connector {
    fn from(connector: Connector) -> Self {
        let etag = connector.etag();
        let (state, reason, deauthorize_time) = match connector.state {
            State::Authorized => (
                pb::connector::State::Authorized,
                pb::connector::DeauthorizationReason::Unspecified,
                None,
            ),
            State::Deauthorized { reason, at } => (
                pb::connector::State::Deauthorized,
                reason.into(),
                Some(timestamp(at)),
            ),
        };
        Self {
            name: connector.name.to_string(),
            connector_type: connector_type_name(connector.connector_type),
            display_name: connector.display_name.as_str().to_owned(),
            state: state.into(),
            deauthorization_reason: reason.into(),
            external_account: Some(pb::ExternalAccount {
                id: connector.external_account.id,
                label: connector.external_account.label,
                // The one pinned attribute the contract knows is an SSH host key.
                host_key_fingerprint: connector.external_account.pinned.unwrap_or_default(),
            }),
            auth_method: pb::AuthMethod::from(connector.connector_type.info().auth_method).into(),
            create_time: Some(timestamp(connector.create_time)),
            authorize_time: Some(timestamp(connector.authorize_time)),
            last_transfer_time: connector.last_transfer_time.map(timestamp),
            labels: connector.labels.as_map().clone().into_iter().collect(),
            etag,
            update_time: Some(timestamp(connector.update_time)),
            deauthorize_time,
            inactivity_deadline: Some(timestamp(connector.inactivity_deadline)),
        }
    }
}

impl From<AccessToken> for pb::GetAccessTokenResponse {
    fn from(token: AccessToken) -> Self {
        use pb::get_access_token_response::TokenType;
        let (token_type, aws_session_credentials) = match token.kind {
            AccessTokenKind::Bearer => (TokenType::Bearer, None),
            AccessTokenKind::AzureSas => (TokenType::AzureSas, None),
            AccessTokenKind::AwsSession {
                access_key_id,
                secret_access_key,
            } => (
                TokenType::AwsSession,
                Some(pb::AwsSessionCredentials {
                    access_key_id,
                    secret_access_key: secret_access_key.expose_secret().to_owned(),
                }),
            ),
        };
        Self {
            access_token: token.token.expose_secret().to_owned(),
            token_type: token_type.into(),
            expire_time: Some(timestamp(token.expire_time)),
            scopes: token.scopes,
            resource_url: token.resource_url,
            aws_session_credentials,
        }
    }
}

/// Parses labels from request field `field`.
pub(crate) fn labels(
    field: &str,
    labels: std::collections::HashMap<String, String>,
) -> Result<Labels> {
    Labels::new(labels).map_err(|invalid| Error::invalid(field, invalid.0))
}

/// Which request field credentials came in; violations are named after it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CredentialsArm {
    /// `credentials.azure_storage_account_key`.
    AzureStorageAccountKey,
    /// `credentials.fields`.
    Fields,
}

/// The credential fields of a request, by the catalogue's names, with the arm they came in.
/// Unknown and missing fields are refused here; the provider judges the values.
pub(crate) fn credentials(
    catalogue: &Catalogue,
    connector_type: ConnectorTypeId,
    credentials: Option<pb::Credentials>,
) -> Result<(CredentialFields, CredentialsArm)> {
    let kind = credentials
        .and_then(|credentials| credentials.kind)
        .ok_or_else(|| Error::invalid("credentials", "is required"))?;
    let mut fields = CredentialFields::default();
    match kind {
        pb::credentials::Kind::AzureStorageAccountKey(key) => {
            // The older arm, from before `fields`: it belongs to the type that serves Azure
            // Blob Storage.
            let given = catalogue.serving(MicrosoftService::AzureBlobStorage);
            if given != Some(connector_type) {
                return Err(match given {
                    Some(given) => Error::CredentialsTypeMismatch {
                        expected: connector_type,
                        given,
                    },
                    None => Error::invalid(
                        "credentials.azure_storage_account_key",
                        "no connector type takes it on this server",
                    ),
                });
            }
            fields.insert("account_name", key.account_name);
            fields.insert("account_key", key.account_key);
            Ok((fields, CredentialsArm::AzureStorageAccountKey))
        }
        pb::credentials::Kind::Fields(given) => {
            for (name, value) in credential_fields(connector_type, given.values)? {
                fields.insert(name, value);
            }
            Ok((fields, CredentialsArm::Fields))
        }
    }
}

/// The provider's verdict on credential values, as field violations of the arm they came in.
pub(crate) fn credential_violations(arm: CredentialsArm, errors: Vec<FieldError>) -> Error {
    Error::InvalidArgument(
        errors
            .into_iter()
            .map(|error| FieldViolation {
                field: match arm {
                    CredentialsArm::AzureStorageAccountKey => {
                        format!("credentials.azure_storage_account_key.{}", error.field)
                    }
                    CredentialsArm::Fields => credential_field_path(error.field),
                },
                description: error.description,
            })
            .collect(),
    )
}

/// How a field violation names a value of `Credentials.fields`.
pub(crate) fn credential_field_path(name: &str) -> String {
    format!("credentials.fields.values.{name}")
}

/// Checks named credential fields against the type's catalogue entry: every field known, every
/// required one given (and not empty). Every violation is reported at once.
fn credential_fields(
    connector_type: ConnectorTypeId,
    values: std::collections::HashMap<String, String>,
) -> Result<std::collections::HashMap<String, String>> {
    let known = connector_type.info().credential_fields;
    let mut violations = Vec::new();
    let mut unknown: Vec<&String> = values
        .keys()
        .filter(|name| !known.iter().any(|field| field.name == name.as_str()))
        .collect();
    unknown.sort();
    for name in unknown {
        violations.push(FieldViolation {
            field: credential_field_path(name),
            description: format!(
                "is not a credential field of connectorTypes/{connector_type} (see its credential_fields)"
            ),
        });
    }
    for field in known {
        if field.required && values.get(field.name).is_none_or(String::is_empty) {
            violations.push(FieldViolation {
                field: credential_field_path(field.name),
                description: format!("is required ({})", field.validation_hint),
            });
        }
    }
    if violations.is_empty() {
        Ok(values)
    } else {
        Err(Error::InvalidArgument(violations))
    }
}

/// The revision an etag request field names; empty means "any revision".
pub(crate) fn expected_revision(field: &str, etag: &str) -> Result<Option<i64>> {
    if etag.is_empty() {
        return Ok(None);
    }
    Connector::revision_of_etag(etag)
        .map(Some)
        .map_err(|invalid| Error::invalid(field, invalid.0))
}

/// Fields of `Connector` that `UpdateConnector` can never change.
const NOT_UPDATABLE: [&str; 13] = [
    "inactivity_deadline",
    "name",
    "connector_type",
    "state",
    "deauthorization_reason",
    "external_account",
    "auth_method",
    "create_time",
    "authorize_time",
    "last_transfer_time",
    "etag",
    "update_time",
    "deauthorize_time",
];

/// An `UpdateConnector` request as a domain update (AIP-134).
///
/// Labels are the only mutable field. Without a mask, every populated field is meant: labels
/// when any are given (an empty map is indistinguishable from "not sent", so clearing labels
/// takes an explicit `labels` mask), and a display name when one is given, which must then be the
/// current one. `*` means every field, so it also checks the display name. Naming
/// `display_name` in the mask is refused: connectors cannot be renamed.
pub(crate) fn connector_update(
    connector: pb::Connector,
    mask: Option<prost_types::FieldMask>,
) -> Result<crate::domain::ConnectorUpdate> {
    let paths = mask.map(|mask| mask.paths).unwrap_or_default();
    let mut update = crate::domain::ConnectorUpdate {
        expected_revision: expected_revision("connector.etag", &connector.etag)?,
        ..Default::default()
    };
    let given_display_name = (!connector.display_name.is_empty()).then_some(connector.display_name);
    if paths.is_empty() {
        if !connector.labels.is_empty() {
            update.labels = Some(labels("connector.labels", connector.labels)?);
        }
        update.display_name = given_display_name;
        return Ok(update);
    }
    for path in &paths {
        match path.as_str() {
            "labels" => {}
            "*" => update.display_name = given_display_name.clone(),
            "display_name" => return Err(Error::DisplayNameImmutable),
            path if NOT_UPDATABLE.contains(&path) => {
                return Err(Error::invalid(
                    "update_mask",
                    format!("`{path}` is output only or immutable; only `labels` can be updated"),
                ));
            }
            other => {
                return Err(Error::invalid(
                    "update_mask",
                    format!("`{other}` is not a field of Connector"),
                ));
            }
        }
    }
    update.labels = Some(labels("connector.labels", connector.labels)?);
    Ok(update)
}

impl From<crate::domain::ConnectorEvent> for pb::ConnectorEvent {
    fn from(event: crate::domain::ConnectorEvent) -> Self {
        use crate::domain::{EventKind, RevocationOutcome};
        let kind = match event.kind {
            EventKind::Authorized => pb::connector_event::Kind::Authorized,
            EventKind::Reauthorized => pb::connector_event::Kind::Reauthorized,
            EventKind::Deauthorized => pb::connector_event::Kind::Deauthorized,
            EventKind::Deleted => pb::connector_event::Kind::Deleted,
            EventKind::AccountDeleted => pb::connector_event::Kind::AccountDeleted,
            EventKind::RevocationFinished => pb::connector_event::Kind::RevocationFinished,
        };
        let revocation_outcome = match event.revocation_outcome {
            None => pb::connector_event::RevocationOutcome::Unspecified,
            Some(RevocationOutcome::Revoked) => pb::connector_event::RevocationOutcome::Revoked,
            Some(RevocationOutcome::NotSupported) => {
                pb::connector_event::RevocationOutcome::NotSupported
            }
            Some(RevocationOutcome::Failed) => pb::connector_event::RevocationOutcome::Failed,
        };
        Self {
            cursor: event.cursor,
            connector: event
                .connector
                .map(|name| name.to_string())
                .unwrap_or_default(),
            connector_type: event
                .connector_type
                .map(connector_type_name)
                .unwrap_or_default(),
            kind: kind.into(),
            deauthorization_reason: event
                .reason
                .map(pb::connector::DeauthorizationReason::from)
                .unwrap_or(pb::connector::DeauthorizationReason::Unspecified)
                .into(),
            create_time: Some(timestamp(event.time)),
            revocation_outcome: revocation_outcome.into(),
        }
    }
}
