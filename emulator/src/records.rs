//! The records the authorization server keeps (grants, codes, refresh and access tokens) and
//! the authorities a `{tenant}` path segment names. Plain data: `store` holds them behind its
//! mutex and keeps the rules.

use std::time::SystemTime;

use crate::model::{AccountKind, User};

/// A registration or knob call that names something unknown or invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistrationError {
    /// No client with this id is registered.
    #[error("unknown client '{0}'")]
    UnknownClient(String),
    /// No tenant with this id or domain is registered.
    #[error("unknown tenant '{0}'")]
    UnknownTenant(String),
    /// No user with this object id or user principal name is registered.
    #[error("unknown user '{0}'")]
    UnknownUser(String),
    /// The registration is malformed; the text says why.
    #[error("invalid registration: {0}")]
    Invalid(String),
}

/// Who a `{tenant}` path segment lets sign in, and where tokens are issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Authority {
    /// `common`: personal and work accounts.
    Common,
    /// `organizations`: work accounts of any tenant.
    Organizations,
    /// `consumers` (or the consumer tenant id): personal accounts.
    Consumers,
    /// One registered tenant (by id or default domain): its work accounts. Holds the tenant id.
    Tenant(String),
}

impl Authority {
    /// Whether `user` may sign in (or redeem its tokens) here.
    pub(crate) fn admits(&self, user: &User) -> bool {
        match self {
            Authority::Common => true,
            Authority::Organizations => user.kind == AccountKind::Work,
            Authority::Consumers => user.kind == AccountKind::Personal,
            Authority::Tenant(id) => {
                user.kind == AccountKind::Work && user.tenant_id.eq_ignore_ascii_case(id)
            }
        }
    }
}

/// A user's consent to a client.
#[derive(Debug)]
pub(crate) struct Grant {
    pub(crate) user_oid: String,
    pub(crate) client_id: String,
    pub(crate) revoked: bool,
}

/// An issued authorization code and everything it is bound to.
#[derive(Debug)]
pub(crate) struct Code {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) grant: usize,
    pub(crate) nonce: Option<String>,
    pub(crate) expires_at: SystemTime,
    pub(crate) redeemed: bool,
}

/// An issued refresh token; `rotated` once it has been exchanged for its successor.
#[derive(Debug)]
pub(crate) struct RefreshToken {
    pub(crate) client_id: String,
    pub(crate) grant: usize,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires_at: SystemTime,
    pub(crate) rotated: bool,
}

/// Whom an access token acts for.
#[derive(Clone, Debug)]
pub(crate) enum Subject {
    /// A signed-in user, through a grant (delegated token).
    User { grant: usize },
    /// The client itself in a tenant (app-only token, client credentials).
    App { tenant_id: String },
}

/// An issued access token.
#[derive(Debug)]
pub(crate) struct AccessToken {
    pub(crate) client_id: String,
    pub(crate) subject: Subject,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires_at: SystemTime,
    pub(crate) revoked: bool,
}
