//! `sftp`: a user's files on an SFTP server, linked with a password or an SSH private key; the
//! server's host key is pinned at creation. No configuration keys.

use std::sync::Arc;

use super::{Module, Provider, Section, SectionError, Shared};
use crate::{
    domain::connector_type::{AuthMethod, ConnectorType, CredentialField, Deletion},
    providers::sftp::Sftp,
};

/// The catalogue entry.
static TYPE: ConnectorType = ConnectorType {
    id: "sftp",
    display_name: "SFTP",
    auth_method: AuthMethod::Password,
    microsoft_services: &[],
    description: "A user's files on an SFTP server, linked with a password or an SSH private key; the server's host key is pinned.",
    services: &["SFTP server"],
    credential_fields: &[
        CredentialField {
            name: "host",
            display_name: "Host",
            validation_hint: "a host name or IP address, for example sftp.example.com",
            ..CredentialField::PLAIN
        },
        CredentialField {
            name: "port",
            display_name: "Port",
            required: false,
            validation_hint: "1 to 65535; 22 when empty",
            ..CredentialField::PLAIN
        },
        CredentialField {
            name: "username",
            display_name: "Username",
            validation_hint: "1 to 256 characters, no spaces",
            ..CredentialField::PLAIN
        },
        CredentialField {
            name: "password",
            display_name: "Password",
            secret: true,
            required: false,
            validation_hint: "1 to 1024 characters; give a password or a private key",
            ..CredentialField::PLAIN
        },
        CredentialField {
            name: "private_key",
            display_name: "SSH private key",
            secret: true,
            required: false,
            validation_hint: "an OpenSSH or PEM private key (ed25519, ECDSA or RSA); give a password or a private key",
            ..CredentialField::PLAIN
        },
        CredentialField {
            name: "private_key_passphrase",
            display_name: "Private key passphrase",
            secret: true,
            required: false,
            validation_hint: "only when the private key is protected by one",
            ..CredentialField::PLAIN
        },
        CredentialField {
            name: "host_key_fingerprint",
            display_name: "Host key fingerprint",
            required: false,
            validation_hint: "SHA256:… as ssh-keygen -lf prints it; empty to trust the key the server presents at creation; needed to accept a changed host key when reauthorizing",
            ..CredentialField::PLAIN
        },
    ],
    identity_provider: None,
    deletion: Deletion {
        revokes_access: false,
        access: "We erase the password or SSH key we held, but an SFTP server offers no way for us to revoke it.",
        check: "Change the password, or remove the key from the server's authorized keys.",
    },
};

/// The module.
pub(super) static MODULE: Module = Module {
    entry: &TYPE,
    aliases: &[],
    build,
};

fn build(section: &Section, shared: &Shared<'_>) -> Result<Option<Provider>, SectionError> {
    section.only(&[])?;
    let sftp = Sftp::new(shared.allow_private_endpoints, shared.provider_timeout);
    Ok(Some(Provider::Credentials(Arc::new(sftp))))
}
