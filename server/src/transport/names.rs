//! Resource names of the API (`accounts/{account}`, `accounts/{account}/connectors/{id}`,
//! `connectorTypes/{id}`), parsed into domain values. A malformed name is a field violation on
//! the request field it came from.

use crate::domain::{
    Error, Result,
    connector_type::ConnectorTypeId,
    model::{AccountId, ConnectorId, ConnectorName},
};

/// Parses `accounts/{account}` from request field `field`.
pub(crate) fn parse_account(field: &str, name: &str) -> Result<AccountId> {
    let account = name
        .strip_prefix("accounts/")
        .ok_or_else(|| Error::invalid(field, "must be `accounts/{account}`"))?;
    AccountId::new(account).map_err(|invalid| Error::invalid(field, invalid.0))
}

/// Parses `accounts/{account}/connectors/{connector}` from request field `field`.
pub(crate) fn parse_connector(field: &str, name: &str) -> Result<ConnectorName> {
    let malformed = || Error::invalid(field, "must be `accounts/{account}/connectors/{connector}`");
    let rest = name.strip_prefix("accounts/").ok_or_else(malformed)?;
    let (account, connector) = rest.split_once("/connectors/").ok_or_else(malformed)?;
    Ok(ConnectorName {
        account: AccountId::new(account).map_err(|invalid| Error::invalid(field, invalid.0))?,
        connector: ConnectorId::new(connector)
            .map_err(|invalid| Error::invalid(field, invalid.0))?,
    })
}

/// Parses `connectorTypes/{id}` (or a bare id) from request field `field`.
pub(crate) fn parse_connector_type(field: &str, name: &str) -> Result<ConnectorTypeId> {
    if name.is_empty() {
        return Err(Error::invalid(
            field,
            "is required, for example `connectorTypes/azure-blob-storage`",
        ));
    }
    let id = name.strip_prefix("connectorTypes/").unwrap_or(name);
    ConnectorTypeId::parse(id).ok_or_else(|| {
        Error::invalid(
            field,
            format!(
                "unknown connector type `{}`; ListConnectorTypes lists them",
                name.escape_debug()
            ),
        )
    })
}

/// The resource name of a connector type.
pub(crate) fn connector_type_name(id: ConnectorTypeId) -> String {
    format!("connectorTypes/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_names_round_trip_and_reject_garbage() {
        let name = "accounts/acme/connectors/0192f5a4-0000-7000-8000-000000000000";
        assert_eq!(parse_connector("name", name).unwrap().to_string(), name);
        for bad in [
            "",
            "accounts/acme",
            "accounts//connectors/0192f5a4-0000-7000-8000-000000000000",
            "accounts/acme/connectors/not-a-uuid",
            "accounts/ac me/connectors/0192f5a4-0000-7000-8000-000000000000",
            "accounts/acme/connectors/0192F5A4-0000-7000-8000-000000000000",
        ] {
            assert!(parse_connector("name", bad).is_err(), "{bad}");
        }
    }
}
