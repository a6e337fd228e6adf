//! The audit trail: one record per credential handed out, per connector created, linked,
//! reauthorized or deleted (and per account deleted), and per refused call, on the `audit`
//! tracing target. Records name the API key id and the connector, never a secret or a token;
//! with `CONNECTOR_LOG_FORMAT=json` each is one JSON line (`"target":"audit"`), ready for a log
//! pipeline. Refusals are rate-limited (a flood of bad keys must not flood the log): at most
//! [`REFUSALS_PER_SECOND`] a second, and the next record written says how many were left out.

use std::{
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// The tracing target of every audit record.
pub const TARGET: &str = "audit";

/// Refusal records written per second at most.
pub const REFUSALS_PER_SECOND: u32 = 20;

/// A credential was handed out (`GetAccessToken`).
pub fn credential_issued(key_id: &str, connector: &str, token_type: &str, expire_time: &str) {
    tracing::info!(
        target: TARGET,
        action = "credential_issued",
        key_id,
        connector,
        token_type,
        expire_time,
        "credential issued"
    );
}

/// A connector's stored credentials were revealed (`RevealConnectorCredentials`): which
/// fields, never their values.
pub fn credentials_revealed(key_id: &str, connector: &str, fields: &str) {
    tracing::info!(
        target: TARGET,
        action = "credentials_revealed",
        key_id,
        connector,
        fields,
        "credentials revealed"
    );
}

/// A connector was created, linked, reauthorized or deleted, or an account deleted.
pub fn changed(action: &'static str, key_id: &str, resource: &str) {
    tracing::info!(target: TARGET, action, key_id, resource, "connector changed");
}

/// A call was refused: no or an unknown key (`key_id` none), or a key without the capability
/// or scope. Rate-limited.
pub fn refused(reason: &'static str, key_id: Option<&str>, peer: Option<String>, detail: &str) {
    let Some(suppressed) = REFUSALS.admit(Instant::now()) else {
        return;
    };
    tracing::warn!(
        target: TARGET,
        action = "refused",
        reason,
        key_id = key_id.unwrap_or("-"),
        peer = peer.as_deref().unwrap_or("-"),
        detail,
        suppressed_before = suppressed,
        "call refused"
    );
}

static REFUSALS: RateLimit = RateLimit::new(REFUSALS_PER_SECOND);

/// At most `per_second` admissions in each one-second window; counts what it turns away.
struct RateLimit {
    per_second: u32,
    window: Mutex<Window>,
}

struct Window {
    started: Option<Instant>,
    admitted: u32,
    suppressed: u64,
}

impl RateLimit {
    const fn new(per_second: u32) -> Self {
        Self {
            per_second,
            window: Mutex::new(Window {
                started: None,
                admitted: 0,
                suppressed: 0,
            }),
        }
    }

    /// `Some(records left out since the last one written)` when this one may be written.
    fn admit(&self, now: Instant) -> Option<u64> {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if window
            .started
            .is_none_or(|started| now.duration_since(started) >= Duration::from_secs(1))
        {
            window.started = Some(now);
            window.admitted = 0;
        }
        if window.admitted >= self.per_second {
            window.suppressed += 1;
            return None;
        }
        window.admitted += 1;
        Some(std::mem::take(&mut window.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_limited_per_second_and_the_gap_is_counted() {
        let limit = RateLimit::new(3);
        let start = Instant::now();
        let admitted: Vec<Option<u64>> = (0..5).map(|_| limit.admit(start)).collect();
        assert_eq!(admitted, [Some(0), Some(0), Some(0), None, None]);
        assert_eq!(limit.admit(start + Duration::from_secs(1)), Some(2));
    }
}
