//! `google-drive`: one Google account's Drive, linked by the user signing in; the standard OAuth 2.0
//! provider with [`known::google_drive`]'s profile.

use super::{Module, Provider, Section, SectionError, Shared, oauth_app};
use crate::{
    domain::connector_type::{AuthMethod, ConnectorType, Deletion},
    providers::standard_oauth::known,
};

/// The catalogue entry.
static TYPE: ConnectorType = ConnectorType {
    id: "google-drive",
    display_name: "Google Drive",
    auth_method: AuthMethod::OAuth2Delegated,
    microsoft_services: &[],
    description: "One Google account's Drive, linked by the user signing in; deleting the connector revokes the grant at Google.",
    services: &["Google Drive"],
    credential_fields: &[],
    identity_provider: Some("Google"),
    deletion: Deletion {
        revokes_access: true,
        access: "We revoke the refresh token at Google, then erase it.",
        check: "The user opens myaccount.google.com/permissions: the app is no longer listed.",
    },
};

/// The module.
pub(super) static MODULE: Module = Module {
    entry: &TYPE,
    aliases: oauth_app::NO_ALIASES,
    build,
};

fn build(section: &Section, shared: &Shared<'_>) -> Result<Option<Provider>, SectionError> {
    oauth_app::standard(section, shared, known::google_drive)
}
