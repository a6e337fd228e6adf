//! What a test can turn and read: injected failures, token lifetimes and request counters.
//!
//! They exist because the interesting bugs of an OAuth client live in the unhappy paths
//! (a provider that is down, throttles, hangs, or has revoked the grant) and in how often it
//! calls the provider (a refresh storm must cause exactly one refresh).

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How an injected failure answers a call (see [`crate::Emulator::fail_next_token_calls`]).
///
/// As JSON (admin endpoints): `{"kind": "status_500"}`, `{"kind": "status_429",
/// "retry_after": 5}`, `{"kind": "timeout"}`, `{"kind": "invalid_grant", "aadsts": 70008}`,
/// `{"kind": "unsupported_token_type"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// HTTP 500 with Microsoft's error JSON (`server_error`, AADSTS50000).
    #[serde(rename = "status_500")]
    Status500,
    /// HTTP 429 with a `Retry-After` header of `retry_after` seconds and Microsoft's error JSON
    /// (`temporarily_unavailable`, AADSTS90055).
    #[serde(rename = "status_429")]
    Status429 {
        /// The `Retry-After` value, in seconds.
        retry_after: u64,
    },
    /// Never answer: the request is held until the client drops the connection or the emulator
    /// shuts down (then it answers 503). Any client timeout fires first.
    Timeout,
    /// HTTP 400 `invalid_grant` with `error_codes: [aadsts]` and an `AADSTS{aadsts}: …`
    /// description (Microsoft's text for the codes it knows, e.g. 70008, 700082, 50173, 70000).
    InvalidGrant {
        /// The AADSTS error code, e.g. 50173.
        aadsts: u32,
    },
    /// HTTP 400 `unsupported_token_type` (RFC 7009 §2.2.1): an authorization server that does
    /// not revoke this kind of token. Meant for the revocation endpoint.
    UnsupportedTokenType,
}

/// A forged id token, for testing that a client checks what it receives
/// ([`crate::Emulator::forge_next_id_tokens`]). The token is still returned by the real token
/// endpoint, with real access and refresh tokens beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IdTokenForgery {
    /// Unsigned (`alg: none`, empty signature) and issued by `issuer` instead of the tenant's
    /// `{base}/{tid}/v2.0`.
    UnsignedFromIssuer {
        /// The `iss` claim to put in.
        issuer: String,
    },
    /// `exp` an hour in the past.
    Expired,
    /// `nbf` (and `iat`) an hour in the future.
    NotYetValid,
    /// The `nonce` claim replaced by `nonce`.
    Nonce {
        /// The `nonce` claim to put in.
        nonce: String,
    },
}

/// How long the things the emulator issues live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// Access tokens (`expires_in`); default one hour.
    pub access_token: Duration,
    /// Refresh tokens, renewed by every rotation (Microsoft's 90-day inactivity window);
    /// default 90 days. An expired one answers `invalid_grant` AADSTS700082.
    pub refresh_token: Duration,
    /// Authorization codes; default ten minutes. An expired one answers AADSTS70008.
    pub authorization_code: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            access_token: Duration::from_secs(3600),
            refresh_token: Duration::from_secs(90 * 24 * 3600),
            authorization_code: Duration::from_secs(600),
        }
    }
}

/// Requests received per endpoint since start or the last reset
/// ([`crate::Emulator::counters`], `GET /_emulator/counters`).
///
/// Every request that reaches an endpoint counts, whether it succeeds, is refused, or is
/// answered by an injected failure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// `GET …/oauth2/v2.0/authorize` (the sign-in page).
    pub authorize: u64,
    /// `POST …/oauth2/v2.0/authorize` and [`crate::Emulator::complete_authorization`] /
    /// [`crate::Emulator::deny_authorization`]: accept or deny decisions.
    pub authorize_decisions: u64,
    /// Every `POST …/oauth2/v2.0/token`, whatever its grant type.
    pub token: u64,
    /// Token calls with `grant_type=authorization_code`.
    pub authorization_code: u64,
    /// Token calls with `grant_type=refresh_token`: the refresh count.
    pub refresh: u64,
    /// Token calls with `grant_type=client_credentials`.
    pub client_credentials: u64,
    /// Token calls answered 200 with tokens.
    pub tokens_issued: u64,
    /// Token and revoke calls answered by an injected [`Failure`].
    pub injected_failures: u64,
    /// `GET …/v2.0/adminconsent` (the admin consent page).
    pub adminconsent: u64,
    /// `POST …/v2.0/adminconsent` and [`crate::Emulator::complete_admin_consent`] /
    /// [`crate::Emulator::deny_admin_consent`].
    pub adminconsent_decisions: u64,
    /// Graph `GET /v1.0/me`.
    pub me: u64,
    /// Graph `GET /v1.0/organization`.
    pub organization: u64,
    /// `POST /oauth2/revoke` (RFC 7009).
    pub revoke: u64,
}

/// The queues of failures still to be injected, consumed first in, first out.
#[derive(Debug, Default)]
pub(crate) struct FailureQueues {
    pub(crate) token: VecDeque<Failure>,
    pub(crate) revoke: VecDeque<Failure>,
    /// How long every token answer is held (zero: none).
    pub(crate) token_delay: std::time::Duration,
    /// Forgeries applied to the next id tokens issued, one each.
    pub(crate) id_token_forgeries: VecDeque<IdTokenForgery>,
}

impl FailureQueues {
    /// Drops every pending injected failure (the handle's `clear_failures` and the admin API's
    /// `DELETE /_emulator/failures` both come here). The token delay is a setting, not a
    /// pending failure: it stays.
    pub(crate) fn clear(&mut self) {
        self.token.clear();
        self.revoke.clear();
        self.id_token_forgeries.clear();
    }
}
