//! `box`: one Box user's files, linked by the user signing in; the standard OAuth 2.0
//! provider with [`known::box_drive`]'s profile.

use super::{Module, Provider, Section, SectionError, Shared, oauth_app};
use crate::{
    domain::connector_type::{AuthMethod, ConnectorType, Deletion},
    providers::standard_oauth::known,
};

/// The catalogue entry.
static TYPE: ConnectorType = ConnectorType {
    id: "box",
    display_name: "Box",
    auth_method: AuthMethod::OAuth2Delegated,
    microsoft_services: &[],
    description: "One Box user's files, linked by the user signing in; deleting the connector revokes the grant at Box.",
    services: &["Box"],
    credential_fields: &[],
    identity_provider: Some("Box"),
    deletion: Deletion {
        revokes_access: true,
        access: "We revoke the token at Box, then erase it.",
        check: "The user opens Box's account settings → Apps: the app is no longer listed.",
    },
};

/// The module.
pub(super) static MODULE: Module = Module {
    entry: &TYPE,
    aliases: oauth_app::NO_ALIASES,
    build,
};

fn build(section: &Section, shared: &Shared<'_>) -> Result<Option<Provider>, SectionError> {
    oauth_app::standard(section, shared, known::box_drive)
}
