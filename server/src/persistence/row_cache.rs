//! An in-process cache of connector rows for the hot reads (`GetConnector`, `GetAccessToken`),
//! so that a worker asking for a token many times a second costs no database round trip.
//!
//! Guarantees:
//! - **This process never reads its own change stale.** Every write to a connector row made
//!   through [`super::Store`] drops that row once the write is done, and a read that started
//!   before a drop cannot put its (possibly older) row back: each read takes a ticket first
//!   and is cached only if nothing touching that row was dropped after the ticket.
//! - **Other processes' changes are seen within the time to live** (`row_cache_ttl`, 1 s by
//!   default; 0 turns the cache off). That is the bound the README states for PostgreSQL
//!   deployments of several processes.
//!
//! Time is the injected clock's (microseconds), so tests move it rather than wait.

use std::collections::HashMap;
use std::sync::Mutex;

use super::ConnectorRow;

/// How many connectors are cached at most. When full, everything is dropped at once: the
/// rows are cheap to read again, and a hot connector is back after its next read.
const CAPACITY: usize = 10_000;

#[derive(Debug)]
pub(crate) struct RowCache {
    ttl_micros: i64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by every drop; a read's ticket is its value when the read started.
    sequence: u64,
    /// The sequence of the last drop of everything.
    cleared_at: u64,
    slots: HashMap<String, Slot>,
}

#[derive(Debug)]
enum Slot {
    Cached {
        row: Box<ConnectorRow>,
        read_at: i64,
    },
    /// Dropped by a write at this sequence: reads with an older ticket may not fill it.
    Changed { at: u64 },
}

/// Taken before a database read; see [`RowCache::put`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

impl RowCache {
    pub(crate) fn new(ttl: std::time::Duration) -> Self {
        Self {
            ttl_micros: i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX),
            inner: Mutex::default(),
        }
    }

    fn enabled(&self) -> bool {
        self.ttl_micros > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave it inconsistent (every change is one
        // assignment), so a poisoned lock is used as is.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached row of connector `id` in `account`, if read less than the time to live ago.
    pub(crate) fn get(&self, account: &str, id: &str, now_micros: i64) -> Option<ConnectorRow> {
        if !self.enabled() {
            return None;
        }
        match self.lock().slots.get(id) {
            Some(Slot::Cached { row, read_at })
                if row.account == account
                    && (*read_at..read_at.saturating_add(self.ttl_micros))
                        .contains(&now_micros) =>
            {
                Some(ConnectorRow::clone(row))
            }
            _ => None,
        }
    }

    /// Taken before reading a row from the database.
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.lock().sequence)
    }

    /// Caches `row`, read from the database after `ticket` was taken, unless a write dropped
    /// it since (then the row read may predate that write).
    pub(crate) fn put(&self, ticket: Ticket, row: &ConnectorRow, now_micros: i64) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.lock();
        if ticket.0 < inner.cleared_at {
            return;
        }
        if let Some(Slot::Changed { at }) = inner.slots.get(&row.id)
            && *at > ticket.0
        {
            return;
        }
        if inner.slots.len() >= CAPACITY && !inner.slots.contains_key(&row.id) {
            inner.sequence += 1;
            inner.cleared_at = inner.sequence;
            inner.slots.clear();
            // Reads that started before this clear may not fill the cache either; this one
            // did not overlap a write to its row, so it may.
        }
        inner.slots.insert(
            row.id.clone(),
            Slot::Cached {
                row: Box::new(row.clone()),
                read_at: now_micros,
            },
        );
    }

    /// Drops connector `id`, after a write to its row.
    pub(crate) fn changed(&self, id: &str) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.lock();
        inner.sequence += 1;
        let at = inner.sequence;
        if inner.slots.len() >= CAPACITY && !inner.slots.contains_key(id) {
            inner.cleared_at = at;
            inner.slots.clear();
            return;
        }
        inner.slots.insert(id.to_owned(), Slot::Changed { at });
    }

    /// Drops everything, after a write to many rows (an account deleted).
    pub(crate) fn changed_all(&self) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.lock();
        inner.sequence += 1;
        inner.cleared_at = inner.sequence;
        inner.slots.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000;

    fn row(id: &str, revision: i64) -> ConnectorRow {
        ConnectorRow {
            id: id.into(),
            account: "acme".into(),
            connector_type: "example-key".into(),
            display_name: "d".into(),
            state: crate::persistence::ConnectorState::Authorized,
            deauthorization_reason: None,
            deauthorize_time: None,
            external_account_id: "x".into(),
            external_account_label: "x".into(),
            labels: "{}".into(),
            create_time: 0,
            update_time: 0,
            authorize_time: 0,
            last_transfer_time: None,
            revision,
            inactivity_deadline: i64::MAX,
            pinned: None,
        }
    }

    fn cache() -> RowCache {
        RowCache::new(std::time::Duration::from_secs(1))
    }

    #[test]
    fn a_row_is_served_within_its_time_to_live_and_only_to_its_account() {
        let cache = cache();
        cache.put(cache.ticket(), &row("a", 1), 10 * SECOND);
        assert_eq!(cache.get("acme", "a", 10 * SECOND).unwrap().revision, 1);
        assert_eq!(cache.get("acme", "a", 11 * SECOND - 1).unwrap().revision, 1);
        assert!(cache.get("acme", "a", 11 * SECOND).is_none(), "expired");
        assert!(
            cache.get("acme", "a", 9 * SECOND).is_none(),
            "clock went back"
        );
        assert!(cache.get("other", "a", 10 * SECOND).is_none());
    }

    #[test]
    fn a_write_drops_the_row_and_a_read_that_started_before_it_cannot_put_it_back() {
        let cache = cache();
        cache.put(cache.ticket(), &row("a", 1), 0);
        let before_write = cache.ticket();
        cache.changed("a");
        assert!(cache.get("acme", "a", 0).is_none());
        // The read that began before the write finishes after it with the old row.
        cache.put(before_write, &row("a", 1), 0);
        assert!(cache.get("acme", "a", 0).is_none());
        // A read that began after the write is cached.
        cache.put(cache.ticket(), &row("a", 2), 0);
        assert_eq!(cache.get("acme", "a", 0).unwrap().revision, 2);
    }

    #[test]
    fn dropping_everything_stops_older_reads_from_filling_it() {
        let cache = cache();
        cache.put(cache.ticket(), &row("a", 1), 0);
        let before = cache.ticket();
        cache.changed_all();
        assert!(cache.get("acme", "a", 0).is_none());
        cache.put(before, &row("a", 1), 0);
        assert!(cache.get("acme", "a", 0).is_none());
    }

    #[test]
    fn a_write_to_another_row_does_not_stop_a_read_from_being_cached() {
        let cache = cache();
        let ticket = cache.ticket();
        cache.changed("b");
        cache.put(ticket, &row("a", 1), 0);
        assert!(cache.get("acme", "a", 0).is_some());
    }

    #[test]
    fn a_zero_time_to_live_caches_nothing() {
        let cache = RowCache::new(std::time::Duration::ZERO);
        cache.put(cache.ticket(), &row("a", 1), 0);
        assert!(cache.get("acme", "a", 0).is_none());
    }
}
