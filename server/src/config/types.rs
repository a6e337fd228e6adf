//! Each connector type's section of the configuration, `[types.<id>]`, gathered from the file
//! and the environment. The older spellings stay accepted: `[oauth.<id>]` tables, and the
//! top-level keys and environment variables each type's module lists as aliases. The
//! environment wins over the file; one key given twice in the file is refused.

use std::collections::BTreeMap;

use super::ConfigError;
use crate::connector_types::{self, Sections};

/// The sections, from the file's `[types.*]` and `[oauth.*]` tables, its other top-level keys
/// (each must be a type's alias) and the environment.
pub(super) fn sections(
    types: BTreeMap<String, toml::Table>,
    oauth: BTreeMap<String, toml::Table>,
    mut other: BTreeMap<String, toml::Value>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Sections, ConfigError> {
    let mut sections = Sections::default();
    for (id, table) in types {
        for (key, value) in table {
            let origin = format!("[types.{id}] {key}");
            sections.set_from(&id, &key, value, origin);
        }
    }
    for (id, table) in oauth {
        let oauth_type = connector_types::module(&id)
            .is_some_and(|module| !module.entry.auth_method.uses_credentials());
        if !oauth_type {
            return Err(ConfigError(format!(
                "[oauth.{id}]: not an OAuth 2.0 connector type"
            )));
        }
        for (key, value) in table {
            given_once(&sections, &id, &key, &format!("[oauth.{id}] {key}"))?;
            sections.set_from(&id, &key, value, format!("[oauth.{id}] {key}"));
        }
    }
    for module in connector_types::MODULES {
        let id = module.entry.id;
        for alias in module.aliases {
            if let Some(value) = alias.file_key.and_then(|file_key| other.get(file_key)) {
                let file_key = alias.file_key.unwrap_or_default();
                given_once(&sections, id, alias.key, file_key)?;
                sections.set_from(id, alias.key, value.clone(), file_key.to_owned());
            }
            if let Some(value) = alias.env.and_then(env) {
                let name = alias.env.unwrap_or_default().to_owned();
                sections.set_from(id, alias.key, toml::Value::String(value), name);
            }
        }
    }
    // A key several types alias (Microsoft's) is taken by all of them, then dropped once.
    for module in connector_types::MODULES {
        for file_key in module.aliases.iter().filter_map(|alias| alias.file_key) {
            other.remove(file_key);
        }
    }
    match other.keys().next() {
        None => Ok(sections),
        Some(key) => Err(ConfigError(format!(
            "unknown key `{key}` (README's Configuration section lists them)"
        ))),
    }
}

fn given_once(sections: &Sections, id: &str, key: &str, origin: &str) -> Result<(), ConfigError> {
    if sections.contains(id, key) {
        return Err(ConfigError(format!(
            "{origin} and {} set the same key: keep one",
            sections.origin(id, key)
        )));
    }
    Ok(())
}
