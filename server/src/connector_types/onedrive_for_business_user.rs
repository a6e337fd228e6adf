//! `onedrive-for-business-user`: one work account's OneDrive for Business, linked by the user
//! signing in.

use super::{Module, Provider, Section, SectionError, Shared, microsoft};
use crate::domain::connector_type::{AuthMethod, ConnectorType, Deletion, MicrosoftService};

/// The catalogue entry.
static TYPE: ConnectorType = ConnectorType {
    id: "onedrive-for-business-user",
    display_name: "OneDrive for Business (User)",
    auth_method: AuthMethod::OAuth2Delegated,
    microsoft_services: &[MicrosoftService::OneDriveForBusinessUser],
    description: "One work account's OneDrive for Business, linked by the user signing in.",
    services: &["OneDrive for Business (User)"],
    credential_fields: &[],
    identity_provider: Some("Microsoft"),
    deletion: Deletion {
        revokes_access: false,
        access: "We erase our tokens, but Microsoft offers apps no way to revoke a sign-in: the consent stays until it is removed.",
        check: "The user removes the app at myapps.microsoft.com (or an administrator deletes its enterprise application).",
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
        tenant: "organizations",
        scopes: "openid profile offline_access User.Read Files.ReadWrite.All Sites.ReadWrite.All",
        tenant_wide: false,
    };
    microsoft::build(section, shared, &flavour)
}
