//! The port through which the domain reports what happened (connectors deauthorized, sweeps,
//! revocation tries), in its own terms. Metrics implement it (`metrics::observer`); the
//! domain names no metric and no label, and tests and benches observe nothing
//! ([`Unobserved`]).

use super::model::{DeauthorizationReason, RevocationOutcome};

/// How one try to revoke a token ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationTry {
    /// The revocation reached its final outcome (recorded as an event, the token erased).
    Finished(RevocationOutcome),
    /// The try failed; it is tried again after a backoff.
    Retried,
}

/// How an inactivity sweep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// Every connector past its deadline was deauthorized.
    Completed,
    /// The sweep stopped on an error; the next one carries on.
    Failed,
}

/// What the domain reports as it works. Calls are synchronous and must be cheap: they are made
/// on the request path.
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// `connectors` connectors were deauthorized for `reason` by this process.
    fn deauthorized(&self, reason: DeauthorizationReason, connectors: u64);

    /// An inactivity sweep ended.
    fn swept(&self, sweep: Sweep);

    /// A try to revoke a queued token ended.
    fn revocation_tried(&self, outcome: RevocationTry);
}

/// Observes nothing: the domain's observer until one is given.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unobserved;

impl Observer for Unobserved {
    fn deauthorized(&self, _reason: DeauthorizationReason, _connectors: u64) {}

    fn swept(&self, _sweep: Sweep) {}

    fn revocation_tried(&self, _outcome: RevocationTry) {}
}
