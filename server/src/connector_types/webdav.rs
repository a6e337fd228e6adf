//! `webdav`: a collection on a WebDAV server, linked with a username and password. No
//! configuration keys.

use std::sync::Arc;

use super::{Module, Provider, Section, SectionError, Shared};
use crate::{
    domain::connector_type::{AuthMethod, ConnectorType, CredentialField, Deletion},
    providers::webdav::WebDav,
};

/// The catalogue entry.
static TYPE: ConnectorType = ConnectorType {
    id: "webdav",
    display_name: "WebDAV",
    auth_method: AuthMethod::Password,
    microsoft_services: &[],
    description: "A collection on a WebDAV server, linked with a username and password.",
    services: &["WebDAV server"],
    credential_fields: &[
        CredentialField {
            name: "base_url",
            display_name: "Server URL",
            validation_hint: "the collection's https:// URL, for example https://dav.example.com/files/",
            ..CredentialField::PLAIN
        },
        CredentialField {
            name: "username",
            display_name: "Username",
            validation_hint: "1 to 256 characters, no colon",
            ..CredentialField::PLAIN
        },
        CredentialField {
            name: "password",
            display_name: "Password",
            secret: true,
            validation_hint: "1 to 1024 characters",
            ..CredentialField::PLAIN
        },
    ],
    identity_provider: None,
    deletion: Deletion {
        revokes_access: false,
        access: "We erase the password we held, but a WebDAV server offers no way for us to revoke it.",
        check: "Change the password at the server.",
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
    let webdav = WebDav::new(shared.provider_timeout, shared.allow_private_endpoints);
    Ok(Some(Provider::Credentials(Arc::new(webdav))))
}
