//! Credentials handed out recently, by connector, so the workers of one migration asking again
//! and again skip the secret read, its decryption and (for Azure) the signing.
//!
//! An entry belongs to one authorization of its connector (its `authorize_time`), and every
//! `GetAccessToken` reads the connector row first: a reauthorization (here or in another process
//! sharing the database) makes the entry unreachable at once, and a deauthorized or deleted
//! connector is refused before the cache is asked. Entries are reused only for a short while:
//! an Azure SAS for at most a minute (and half its lifetime), so the periodic check of the
//! account key is delayed by a minute at most; an OAuth access token while it is fresh enough
//! not to need a refresh, as the stored one would be.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use chrono::{DateTime, Utc};

use super::model::{AccessToken, Connector};

/// Entries kept at most; past it, expired ones go, and if that is not enough, all.
const CAPACITY: usize = 10_000;

#[derive(Debug, Default, Clone)]
pub(super) struct TokenCache(Arc<Mutex<HashMap<String, Cached>>>);

#[derive(Debug)]
struct Cached {
    authorized_at: DateTime<Utc>,
    reuse_until: DateTime<Utc>,
    token: AccessToken,
}

impl TokenCache {
    /// The credential handed out for this authorization of `connector`, if still reusable.
    pub(super) fn get(&self, connector: &Connector, now: DateTime<Utc>) -> Option<AccessToken> {
        let entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(connector.name.connector.as_str())
            .filter(|cached| {
                cached.authorized_at == connector.authorize_time && now < cached.reuse_until
            })
            .map(|cached| cached.token.clone())
    }

    /// Remembers `token`, handed out for this authorization of `connector`, until
    /// `reuse_until`.
    pub(super) fn put(
        &self,
        connector: &Connector,
        token: &AccessToken,
        now: DateTime<Utc>,
        reuse_until: DateTime<Utc>,
    ) {
        if reuse_until <= now {
            return;
        }
        let mut entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.retain(|_, cached| cached.reuse_until > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            connector.name.connector.as_str().to_owned(),
            Cached {
                authorized_at: connector.authorize_time,
                reuse_until,
                token: token.clone(),
            },
        );
    }
}
