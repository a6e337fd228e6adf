//! Every way a command fails, the exit code it gives and the words an operator reads. The
//! mapping lives here only, so the exit codes documented in `--help` stay true: a gRPC error is
//! classified by its `google.rpc.ErrorInfo` reason first (a deauthorized connector has its own
//! code) and its status code second, and explained in plain words with what to do next.

use connector_client::{Code, ErrorDetails, RpcStatus, StatusExt as _};

/// Success.
#[cfg(test)]
pub(crate) const EXIT_OK: u8 = 0;
/// Anything not classified below: an internal error, a file that cannot be written.
pub(crate) const EXIT_OTHER: u8 = 1;
/// Bad arguments or settings, a deletion not confirmed (clap uses 2 for its own errors too).
pub(crate) const EXIT_USAGE: u8 = 2;
/// No such connector or connector type.
pub(crate) const EXIT_NOT_FOUND: u8 = 3;
/// The API key is missing, refused, or may not do this.
pub(crate) const EXIT_ACCESS: u8 = 4;
/// The connector is deauthorized: reauthorize it.
pub(crate) const EXIT_DEAUTHORIZED: u8 = 5;
/// Invalid argument, rejected credentials, failed precondition.
pub(crate) const EXIT_INVALID: u8 = 6;
/// Unavailable, unreachable, timed out, overloaded: retrying may work.
pub(crate) const EXIT_RETRYABLE: u8 = 7;
/// Already exists, etag mismatch, aborted.
pub(crate) const EXIT_CONFLICT: u8 = 8;

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The command line or the settings are wrong, or the operator did not confirm.
    Usage(String),
    /// A call was answered with an error; `subject` is the resource the command was about.
    Rpc {
        /// The answer.
        status: RpcStatus,
        /// The connector (or type) the command named, for the message.
        subject: Option<String>,
    },
    /// The authorization's time ran out before the connector was linked.
    Expired(String),
    /// The server cannot be reached (refused, no route, no such host, TLS failed): like an
    /// `UNAVAILABLE` answer, retrying may work once it is up.
    Unreachable(String),
    /// Anything else.
    Other(String),
}

impl From<RpcStatus> for Failure {
    fn from(status: RpcStatus) -> Self {
        Failure::Rpc {
            status,
            subject: None,
        }
    }
}

/// Attaches the resource a call was about, for the message.
pub(crate) trait About<T> {
    /// The call's error, naming `subject`.
    fn about(self, subject: &str) -> Result<T, Failure>;
}

impl<T> About<T> for Result<T, RpcStatus> {
    fn about(self, subject: &str) -> Result<T, Failure> {
        self.map_err(|status| Failure::Rpc {
            status,
            subject: Some(subject.to_owned()),
        })
    }
}

impl Failure {
    /// The process exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Expired(_) => EXIT_INVALID,
            Failure::Unreachable(_) => EXIT_RETRYABLE,
            Failure::Other(_) => EXIT_OTHER,
            Failure::Rpc { status, .. } => rpc_exit_code(status),
        }
    }

    /// What went wrong and what to do, in plain words.
    pub(crate) fn message(&self) -> String {
        match self {
            Failure::Usage(text)
            | Failure::Expired(text)
            | Failure::Unreachable(text)
            | Failure::Other(text) => text.clone(),
            Failure::Rpc { status, subject } => describe(status, subject.as_deref()),
        }
    }
}

fn rpc_exit_code(status: &RpcStatus) -> u8 {
    if connector_client::error_reason(status).as_deref() == Some("CONNECTOR_DEAUTHORIZED") {
        return EXIT_DEAUTHORIZED;
    }
    match status.code() {
        Code::NotFound => EXIT_NOT_FOUND,
        Code::Unauthenticated | Code::PermissionDenied => EXIT_ACCESS,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => EXIT_INVALID,
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => EXIT_RETRYABLE,
        Code::AlreadyExists | Code::Aborted => EXIT_CONFLICT,
        _ => EXIT_OTHER,
    }
}

/// The message for a failed call: the reason in plain words with the next step, the server's
/// `LocalizedMessage` when it has one, field violations, and how long to wait before a retry.
fn describe(status: &RpcStatus, subject: Option<&str>) -> String {
    let details: ErrorDetails = status.get_error_details();
    let info = details.error_info();
    let reason = info.map(|info| info.reason.as_str()).unwrap_or_default();
    let meta = |key: &str| info.and_then(|info| info.metadata.get(key)).cloned();
    let localized = details
        .localized_message()
        .map(|message| message.message.clone());
    let subject = subject.unwrap_or("it");
    let connector = meta("connector").unwrap_or_else(|| subject.to_owned());
    let mut text = match reason {
        "CONNECTOR_DEAUTHORIZED" => {
            let why = meta("deauthorization_reason")
                .map(|reason| reason.to_lowercase())
                .unwrap_or_else(|| "unknown".to_owned());
            let mut text = format!("connector {connector} is deauthorized (reason: {why}).");
            if let Some(message) = &localized {
                text.push(' ');
                text.push_str(message);
            }
            text.push_str(&format!(
                "\nReauthorize it: connectorctl reauthorize {connector}"
            ));
            // Shown already; not again below.
            return text;
        }
        "CONNECTOR_NOT_FOUND" => format!(
            "connector {connector} was not found (or this API key may not see it); `connectorctl list` shows the account's connectors"
        ),
        "CONNECTOR_TYPE_NOT_FOUND" => format!(
            "connector type {subject} was not found; `connectorctl types` lists them"
        ),
        "CONNECTOR_ALREADY_EXISTS" => format!(
            "the account already has a connector for this external account: {connector}; reauthorize or delete that one instead"
        ),
        "API_KEY_MISSING" => "no API key was sent: set CONNECTORCTL_API_KEY, or name a key file with --api-key-file, CONNECTORCTL_API_KEY_FILE or `api_key_file` in the config file".to_owned(),
        "API_KEY_INVALID" => "the API key was refused: check the key you gave (CONNECTORCTL_API_KEY or the key file), and that the server's [[api_keys]] lists its sha256 (`connectorctl keys new` prints both)".to_owned(),
        "API_KEY_AMBIGUOUS" => "the call carried more than one API key; send one".to_owned(),
        "ACCOUNT_ACCESS_DENIED" => "this API key may not use that account; use a key whose `accounts` include it".to_owned(),
        "CAPABILITY_MISSING" => format!(
            "this API key lacks the `{}` capability this command needs; use a key that has it",
            meta("capability").unwrap_or_default()
        ),
        "ACCESS_DENIED" => "the user or administrator did not consent; nothing was created".to_owned(),
        "CREDENTIALS_REJECTED" => "the cloud service refused the credentials; nothing was saved. Check the account name and the key".to_owned(),
        "CREDENTIALS_TYPE_MISMATCH" => "these credentials are of another connector type than the connector's".to_owned(),
        "ACCOUNT_MISMATCH" => format!(
            "the credentials are for another external account than {connector}'s ({}); the connector is unchanged",
            meta("external_account").unwrap_or_default()
        ),
        "OAUTH_AUTHORIZATION_REQUIRED" => "this connector type links through OAuth 2.0: use `connectorctl authorize` (or `reauthorize` without a key)".to_owned(),
        "CREDENTIALS_REQUIRED" => "this connector type takes credentials: use `connectorctl create` (or `reauthorize` with a key)".to_owned(),
        "CONNECTOR_TYPE_NOT_CONFIGURED" => "the server has no OAuth 2.0 app registration for this connector type; an operator must configure one".to_owned(),
        "AUTHORIZATION_STATE_INVALID" | "AUTHORIZATION_EXPIRED" => "the authorization is unknown, already used or expired; start it again".to_owned(),
        "AUTHORIZATION_CODE_REJECTED" => "the identity provider refused the sign-in's code; start the authorization again".to_owned(),
        "ADMIN_REQUIRED" => "whoever signed in may not consent for the tenant; an administrator must sign in".to_owned(),
        "AUTHORIZATION_INTERRUPTED" => "the authorization was interrupted (the provider or database failed); start it again".to_owned(),
        "ETAG_MISMATCH" => format!("{connector} changed meanwhile; look at it again, then retry"),
        "CONCURRENT_MODIFICATION" => "concurrent changes kept colliding; retry".to_owned(),
        "REQUEST_TIMEOUT" => "the call took longer than the server's deadline; retry".to_owned(),
        "PROVIDER_UNAVAILABLE" => "the cloud service is unavailable; retry".to_owned(),
        "DATABASE_UNAVAILABLE" => "the service's database is unavailable; retry".to_owned(),
        "OVERLOADED" => "the server is overloaded; retry".to_owned(),
        "TOO_MANY_WATCHES" => format!(
            "too many event watches are open for this {} (limit {}); close one and retry",
            meta("scope").unwrap_or_else(|| "account".to_owned()),
            meta("limit").unwrap_or_default()
        ),
        "REQUEST_TOO_LARGE" => "the request is larger than the server accepts".to_owned(),
        "OAUTH_CLIENT_REJECTED" => "the identity provider rejects the service's own client secret; an operator must fix the server's configuration".to_owned(),
        "USE_REVEAL_CREDENTIALS" => "this connector type has no access token; its stored credentials are read with RevealConnectorCredentials".to_owned(),
        "DISPLAY_NAME_IMMUTABLE" => "a connector cannot be renamed; delete it and add it again".to_owned(),
        "INVALID_ARGUMENT" | "MALFORMED_REQUEST" => "the request was invalid".to_owned(),
        "INTERNAL" => "the server failed (an internal error, logged there)".to_owned(),
        _ => match status.code() {
            Code::Unavailable => format!("the server cannot be reached ({}); retry", status.message()),
            Code::DeadlineExceeded => format!("the call timed out ({}); retry", status.message()),
            code => format!("{code:?}: {}", status.message()),
        },
    };
    if let Some(message) = localized {
        text.push_str(&format!("\n{message}"));
    }
    if let Some(bad_request) = details.bad_request() {
        for violation in &bad_request.field_violations {
            text.push_str(&format!(
                "\n  {}: {}",
                violation.field, violation.description
            ));
        }
    }
    if let Some(delay) = details.retry_info().and_then(|retry| retry.retry_delay) {
        text.push_str(&format!(" (after {} ms)", delay.as_millis()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_with_reason(code: Code, reason: &str) -> RpcStatus {
        let mut details = ErrorDetails::new();
        let metadata = [("connector".to_owned(), "accounts/a/connectors/c".to_owned())];
        details.set_error_info(
            reason,
            "connector-service",
            std::collections::HashMap::from(metadata),
        );
        RpcStatus::with_error_details(code, "failed", details)
    }

    #[test]
    fn classes_have_their_exit_codes() {
        let code = |code, reason| Failure::from(status_with_reason(code, reason)).exit_code();
        assert_eq!(code(Code::NotFound, "CONNECTOR_NOT_FOUND"), EXIT_NOT_FOUND);
        assert_eq!(code(Code::Unauthenticated, "API_KEY_INVALID"), EXIT_ACCESS);
        assert_eq!(
            code(Code::FailedPrecondition, "CONNECTOR_DEAUTHORIZED"),
            EXIT_DEAUTHORIZED
        );
        assert_eq!(
            code(Code::InvalidArgument, "CREDENTIALS_REJECTED"),
            EXIT_INVALID
        );
        assert_eq!(
            code(Code::Unavailable, "DATABASE_UNAVAILABLE"),
            EXIT_RETRYABLE
        );
        assert_eq!(code(Code::Aborted, "ETAG_MISMATCH"), EXIT_CONFLICT);
        assert_eq!(code(Code::Internal, "INTERNAL"), EXIT_OTHER);
        assert_ne!(Failure::Usage(String::new()).exit_code(), EXIT_OK);
    }
}
