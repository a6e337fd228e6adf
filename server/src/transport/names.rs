//! Resource names of the API (`accounts/{account}`, `accounts/{account}/connectors/{id}`,
//! `connectorTypes/{id}`), parsed into domain values. A malformed name is a field violation on
//! the request field it came from.

use crate::domain::{
    Error, Result,
    connector_type::{Catalogue, ConnectorTypeId},
    model::{AccountId, ConnectorId, ConnectorName},
};

/// Parses `accounts/{account}` from request field `field`.
pub(crate) fn parse_account(field: &str, name: &str) -> Result<AccountId> {
    let account = name
        .strip_prefix("accounts/")
        .ok_or_else(|| Error::invalid(field, "must be `accounts/{account}`"))?;
    let account = AccountId::new(account).map_err(|invalid| Error::invalid(field, invalid.0))?;
    // On the call's span (see `observe`): its log line names the account.
    tracing::Span::current().record("account", account.as_str());
    Ok(account)
}

/// Parses `accounts/{account}/connectors/{connector}` from request field `field`.
pub(crate) fn parse_connector(field: &str, name: &str) -> Result<ConnectorName> {
    let malformed = || Error::invalid(field, "must be `accounts/{account}/connectors/{connector}`");
    let rest = name.strip_prefix("accounts/").ok_or_else(malformed)?;
    let (account, connector) = rest.split_once("/connectors/").ok_or_else(malformed)?;
    let name = ConnectorName {
        account: AccountId::new(account).map_err(|invalid| Error::invalid(field, invalid.0))?,
        connector: ConnectorId::new(connector)
            .map_err(|invalid| Error::invalid(field, invalid.0))?,
    };
    // On the call's span (see `observe`): its log line names the account and connector.
    let span = tracing::Span::current();
    span.record("account", name.account.as_str());
    span.record("connector", name.connector.as_str());
    Ok(name)
}

/// The id of a well-formed `connectorTypes/{id}` name (1 to 63 lowercase letters, digits and
/// dashes), whether or not such a type exists.
pub(crate) fn connector_type_id<'a>(field: &str, name: &'a str) -> Result<&'a str> {
    if name.is_empty() {
        return Err(Error::invalid(
            field,
            "is required: a `connectorTypes/{connector_type}` name (ListConnectorTypes lists them)",
        ));
    }
    let malformed = || {
        Error::invalid(
            field,
            "must be `connectorTypes/{connector_type}` (ListConnectorTypes lists them)",
        )
    };
    let id = name.strip_prefix("connectorTypes/").ok_or_else(malformed)?;
    let well_formed = (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'-'));
    if well_formed {
        Ok(id)
    } else {
        Err(malformed())
    }
}

/// Parses `connectorTypes/{id}` from request field `field`: malformed or unknown is a field
/// violation (the type is an argument here, not the resource being read).
pub(crate) fn parse_connector_type(
    catalogue: &Catalogue,
    field: &str,
    name: &str,
) -> Result<ConnectorTypeId> {
    let id = connector_type_id(field, name)?;
    catalogue.parse(id).ok_or_else(|| {
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
