//! Event watches, bounded and shared. One poller per process reads every account's new events
//! (one query per interval, however many watches are open) and hands each to the watches of its
//! account through a broadcast channel; a watch reads the database itself only to catch up (its
//! replay after the cursor it was given, or after falling behind the channel). Watches are
//! capped per API key and per account, and each ends after a maximum duration (the client
//! resumes after the last cursor it received).
//!
//! Correctness rests on cursors becoming visible in commit order (see
//! `persistence::append_events`): a watch subscribes before it catches up, so every event
//! committed after its catch-up has a higher cursor than anything the poller had read before
//! the subscription, and reaches it through the channel; events it sees twice (through both)
//! are skipped by cursor.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use connector_api::pb;
use tokio::sync::{broadcast, mpsc};
use tonic::Status;

use super::Refusal;
use crate::domain::{ConnectorEvent, Events, model::AccountId};

/// Events read per query, by the poller and by a catching-up watch.
const BATCH: u64 = 500;

/// Events a watch may fall behind the poller before it catches up from the database.
const CHANNEL_CAPACITY: usize = 1024;

/// How many watches may be open, and for how long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WatchLimits {
    /// Open watches per API key.
    pub(crate) per_key: usize,
    /// Open watches per customer account (all keys together).
    pub(crate) per_account: usize,
    /// How long one watch stays open before the server ends it.
    pub(crate) max_duration: Duration,
}

/// The process's one source of new events, shared by every watch.
#[derive(Debug, Clone)]
pub(crate) struct EventFeed {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    events: Events,
    limits: WatchLimits,
    state: Mutex<State>,
    metrics: Arc<crate::metrics::Metrics>,
}

#[derive(Debug, Default)]
struct State {
    /// One channel per account with open watches.
    channels: HashMap<AccountId, broadcast::Sender<Arc<ConnectorEvent>>>,
    watches_per_key: HashMap<String, usize>,
    watches_per_account: HashMap<AccountId, usize>,
}

/// An open watch's place in the feed; leaving it (drop) frees its slot under both caps.
#[derive(Debug)]
struct Subscription {
    feed: EventFeed,
    key_id: String,
    account: AccountId,
    events: broadcast::Receiver<Arc<ConnectorEvent>>,
    _open: crate::metrics::WatchGuard,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut state = self.feed.state();
        release(&mut state.watches_per_key, &self.key_id);
        release(&mut state.watches_per_account, &self.account);
    }
}

fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(key);
        }
    }
}

impl EventFeed {
    /// A feed of the events after the current last one; its poller runs until `shutdown`
    /// flips. Waits until the database answers (it just ran the migrations, so it normally
    /// does at once).
    pub(crate) async fn start(
        events: Events,
        limits: WatchLimits,
        interval: Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> EventFeed {
        let last = loop {
            match events.latest_cursor().await {
                Ok(cursor) => break cursor,
                Err(error) => {
                    tracing::warn!(%error, "event feed: cannot read the latest cursor; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let feed = EventFeed {
            inner: Arc::new(Inner {
                events,
                limits,
                state: Mutex::new(State::default()),
                metrics,
            }),
        };
        tokio::spawn(feed.clone().poll(last, interval, shutdown));
        feed
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads new events every `interval` and hands each to its account's watches.
    async fn poll(
        self,
        mut last: i64,
        interval: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
            loop {
                let events = match self.inner.events.after(last, BATCH).await {
                    Ok(events) => {
                        failing = false;
                        events
                    }
                    Err(error) => {
                        if !failing {
                            tracing::warn!(%error, "event feed: cannot read new events; retrying");
                        }
                        failing = true;
                        break;
                    }
                };
                let full = events.len() as u64 == BATCH;
                let mut state = self.state();
                // Channels whose watches all ended go; the rest get their account's events.
                state
                    .channels
                    .retain(|_, channel| channel.receiver_count() > 0);
                for event in events {
                    last = event.cursor;
                    if let Some(channel) = state.channels.get(&event.account) {
                        let _ = channel.send(Arc::new(event));
                    }
                }
                drop(state);
                if !full {
                    break;
                }
            }
        }
    }

    /// Opens a watch for `key_id` on `account`, unless either is at its cap.
    fn subscribe(&self, key_id: &str, account: &AccountId) -> Result<Subscription, Refusal> {
        let limits = self.inner.limits;
        let mut state = self.state();
        if state.watches_per_key.get(key_id).copied().unwrap_or(0) >= limits.per_key {
            return Err(Refusal::TooManyWatches {
                scope: "key",
                limit: limits.per_key,
            });
        }
        if state.watches_per_account.get(account).copied().unwrap_or(0) >= limits.per_account {
            return Err(Refusal::TooManyWatches {
                scope: "account",
                limit: limits.per_account,
            });
        }
        *state.watches_per_key.entry(key_id.to_owned()).or_default() += 1;
        *state
            .watches_per_account
            .entry(account.clone())
            .or_default() += 1;
        let events = state
            .channels
            .entry(account.clone())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe();
        drop(state);
        Ok(Subscription {
            feed: self.clone(),
            key_id: key_id.to_owned(),
            account: account.clone(),
            events,
            _open: self.inner.metrics.watch_opened(),
        })
    }

    /// Streams `account`'s events after `after` to the returned receiver: the replay from the
    /// database, then new ones as the poller reads them, until the client goes, the server
    /// shuts down or the maximum duration ends the stream.
    pub(crate) fn watch(
        &self,
        key_id: &str,
        account: AccountId,
        after: i64,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<mpsc::Receiver<Result<pb::ConnectorEvent, Status>>, Refusal> {
        let mut subscription = self.subscribe(key_id, &account)?;
        let (sender, receiver) = mpsc::channel(64);
        let events = self.inner.events.clone();
        let ends = tokio::time::Instant::now() + self.inner.limits.max_duration;
        tokio::spawn(async move {
            let mut after = after;
            if !catch_up(&events, &account, &mut after, &sender).await {
                return;
            }
            loop {
                tokio::select! {
                    received = subscription.events.recv() => match received {
                        Ok(event) if event.cursor > after => {
                            after = event.cursor;
                            if sender.send(Ok((*event).clone().into())).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            if !catch_up(&events, &account, &mut after, &sender).await {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    // Ends the stream with OK; the client resumes after its last cursor.
                    _ = tokio::time::sleep_until(ends) => return,
                    _ = shutdown.changed() => return,
                    _ = sender.closed() => return,
                }
            }
        });
        Ok(receiver)
    }
}

/// Sends `account`'s events after `after` from the database until none are left; false when
/// the watch is over (the client went, or the database failed and the error was sent).
async fn catch_up(
    events: &Events,
    account: &AccountId,
    after: &mut i64,
    sender: &mpsc::Sender<Result<pb::ConnectorEvent, Status>>,
) -> bool {
    loop {
        match events.list(account, *after, BATCH).await {
            Ok(page) => {
                let caught_up = page.next_after.is_none();
                for event in page.events {
                    *after = event.cursor;
                    if sender.send(Ok(event.into())).await.is_err() {
                        return false;
                    }
                }
                if caught_up {
                    return true;
                }
            }
            Err(error) => {
                let _ = sender.send(Err(error.into())).await;
                return false;
            }
        }
    }
}
