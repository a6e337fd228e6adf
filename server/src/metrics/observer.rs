//! The metrics as the domain's [`Observer`]: what the domain reports, in its own terms, becomes
//! a count under a label from the closed sets `metrics` creates at start-up. Only this file
//! spells the domain's outcomes as label values.

use crate::domain::{
    Observer, RevocationOutcome, RevocationTry, Sweep, model::DeauthorizationReason,
};

use super::{DEAUTHORIZATION_REASONS, Metrics, REVOCATION_OUTCOMES, SWEEP_OUTCOMES};

impl Observer for Metrics {
    fn deauthorized(&self, reason: DeauthorizationReason, connectors: u64) {
        let reason = match reason {
            DeauthorizationReason::Inactivity => "inactivity",
            DeauthorizationReason::Revoked => "revoked",
            DeauthorizationReason::Expired => "expired",
        };
        debug_assert!(DEAUTHORIZATION_REASONS.contains(&reason), "{reason}");
        self.deauthorizations
            .get_or_create(&[("reason", reason)])
            .inc_by(connectors);
    }

    fn swept(&self, sweep: Sweep) {
        let outcome = match sweep {
            Sweep::Completed => "ok",
            Sweep::Failed => "failed",
        };
        debug_assert!(SWEEP_OUTCOMES.contains(&outcome), "{outcome}");
        self.sweeps.get_or_create(&[("outcome", outcome)]).inc();
    }

    fn revocation_tried(&self, outcome: RevocationTry) {
        let outcome = match outcome {
            RevocationTry::Finished(RevocationOutcome::Revoked) => "revoked",
            RevocationTry::Finished(RevocationOutcome::NotSupported) => "not_supported",
            RevocationTry::Finished(RevocationOutcome::Failed) => "failed",
            RevocationTry::Retried => "retry",
        };
        debug_assert!(REVOCATION_OUTCOMES.contains(&outcome), "{outcome}");
        self.revocations
            .get_or_create(&[("outcome", outcome)])
            .inc();
    }
}
