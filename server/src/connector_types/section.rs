//! A connector type's configuration section, `[types.<id>]`, and the typed reads its module
//! makes of it. Each value remembers the name it was given under (a section key, an older
//! top-level key, an environment variable), so an error names the key the operator wrote; no
//! error quotes a secret.

use std::{collections::BTreeMap, ops::RangeInclusive, time::Duration};

use secrecy::SecretString;

/// A section that cannot be used, in words naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SectionError(pub String);

#[derive(Clone)]
struct Entry {
    value: toml::Value,
    /// The name the operator gave the value under.
    origin: String,
}

/// One connector type's section. No `Debug`: it may hold a client secret.
#[derive(Clone, Default)]
pub struct Section {
    id: String,
    values: BTreeMap<String, Entry>,
}

impl Section {
    /// An empty section of type `id`.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            values: BTreeMap::new(),
        }
    }

    /// Sets `key`, given under the name `origin`.
    pub fn set(&mut self, key: &str, value: toml::Value, origin: String) {
        self.values.insert(key.to_owned(), Entry { value, origin });
    }

    /// Whether `key` is set.
    pub fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// The name `key` was given under, or would be in this section.
    pub fn origin(&self, key: &str) -> String {
        self.values.get(key).map_or_else(
            || format!("[types.{}] {key}", self.id),
            |entry| entry.origin.clone(),
        )
    }

    /// Refuses keys the type does not have, naming them and the ones it has.
    pub fn only(&self, known: &[&str]) -> Result<(), SectionError> {
        match self
            .values
            .keys()
            .find(|key| !known.contains(&key.as_str()))
        {
            None => Ok(()),
            Some(key) => Err(SectionError(format!(
                "{}: connector type `{}` has no such key (it has: {})",
                self.origin(key),
                self.id,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ))),
        }
    }

    /// A string value.
    pub fn string(&self, key: &str) -> Result<Option<String>, SectionError> {
        match self.values.get(key).map(|entry| &entry.value) {
            None => Ok(None),
            Some(toml::Value::String(value)) => Ok(Some(value.clone())),
            Some(_) => Err(self.invalid(key, "must be a string")),
        }
    }

    /// A secret string: never quoted in an error.
    pub fn secret(&self, key: &str) -> Result<Option<SecretString>, SectionError> {
        Ok(self.string(key)?.map(SecretString::from))
    }

    /// A list of strings.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, SectionError> {
        match self.values.get(key).map(|entry| &entry.value) {
            None => Ok(None),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(item) => Ok(item.clone()),
                    _ => Err(self.invalid(key, "must be a list of strings")),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(self.invalid(key, "must be a list of strings")),
        }
    }

    /// A number of seconds within `range`.
    pub fn seconds(
        &self,
        key: &str,
        range: RangeInclusive<u64>,
    ) -> Result<Option<Duration>, SectionError> {
        match self.values.get(key).map(|entry| &entry.value) {
            None => Ok(None),
            Some(toml::Value::Integer(secs))
                if u64::try_from(*secs).is_ok_and(|secs| range.contains(&secs)) =>
            {
                Ok(Some(Duration::from_secs(*secs as u64)))
            }
            Some(_) => Err(self.invalid(
                key,
                &format!("must be between {} and {}", range.start(), range.end()),
            )),
        }
    }

    /// A refusal of `key`'s value, naming the key as the operator wrote it.
    pub fn invalid(&self, key: &str, why: &str) -> SectionError {
        SectionError(format!("{} {why}", self.origin(key)))
    }
}

/// Every type's section, by type id, as the configuration gave them. No `Debug`: they may hold
/// client secrets.
#[derive(Clone, Default)]
pub struct Sections {
    by_type: BTreeMap<String, Section>,
}

impl Sections {
    /// Sets `key` of `[types.<type_id>]`.
    pub fn set(&mut self, type_id: &str, key: &str, value: impl Into<toml::Value>) {
        let origin = format!("[types.{type_id}] {key}");
        self.set_from(type_id, key, value.into(), origin);
    }

    /// Sets `key` of `[types.<type_id>]`, given under the name `origin`.
    pub fn set_from(&mut self, type_id: &str, key: &str, value: toml::Value, origin: String) {
        self.by_type
            .entry(type_id.to_owned())
            .or_insert_with(|| Section::new(type_id))
            .set(key, value, origin);
    }

    /// The section of `type_id` (empty when the configuration has none).
    pub fn section(&self, type_id: &str) -> Section {
        self.by_type
            .get(type_id)
            .cloned()
            .unwrap_or_else(|| Section::new(type_id))
    }

    /// The type ids that have a section.
    pub fn type_ids(&self) -> impl Iterator<Item = &str> {
        self.by_type.keys().map(String::as_str)
    }

    /// Whether `key` of `type_id` is set.
    pub fn contains(&self, type_id: &str, key: &str) -> bool {
        self.by_type
            .get(type_id)
            .is_some_and(|section| section.contains(key))
    }

    /// The name `key` of `type_id` was given under.
    pub fn origin(&self, type_id: &str, key: &str) -> String {
        self.section(type_id).origin(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key_as_written_and_never_quote_a_value() {
        let mut section = Section::new("example");
        section.set(
            "client_secret",
            toml::Value::Integer(12345),
            "[oauth.example] client_secret".into(),
        );
        section.set(
            "lifetime_secs",
            toml::Value::Integer(5),
            "lifetime_secs".into(),
        );
        let error = section.secret("client_secret").err().unwrap().0;
        assert_eq!(error, "[oauth.example] client_secret must be a string");
        let error = section.seconds("lifetime_secs", 60..=3600).err().unwrap().0;
        assert_eq!(error, "lifetime_secs must be between 60 and 3600");
        let error = section.only(&["lifetime_secs"]).err().unwrap().0;
        assert!(
            error.starts_with(
                "[oauth.example] client_secret: connector type `example` has no such key"
            ),
            "{error}"
        );
        assert!(!error.contains("12345"));
    }
}
