//! SFTP servers, linked with a host, a port, a username and a password or an SSH private key.
//!
//! The credentials are checked by logging in over SSH, opening the `sftp` subsystem and
//! speaking SFTP's first words ([`protocol`]), so a server that lets the user in but serves
//! no SFTP to them (a forced command, a restricted shell) is refused too. The whole check
//! follows `provider_timeout_secs`. Nothing is minted: the worker gets the stored fields from
//! `RevealConnectorCredentials`, with the pinned host key.
//!
//! **Host key pinning.** The server's host key is what tells it from someone in the middle.
//! The first check pins the key the server presents (or, when the caller gave
//! `host_key_fingerprint`, insists on that one); later checks accept only the pinned key, and
//! refuse any other with [`Error::PinnedChanged`] *before* a password or signature is sent.
//! A reauthorization that names the new fingerprint accepts it. Fingerprints are SHA-256 in
//! OpenSSH's form (`SHA256:` and unpadded base64), as `ssh-keygen -lf` prints them.
//!
//! The host is the customer's, so unless `allow_private_endpoints` is set it must resolve to
//! public addresses only ([`super::endpoints`]), and the SSH connection goes to the addresses
//! that were checked, never to a second lookup's answer.

mod protocol;
mod session;

use session::{Login, Server};

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use russh::keys::PrivateKey;
use secrecy::SecretString;

use super::{
    Error,
    credentials::{
        Access, CredentialFields, CredentialProvider, FieldError, FieldErrors, Identity, Parsed,
        PinnedAttribute, Secrets, stored_text,
    },
};

/// The credential field with the server's host name or address.
pub const HOST_FIELD: &str = "host";
/// The credential field with the port (22 when not given).
pub const PORT_FIELD: &str = "port";
/// The credential field with the username.
pub const USERNAME_FIELD: &str = "username";
/// The credential field with the password (or a private key is given).
pub const PASSWORD_FIELD: &str = "password";
/// The credential field with an OpenSSH private key (or a password is given).
pub const PRIVATE_KEY_FIELD: &str = "private_key";
/// The credential field with the private key's passphrase, when it has one.
pub const PASSPHRASE_FIELD: &str = "private_key_passphrase";
/// The credential field naming the host key fingerprint to trust.
pub const HOST_KEY_FIELD: &str = session::HOST_KEY.field;

/// Talks to SFTP servers.
#[derive(Debug, Clone)]
pub struct Sftp {
    allow_private_endpoints: bool,
    /// How long connecting, logging in and speaking SFTP may take together (the service's
    /// `provider_timeout`).
    timeout: Duration,
}

impl Sftp {
    /// A client; `allow_private_endpoints` lets hosts resolve to private addresses, and a check
    /// gives up after `timeout`.
    pub fn new(allow_private_endpoints: bool, timeout: Duration) -> Self {
        Self {
            allow_private_endpoints,
            timeout,
        }
    }
}

/// A host name or address, lower case, IPv6 without brackets.
fn host(given: &str) -> Result<String, String> {
    let bare = given.trim().trim_start_matches('[').trim_end_matches(']');
    if let Ok(v6) = bare.parse::<std::net::Ipv6Addr>() {
        return Ok(v6.to_string());
    }
    match url::Host::parse(bare) {
        Ok(url::Host::Domain(name)) if !name.is_empty() && !name.contains(['@', ':', '/']) => {
            Ok(name)
        }
        Ok(url::Host::Ipv4(v4)) => Ok(v4.to_string()),
        _ => Err("a host name or IP address, for example sftp.example.com".into()),
    }
}

fn port(given: &str) -> Result<u16, String> {
    let given = given.trim();
    if given.is_empty() {
        return Ok(22);
    }
    match given.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err("a port number from 1 to 65535".into()),
    }
}

fn username(given: &str) -> Result<String, String> {
    if given.is_empty() || given.len() > 256 {
        return Err("1 to 256 characters".into());
    }
    if given.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("no spaces or control characters".into());
    }
    Ok(given.to_owned())
}

/// The private key, opened with its passphrase when it has one.
fn private_key(pem: &str, passphrase: &str) -> Result<PrivateKey, String> {
    let passphrase = (!passphrase.is_empty()).then_some(passphrase);
    russh::keys::decode_secret_key(pem, passphrase).map_err(|error| match error {
        russh::keys::Error::KeyIsEncrypted => {
            "the key is protected by a passphrase: give it in private_key_passphrase".into()
        }
        _ if passphrase.is_some() => {
            "not an OpenSSH or PEM private key, or the passphrase does not open it".into()
        }
        _ => "not an OpenSSH or PEM private key".into(),
    })
}

/// A fingerprint as `ssh-keygen -lf` prints it: `SHA256:` and 43 characters of unpadded
/// base64.
fn fingerprint(given: &str) -> Result<String, String> {
    let given = given.trim();
    let digest = given.strip_prefix("SHA256:").ok_or_else(|| {
        String::from("a SHA-256 fingerprint such as SHA256:3a9X…, as ssh-keygen -lf prints it")
    })?;
    if digest.len() != 43
        || !digest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
    {
        return Err("SHA256: followed by 43 characters of base64".into());
    }
    Ok(given.to_owned())
}

#[async_trait::async_trait]
impl CredentialProvider for Sftp {
    fn secret_fields(&self) -> &'static [&'static str] {
        // All of them: the worker needs them together (a type-specific reveal would be the
        // only other way to hand over the host and user).
        &[
            HOST_FIELD,
            PORT_FIELD,
            USERNAME_FIELD,
            PASSWORD_FIELD,
            PRIVATE_KEY_FIELD,
            PASSPHRASE_FIELD,
        ]
    }

    fn mints_access(&self) -> bool {
        false
    }

    fn pinned(&self) -> Option<&'static PinnedAttribute> {
        Some(&session::HOST_KEY)
    }

    fn parse(&self, fields: &CredentialFields) -> Result<Parsed, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        let host = errors.check(HOST_FIELD, host(fields.get(HOST_FIELD)));
        let port = errors.check(PORT_FIELD, port(fields.get(PORT_FIELD)));
        let user = errors.check(USERNAME_FIELD, username(fields.get(USERNAME_FIELD)));
        let (password, key) = (fields.get(PASSWORD_FIELD), fields.get(PRIVATE_KEY_FIELD));
        let passphrase = fields.get(PASSPHRASE_FIELD);
        let login = match (password.is_empty(), key.is_empty()) {
            (false, true) if password.len() <= 1024 => Some(()),
            (false, true) => errors.check(PASSWORD_FIELD, Err("1 to 1024 characters".into())),
            (true, false) => errors
                .check(PRIVATE_KEY_FIELD, private_key(key, passphrase))
                .map(drop),
            (true, true) => errors.check(
                PASSWORD_FIELD,
                Err("give a password or a private_key".into()),
            ),
            (false, false) => errors.check(
                PRIVATE_KEY_FIELD,
                Err("give a password or a private_key, not both".into()),
            ),
        };
        if !passphrase.is_empty() && key.is_empty() {
            errors.check::<()>(
                PASSPHRASE_FIELD,
                Err("only a private_key has a passphrase".into()),
            );
        }
        let expected = fields.get(HOST_KEY_FIELD);
        let host_key = if expected.is_empty() {
            Some(None)
        } else {
            errors
                .check(HOST_KEY_FIELD, fingerprint(expected))
                .map(Some)
        };
        let errors = errors.into_errors();
        let (Some(host), Some(port), Some(user), Some(()), Some(host_key), true) =
            (host, port, user, login, host_key, errors.is_empty())
        else {
            return Err(errors);
        };
        // Once per account: host, port and user (IPv6 in brackets, as in a URL).
        let shown = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let label = if port == 22 {
            format!("{user}@{shown}")
        } else {
            format!("{user}@{shown}:{port}")
        };
        let mut secrets = Secrets::new();
        secrets.insert(HOST_FIELD, host.into_bytes().into());
        secrets.insert(PORT_FIELD, port.to_string().into_bytes().into());
        secrets.insert(USERNAME_FIELD, user.clone().into_bytes().into());
        if !password.is_empty() {
            secrets.insert(PASSWORD_FIELD, password.as_bytes().to_vec().into());
        } else {
            secrets.insert(PRIVATE_KEY_FIELD, key.as_bytes().to_vec().into());
            if !passphrase.is_empty() {
                secrets.insert(PASSPHRASE_FIELD, passphrase.as_bytes().to_vec().into());
            }
        }
        Ok(Parsed {
            identity: Some(Identity {
                id: format!("sftp://{user}@{shown}:{port}"),
                label,
                pinned: host_key,
            }),
            secrets,
        })
    }

    async fn check(
        &self,
        account: Option<&Identity>,
        secrets: &Secrets,
        _now: DateTime<Utc>,
    ) -> Result<Option<Identity>, Error> {
        let account = account.ok_or_else(|| {
            Error::Protocol("an sftp check needs the account its fields name".into())
        })?;
        let host = stored_text(secrets, HOST_FIELD)?;
        let port: u16 = stored_text(secrets, PORT_FIELD)?
            .parse()
            .map_err(|_| Error::Protocol("the stored port is not a number".into()))?;
        let user = stored_text(secrets, USERNAME_FIELD)?;
        let login = match stored_text(secrets, PASSWORD_FIELD) {
            Ok(password) => Login::Password(SecretString::from(password)),
            Err(_) => {
                let passphrase = stored_text(secrets, PASSPHRASE_FIELD).unwrap_or_default();
                let key = private_key(stored_text(secrets, PRIVATE_KEY_FIELD)?, passphrase)
                    .map_err(|problem| Error::Protocol(format!("the stored key: {problem}")))?;
                Login::Key(Arc::new(key))
            }
        };
        let expected = account.pinned.as_deref();
        let server = Server {
            host,
            port,
            host_field: HOST_FIELD,
            allow_private_endpoints: self.allow_private_endpoints,
            timeout: self.timeout,
        };
        let presented = tokio::time::timeout(self.timeout, server.log_in(user, login, expected))
            .await
            .map_err(|_| Error::Unavailable {
                message: format!(
                    "{host}:{port} did not complete an SFTP login in {:?}",
                    self.timeout
                ),
                retry_after: Duration::from_secs(30),
            })??;
        Ok(Some(Identity {
            pinned: Some(presented),
            ..account.clone()
        }))
    }

    async fn mint(
        &self,
        _external_account_id: &str,
        _secrets: &Secrets,
        _now: DateTime<Utc>,
    ) -> Result<Access, Error> {
        Err(Error::Protocol(
            "an SFTP password or key has no short-lived form".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(values: &[(&str, &str)]) -> CredentialFields {
        let mut fields = CredentialFields::default();
        for (name, value) in values {
            fields.insert(*name, *value);
        }
        fields
    }

    #[test]
    fn the_account_is_host_port_and_user_and_the_password_stays_out_of_debug() {
        let parsed = Sftp::new(false, Duration::from_secs(10))
            .parse(&fields(&[
                ("host", " SFTP.Example.COM "),
                ("username", "alice"),
                ("password", "pw-secret"),
            ]))
            .expect("valid");
        let identity = parsed.identity.clone().expect("named by the fields");
        assert_eq!(identity.id, "sftp://alice@sftp.example.com:22");
        assert_eq!(identity.label, "alice@sftp.example.com");
        assert_eq!(identity.pinned, None, "trust on first use");
        assert!(!format!("{parsed:?}").contains("pw-secret"));

        let v6 = Sftp::new(false, Duration::from_secs(10))
            .parse(&fields(&[
                ("host", "[2001:DB8::1]"),
                ("port", "2222"),
                ("username", "bob"),
                ("password", "pw"),
            ]))
            .expect("valid");
        assert_eq!(
            v6.identity.expect("named").id,
            "sftp://bob@[2001:db8::1]:2222"
        );
    }

    #[test]
    fn a_fingerprint_must_look_like_what_ssh_keygen_prints() {
        let given = "SHA256:RQDOF0WQYDSDMvcKnDJq31wOjTrKrAgK+4+U1rT3h4U";
        assert_eq!(fingerprint(given).as_deref(), Ok(given));
        for bad in [
            "RQDOF0WQYDSDMvcKnDJq31wOjTrKrAgK+4+U1rT3h4U",
            "SHA256:short",
            "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48",
        ] {
            assert!(fingerprint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exactly_one_of_password_and_key_and_every_bad_field_at_once() {
        let none = Sftp::new(false, Duration::from_secs(10))
            .parse(&fields(&[("host", "a b"), ("username", "alice")]))
            .expect_err("no login");
        let named: Vec<_> = none.iter().map(|error| error.field).collect();
        assert_eq!(named, [HOST_FIELD, PASSWORD_FIELD]);
        let both = Sftp::new(false, Duration::from_secs(10))
            .parse(&fields(&[
                ("host", "example.com"),
                ("username", "alice"),
                ("password", "pw"),
                ("private_key", "-----BEGIN OPENSSH PRIVATE KEY-----"),
                ("host_key_fingerprint", "nope"),
            ]))
            .expect_err("both");
        let named: Vec<_> = both.iter().map(|error| error.field).collect();
        assert_eq!(named, [PRIVATE_KEY_FIELD, HOST_KEY_FIELD]);
    }
}
