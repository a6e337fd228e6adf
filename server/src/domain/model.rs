//! The connector resource and the validated values it is made of.
//!
//! Constructors validate, so a value of these types is always acceptable to the domain; the
//! transport layer turns a rejection ([`Invalid`]) into a field violation naming the request
//! field it came from.

use std::{collections::BTreeMap, fmt};

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::connector_type::ConnectorTypeId;

/// Why a value was rejected; the text is shown to the caller as a field violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

fn invalid<T>(why: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid(why.into()))
}

/// Id of a customer account: 1 to 64 ASCII letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    /// Validates an account id.
    pub fn new(id: &str) -> Result<Self, Invalid> {
        let well_formed = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return invalid("an account id is 1 to 64 ASCII letters, digits, `-` or `_`");
        }
        Ok(Self(id.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Server-assigned id of a connector (a UUIDv7: unique and roughly time-ordered).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectorId(String);

impl ConnectorId {
    /// A new, unique id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// Validates an id given by a caller.
    pub fn new(id: &str) -> Result<Self, Invalid> {
        match uuid::Uuid::try_parse(id) {
            Ok(uuid) if uuid.to_string() == id => Ok(Self(id.to_owned())),
            _ => invalid("a connector id is a lower-case hyphenated UUID assigned by the service"),
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The full name of a connector: `accounts/{account}/connectors/{connector}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectorName {
    /// The customer account it belongs to.
    pub account: AccountId,
    /// Its id within the account.
    pub connector: ConnectorId,
}

impl fmt::Display for ConnectorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accounts/{}/connectors/{}",
            self.account,
            self.connector.as_str()
        )
    }
}

/// Maximum length of a display name, in characters.
pub const DISPLAY_NAME_MAX_CHARS: usize = 256;

/// The name a customer sees: 1 to 256 characters, no control characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Validates a display name.
    pub fn new(name: &str) -> Result<Self, Invalid> {
        if name.trim().is_empty() {
            return invalid("a display name must not be empty or blank");
        }
        if name.chars().count() > DISPLAY_NAME_MAX_CHARS {
            return invalid(format!(
                "a display name is at most {DISPLAY_NAME_MAX_CHARS} characters"
            ));
        }
        if name.chars().any(char::is_control) {
            return invalid("a display name must not contain control characters");
        }
        Ok(Self(name.to_owned()))
    }

    /// A display name derived from an external account label, cut to the allowed length.
    pub fn from_label(label: &str) -> Self {
        let cleaned: String = label
            .chars()
            .filter(|c| !c.is_control())
            .take(DISPLAY_NAME_MAX_CHARS)
            .collect();
        Self::new(&cleaned).unwrap_or_else(|_| Self("Connector".to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Maximum number of labels on a connector.
pub const MAX_LABELS: usize = 64;
const LABEL_MAX_CHARS: usize = 63;

/// Free-form labels for the orchestrator, validated like cloud resource labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// Validates a label map.
    pub fn new(labels: impl IntoIterator<Item = (String, String)>) -> Result<Self, Invalid> {
        let labels: BTreeMap<String, String> = labels.into_iter().collect();
        if labels.len() > MAX_LABELS {
            return invalid(format!("a connector has at most {MAX_LABELS} labels"));
        }
        let allowed =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
        for (key, value) in &labels {
            let key_ok = key.len() <= LABEL_MAX_CHARS
                && key.starts_with(|c: char| c.is_ascii_lowercase())
                && key.chars().all(allowed);
            if !key_ok {
                return invalid(format!(
                    "label key `{}` must be 1 to 63 lower-case letters, digits, `_` or `-`, starting with a letter",
                    key.escape_debug()
                ));
            }
            if value.len() > LABEL_MAX_CHARS || !value.chars().all(allowed) {
                return invalid(format!(
                    "the value of label `{key}` must be at most 63 lower-case letters, digits, `_` or `-`"
                ));
            }
        }
        Ok(Self(labels))
    }

    /// The labels, ordered by key.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

/// Why a connector lost its authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeauthorizationReason {
    /// No data moved within the inactivity period.
    Inactivity,
    /// Access was revoked at the cloud service.
    Revoked,
    /// The cloud service let the authorization expire.
    Expired,
}

impl DeauthorizationReason {
    /// Stable text form, stored and put in error metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            DeauthorizationReason::Inactivity => "INACTIVITY",
            DeauthorizationReason::Revoked => "REVOKED",
            DeauthorizationReason::Expired => "EXPIRED",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Inactivity, Self::Revoked, Self::Expired]
            .into_iter()
            .find(|reason| reason.as_str() == text)
    }
}

/// How a revocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationOutcome {
    /// The provider revoked the token.
    Revoked,
    /// The provider offers no way to revoke what was held.
    NotSupported,
    /// Every try failed.
    Failed,
}

/// Whether a connector can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// It holds a working authorization.
    Authorized,
    /// It lost its authorization.
    Deauthorized {
        /// Why.
        reason: DeauthorizationReason,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Which state a list filter asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    /// Authorized connectors.
    Authorized,
    /// Deauthorized connectors.
    Deauthorized,
}

/// The account at the cloud service a connector is linked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalAccount {
    /// Stable id (storage account name; tenant and object ids). Never an e-mail address.
    pub id: String,
    /// Human-readable label.
    pub label: String,
    /// The value of what the type's provider pins about the service (an SSH host key's
    /// fingerprint), for types whose provider pins something.
    pub pinned: Option<String>,
}

/// Our authorization to one external account for one customer account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connector {
    /// Its name.
    pub name: ConnectorName,
    /// Its type.
    pub connector_type: ConnectorTypeId,
    /// The immutable display name.
    pub display_name: DisplayName,
    /// Whether it can be used.
    pub state: State,
    /// The external account.
    pub external_account: ExternalAccount,
    /// Orchestrator labels.
    pub labels: Labels,
    /// When it was created.
    pub create_time: DateTime<Utc>,
    /// When it last changed.
    pub update_time: DateTime<Utc>,
    /// When it was last authorized.
    pub authorize_time: DateTime<Utc>,
    /// When data last moved with it.
    pub last_transfer_time: Option<DateTime<Utc>>,
    /// Incremented on every change; the etag is derived from it.
    pub revision: i64,
    /// When it is deauthorized for inactivity unless data moves (or it is reauthorized).
    pub inactivity_deadline: DateTime<Utc>,
}

impl Connector {
    /// The etag for optimistic concurrency (AIP-154): the revision, quoted.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }

    /// The connector as it stands at `now`: past its inactivity deadline an authorized connector
    /// is deauthorized (reason `INACTIVITY`, at the deadline) whether or not the sweeper has
    /// reached it yet, so readers never wait for the sweeper.
    pub fn at(mut self, now: DateTime<Utc>) -> Self {
        if self.state == State::Authorized && now >= self.inactivity_deadline {
            self.state = State::Deauthorized {
                reason: DeauthorizationReason::Inactivity,
                at: self.inactivity_deadline,
            };
        }
        self
    }

    /// The revision an etag names, if it is one this service issued.
    pub fn revision_of_etag(etag: &str) -> Result<i64, Invalid> {
        etag.strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .and_then(|revision| revision.parse().ok())
            .ok_or_else(|| {
                Invalid("is not an etag this service issued; read the connector again".into())
            })
    }
}

/// A short-lived credential handed to the orchestrator.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The token (a SAS query string or a bearer token).
    pub token: SecretString,
    /// What kind it is.
    pub kind: AccessTokenKind,
    /// When it stops working.
    pub expire_time: DateTime<Utc>,
    /// What it allows.
    pub scopes: Vec<String>,
    /// The base URL it is for.
    pub resource_url: String,
}

/// The kind of an [`AccessToken`].
#[derive(Debug, Clone)]
pub enum AccessTokenKind {
    /// OAuth 2.0 bearer token.
    Bearer,
    /// Azure Storage account SAS.
    AzureSas,
    /// AWS session credentials: the token is the session token.
    AwsSession {
        /// The temporary access key id.
        access_key_id: String,
        /// The temporary secret access key.
        secret_access_key: SecretString,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_name_bounds() {
        assert!(DisplayName::new("").is_err());
        assert!(DisplayName::new("   ").is_err());
        assert!(DisplayName::new("a\nb").is_err());
        assert!(DisplayName::new(&"é".repeat(256)).is_ok());
        assert!(DisplayName::new(&"é".repeat(257)).is_err());
    }

    #[test]
    fn labels_follow_cloud_label_rules() {
        let one = |k: &str, v: &str| Labels::new([(k.to_owned(), v.to_owned())]);
        assert!(one("team", "migration-1").is_ok());
        assert!(one("Team", "x").is_err());
        assert!(one("1team", "x").is_err());
        assert!(one("", "x").is_err());
        assert!(one("team", "UPPER").is_err());
        assert!(one(&"k".repeat(64), "x").is_err());
        let many = (0..65).map(|i| (format!("k{i}"), String::new()));
        assert!(Labels::new(many).is_err());
    }
}
