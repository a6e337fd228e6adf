//! `onedrive-consumer`: one personal Microsoft account's OneDrive, linked by the user signing
//! in.

use super::{Module, Provider, Section, SectionError, Shared, microsoft};
use crate::domain::connector_type::{AuthMethod, ConnectorType, Deletion, MicrosoftService};

/// The catalogue entry.
static TYPE: ConnectorType = ConnectorType {
    id: "onedrive-consumer",
    display_name: "OneDrive Consumer",
    auth_method: AuthMethod::OAuth2Delegated,
    microsoft_services: &[MicrosoftService::OneDriveConsumer],
    description: "One personal Microsoft account's OneDrive, linked by the user signing in.",
    services: &["OneDrive Consumer"],
    credential_fields: &[],
    identity_provider: Some("Microsoft"),
    deletion: Deletion {
        revokes_access: false,
        access: "We erase our tokens, but Microsoft offers apps no way to revoke a sign-in: the consent stays on the Microsoft account until it is removed there.",
        check: "Sign in at account.live.com/consent/Manage and remove the app.",
    },
};

/// The module.
pub(super) static MODULE: Module = Module {
    entry: &TYPE,
    aliases: microsoft::ALIASES,
    build,
};

fn build(section: &Section, shared: &Shared<'_>) -> Result<Option<Provider>, SectionError> {
    let flavour = microsoft::Flavour {
        tenant: "consumers",
        scopes: "openid profile offline_access User.Read Files.ReadWrite.All",
        tenant_wide: false,
    };
    microsoft::build(section, shared, &flavour)
}
