//! The `ListConnectors` filter: an AIP-160 subset of `field = value` terms joined by `AND`, over
//! `connector_type` and `state`. Anything else is refused with a field violation rather than
//! ignored, so a typo never silently widens a listing.

use super::names::parse_connector_type;
use crate::domain::{Error, ListFilter, Result, connector_type::Catalogue, model::StateFilter};

const FIELD: &str = "filter";

/// Parses a filter string; empty means no filter.
pub(crate) fn parse(catalogue: &Catalogue, filter: &str) -> Result<ListFilter> {
    let mut parsed = ListFilter::default();
    if filter.trim().is_empty() {
        return Ok(parsed);
    }
    for term in filter.split(" AND ") {
        let (field, value) = term.split_once('=').ok_or_else(|| {
            Error::invalid(
                FIELD,
                format!("`{}` is not a `field = value` comparison", term.trim()),
            )
        })?;
        let value = unquote(value.trim());
        match field.trim() {
            "connector_type" => {
                // A filter may name the type by its bare id, as people type it.
                let name = if value.starts_with("connectorTypes/") {
                    value.to_owned()
                } else {
                    format!("connectorTypes/{value}")
                };
                let connector_type = parse_connector_type(catalogue, FIELD, &name)?;
                if parsed.connector_type.replace(connector_type).is_some() {
                    return Err(Error::invalid(
                        FIELD,
                        "connector_type is compared more than once",
                    ));
                }
            }
            "state" => {
                let state = match value.strip_prefix("STATE_").unwrap_or(value) {
                    "AUTHORIZED" => StateFilter::Authorized,
                    "DEAUTHORIZED" => StateFilter::Deauthorized,
                    _ => {
                        return Err(Error::invalid(
                            FIELD,
                            "state must be AUTHORIZED or DEAUTHORIZED",
                        ));
                    }
                };
                if parsed.state.replace(state).is_some() {
                    return Err(Error::invalid(FIELD, "state is compared more than once"));
                }
            }
            other => {
                return Err(Error::invalid(
                    FIELD,
                    format!(
                        "cannot filter on `{other}`; filterable fields are connector_type and state"
                    ),
                ));
            }
        }
    }
    Ok(parsed)
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::connector_type::examples;

    #[test]
    fn parses_the_supported_subset() {
        let catalogue = examples::catalogue();
        let parse = |filter| parse(&catalogue, filter);
        let filter =
            parse(r#"connector_type = "connectorTypes/example-oauth" AND state = DEAUTHORIZED"#)
                .unwrap();
        assert_eq!(filter.connector_type, catalogue.parse("example-oauth"));
        assert_eq!(filter.state, Some(StateFilter::Deauthorized));
        assert!(parse("").unwrap().state.is_none());
        for bad in [
            "state",
            "color = red",
            "state = SLEEPING",
            "state = AUTHORIZED AND state = DEAUTHORIZED",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
