//! Request parameters (a query string or an `application/x-www-form-urlencoded` body) as a map
//! that refuses a name given twice, as RFC 6749 §3.1 and Microsoft (AADSTS9000411) do.
//!
//! The handlers parse parameters themselves rather than through axum's `Query`/`Form`
//! extractors so every malformed request gets Microsoft's error shape, not axum's text.

use std::collections::BTreeMap;

use crate::aad::AadError;

/// Parsed parameters; empty values count as absent.
#[derive(Clone, Debug, Default)]
pub(crate) struct Params(BTreeMap<String, String>);

impl Params {
    /// Parses `a=1&b=2` (query string or form body).
    pub(crate) fn parse(encoded: &[u8]) -> Result<Params, AadError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(encoded)
            .map_err(|_| AadError::malformed("The parameters are not URL-encoded."))?;
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(AadError::invalid_request(
                    9000411,
                    format!(
                        "The request is not properly formatted. The parameter '{name}' is \
                         duplicated."
                    ),
                ));
            }
            map.insert(name, value);
        }
        Ok(Params(map))
    }

    /// The value of `name`, `None` when absent or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// The value of `name`, or AADSTS900144 naming it.
    pub(crate) fn require(&self, name: &str) -> Result<&str, AadError> {
        self.get(name).ok_or_else(|| AadError::missing(name))
    }

    /// Removes and returns `name`.
    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name).filter(|value| !value.is_empty())
    }

    /// Every parameter, for carrying them through a form as hidden fields.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Splits a space-separated scope list, dropping duplicates and keeping the order.
pub(crate) fn split_scopes(scope: &str) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for item in scope.split_whitespace() {
        if !scopes.iter().any(|known| known == item) {
            scopes.push(item.to_owned());
        }
    }
    scopes
}

/// Whether `scopes` contains `name`, ignoring case (OIDC scopes are case-insensitive at
/// Microsoft).
pub(crate) fn has_scope(scopes: &[String], name: &str) -> bool {
    scopes.iter().any(|scope| scope.eq_ignore_ascii_case(name))
}

/// Appends `pairs` to a registered redirect URI's query, keeping what it already has.
pub(crate) fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (name, value) in pairs {
                    query.append_pair(name, value);
                }
            }
            url.to_string()
        }
        // Registration only accepts absolute URLs; keep a sensible answer anyway.
        Err(_) => {
            let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
            let separator = if redirect_uri.contains('?') { '&' } else { '?' };
            format!("{redirect_uri}{separator}{query}")
        }
    }
}
