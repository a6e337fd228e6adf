//! One SSH session with the server: connect to the checked addresses, check the host key
//! against the pin, log in, and prove SFTP works ([`super::protocol`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, client};
use secrecy::{ExposeSecret as _, SecretString};

use super::protocol;
use crate::providers::{Error, credentials::PinnedAttribute, endpoints};

/// The server's host key, pinned at creation: a changed one is refused before a password or
/// signature is sent.
pub(super) const HOST_KEY: PinnedAttribute = PinnedAttribute {
    field: "host_key_fingerprint",
    noun: "host key",
    value_name: "fingerprint",
    changed_reason: "HOST_KEY_CHANGED",
};

/// The SHA-256 fingerprint of a server's host key, in OpenSSH's form.
fn key_fingerprint(key: &PublicKeyOrCertificate) -> String {
    match key {
        PublicKeyOrCertificate::PublicKey { key, .. } => key.fingerprint(HashAlg::Sha256),
        PublicKeyOrCertificate::Certificate(certificate) => {
            russh::keys::PublicKey::from(certificate.public_key().clone())
                .fingerprint(HashAlg::Sha256)
        }
    }
    .to_string()
}

/// Records the host key the server presents, and accepts it only when it is the one expected
/// (or nothing is pinned yet): a refused key ends the handshake before anything is sent.
struct PinningHandler {
    expected: Option<String>,
    presented: Arc<Mutex<Option<String>>>,
}

impl client::Handler for PinningHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let presented = key_fingerprint(server_public_key);
        let accepted = self
            .expected
            .as_ref()
            .is_none_or(|expected| *expected == presented);
        *self.presented.lock().unwrap_or_else(|p| p.into_inner()) = Some(presented);
        Ok(accepted)
    }
}

/// How the user proves who they are.
pub(super) enum Login {
    Password(SecretString),
    Key(Arc<PrivateKey>),
}

/// Where to log in, and this service's rules for it.
pub(super) struct Server<'a> {
    pub(super) host: &'a str,
    pub(super) port: u16,
    /// The credential field that names the host (for a policy refusal).
    pub(super) host_field: &'static str,
    pub(super) allow_private_endpoints: bool,
    /// The check's deadline; the SSH session ends a moment after it.
    pub(super) timeout: Duration,
}

impl Server<'_> {
    /// Connects, checks the host key, logs in and opens SFTP; the host key presented.
    pub(super) async fn log_in(
        &self,
        user: &str,
        login: Login,
        expected_key: Option<&str>,
    ) -> Result<String, Error> {
        let (host, port) = (self.host, self.port);
        let addresses =
            endpoints::resolve(host, port, self.host_field, self.allow_private_endpoints).await?;
        let server = format!("{user}@{host}:{port}");
        let unavailable = |what: String| Error::Unavailable {
            message: what,
            retry_after: Duration::from_secs(30),
        };
        let presented = Arc::new(Mutex::new(None));
        let handler = PinningHandler {
            expected: expected_key.map(str::to_owned),
            presented: presented.clone(),
        };
        let config = Arc::new(client::Config {
            // The check's own deadline (in `check`) decides; this only ends a session left behind.
            inactivity_timeout: Some(self.timeout + Duration::from_secs(1)),
            nodelay: true,
            ..Default::default()
        });
        let connected = client::connect(config, &addresses[..], handler).await;
        let presented = presented.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let (mut session, presented) = match (connected, presented) {
            (Ok(session), Some(presented)) => (session, presented),
            (Err(russh::Error::UnknownKey), Some(presented)) => {
                return Err(Error::PinnedChanged {
                    attribute: &HOST_KEY,
                    expected: expected_key.unwrap_or_default().to_owned(),
                    presented,
                });
            }
            (Err(error), _) => {
                return Err(unavailable(format!(
                    "cannot open an SSH session with {host}:{port}: {error}"
                )));
            }
            (Ok(_), None) => {
                return Err(Error::Protocol(format!(
                    "{host}:{port} completed SSH without presenting a host key"
                )));
            }
        };
        let ssh_failed =
            |error: russh::Error| unavailable(format!("SSH with {server} failed: {error}"));
        let authenticated = match login {
            Login::Password(password) => session
                .authenticate_password(user, password.expose_secret())
                .await
                .map_err(ssh_failed)?,
            Login::Key(key) => {
                let hash = session
                    .best_supported_rsa_hash()
                    .await
                    .map_err(ssh_failed)?
                    .flatten();
                session
                    .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, hash))
                    .await
                    .map_err(ssh_failed)?
            }
        };
        if !authenticated.success() {
            return Err(Error::CredentialsRejected(format!(
                "the SSH server at {host}:{port} rejected the credentials of `{user}`"
            )));
        }
        let spoken = speak_sftp(&mut session).await;
        let _ = session
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        match spoken.map_err(ssh_failed)? {
            protocol::Outcome::Speaks => {}
            protocol::Outcome::DoesNotSpeak(why) => {
                return Err(Error::Refused(format!(
                    "the SSH server at {host}:{port} let `{user}` in but does not serve SFTP to it: {why}"
                )));
            }
        }
        Ok(presented)
    }
}

/// Opens the `sftp` subsystem and exchanges SFTP's first packets: whether the server serves
/// SFTP to the user who logged in.
async fn speak_sftp(
    session: &mut client::Handle<PinningHandler>,
) -> Result<protocol::Outcome, russh::Error> {
    let mut channel = session.channel_open_session().await?;
    channel.request_subsystem(true, "sftp").await?; // the SSH subsystem: not a connector type id
    let granted = loop {
        match channel.wait().await {
            Some(ChannelMsg::Success) => break true,
            Some(ChannelMsg::Failure) | None => break false,
            Some(_) => {}
        }
    };
    if !granted {
        return Ok(protocol::Outcome::DoesNotSpeak(
            "it refused the sftp subsystem".into(),
        ));
    }
    channel.data(&protocol::opening()[..]).await?;
    let mut exchange = protocol::Exchange::default();
    let outcome = loop {
        match channel.wait().await {
            Some(ChannelMsg::Data { data }) => {
                if let Some(outcome) = exchange.receive(&data) {
                    break outcome;
                }
            }
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break exchange.closed(),
            // stderr text, exit status, window changes: not SFTP's business.
            Some(_) => {}
        }
    };
    let _ = channel.close().await;
    Ok(outcome)
}
