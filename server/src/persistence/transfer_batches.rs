//! Group commit for transfer reports: concurrent `RecordTransfer` calls on one connector share
//! one write.
//!
//! Sixteen workers moving one account report transfers on the same row. Each report is one
//! conditional `UPDATE` (see `Store::record_transfer`), but a durable commit costs an fsync,
//! and on one row (one SQLite writer, or PostgreSQL's row lock) those commits queue behind each
//! other. Reports that arrive while a write is in flight are merged into the next one (the
//! update only moves times forward, so the merge of several reports is their maximum) and
//! every caller is answered once the write that carries its report has committed: nothing is
//! acknowledged before it is durable.
//!
//! A caller whose write is abandoned (its RPC cancelled mid-write) cannot strand the others:
//! whoever next holds the connector's write turn and finds its own report unanswered writes
//! it, merged with whatever waits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

/// Shares writes among concurrent reports; `Outcome` is what a write answers (for the store,
/// the row afterwards), handed to every report the write carried.
#[derive(Debug)]
pub(crate) struct TransferBatches<Outcome> {
    /// Per connector (keyed by account and id), while anyone reports on it.
    connectors: Mutex<HashMap<String, Arc<Connector<Outcome>>>>,
}

impl<Outcome> Default for TransferBatches<Outcome> {
    fn default() -> Self {
        Self {
            connectors: Mutex::default(),
        }
    }
}

#[derive(Debug)]
struct Connector<Outcome> {
    /// Reports waiting for the next write, merged.
    waiting: Mutex<Option<Batch<Outcome>>>,
    /// The write turn: one write per connector at a time.
    turn: tokio::sync::Mutex<()>,
}

impl<Outcome> Default for Connector<Outcome> {
    fn default() -> Self {
        Self {
            waiting: Mutex::default(),
            turn: tokio::sync::Mutex::default(),
        }
    }
}

#[derive(Debug)]
struct Batch<Outcome> {
    now_micros: i64,
    deadline_micros: i64,
    outcome: Arc<OnceLock<Outcome>>,
}

/// Every change under these locks is a single assignment, so a panic elsewhere cannot leave
/// them inconsistent; a poisoned lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<Outcome: Clone> TransferBatches<Outcome> {
    /// Records a report (`now_micros`, pushing the deadline to `deadline_micros`) on connector
    /// `key`, with `write` doing the (merged) update. Returns once a write that carries this
    /// report has committed, with that write's answer.
    pub(crate) async fn record(
        &self,
        key: &str,
        now_micros: i64,
        deadline_micros: i64,
        write: impl AsyncFnOnce(i64, i64) -> Outcome,
    ) -> Outcome {
        let connector = lock(&self.connectors)
            .entry(key.to_owned())
            .or_default()
            .clone();
        let mine = {
            let mut waiting = lock(&connector.waiting);
            let batch = waiting.get_or_insert_with(|| Batch {
                now_micros,
                deadline_micros,
                outcome: Arc::default(),
            });
            batch.now_micros = batch.now_micros.max(now_micros);
            batch.deadline_micros = batch.deadline_micros.max(deadline_micros);
            batch.outcome.clone()
        };
        let outcome = {
            let _turn = connector.turn.lock().await;
            match mine.get() {
                Some(outcome) => outcome.clone(),
                None => {
                    // Ours is waiting (or was taken by a write that was abandoned): write what
                    // waits, with our report in it.
                    let batch = lock(&connector.waiting).take();
                    let (now, deadline) =
                        batch
                            .as_ref()
                            .map_or((now_micros, deadline_micros), |batch| {
                                (
                                    batch.now_micros.max(now_micros),
                                    batch.deadline_micros.max(deadline_micros),
                                )
                            });
                    let outcome = write(now, deadline).await;
                    if let Some(batch) = batch {
                        let _ = batch.outcome.set(outcome.clone());
                    }
                    outcome
                }
            }
        };
        let mut connectors = lock(&self.connectors);
        // Only the map and this call hold it: nobody else is reporting on this connector.
        if Arc::strong_count(&connector) == 2 {
            connectors.remove(key);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// While one write is in flight, 63 more reports arrive: they share one write, carrying
    /// the latest time and deadline, and every caller is answered after that write.
    #[tokio::test]
    async fn reports_that_arrive_during_a_write_share_the_next_one() {
        let batches = Arc::new(TransferBatches::<Result<Option<()>, ()>>::default());
        let gate = Arc::new(tokio::sync::Notify::new());
        let written = Arc::new(Mutex::new(Vec::new()));
        let report = |n: i64, gated: bool| {
            let (batches, gate, written) = (batches.clone(), gate.clone(), written.clone());
            tokio::spawn(async move {
                let answer = batches
                    .record("acme/c", n, n + 100, async |now, deadline| {
                        if gated {
                            gate.notified().await;
                        }
                        lock(&written).push((now, deadline));
                        Ok(None)
                    })
                    .await;
                assert!(answer.unwrap().is_none());
                // A write carrying this report had committed when it was answered.
                assert!(lock(&written).iter().any(|(now, _)| *now >= n));
            })
        };
        let first = report(0, true);
        tokio::task::yield_now().await;
        let rest: Vec<_> = (1..64).map(|n| report(n, false)).collect();
        tokio::task::yield_now().await;
        gate.notify_one();
        first.await.unwrap();
        for caller in rest {
            caller.await.unwrap();
        }
        assert_eq!(*lock(&written), [(0, 100), (63, 163)]);
        assert!(
            lock(&batches.connectors).is_empty(),
            "idle connectors are forgotten"
        );
    }

    #[tokio::test]
    async fn an_abandoned_write_does_not_strand_the_reports_it_carried() {
        let batches = Arc::new(TransferBatches::<Result<Option<()>, ()>>::default());
        // A first write that never finishes, then is cancelled.
        let stuck = {
            let batches = batches.clone();
            tokio::spawn(async move {
                batches
                    .record("acme/c", 1, 101, async |_, _| {
                        std::future::pending::<()>().await;
                        Ok(None)
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        let waiting = {
            let batches = batches.clone();
            tokio::spawn(async move {
                batches
                    .record("acme/c", 2, 102, async |now, deadline| {
                        assert_eq!((now, deadline), (2, 102));
                        Ok(None)
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        stuck.abort();
        assert!(waiting.await.unwrap().unwrap().is_none());
    }
}
