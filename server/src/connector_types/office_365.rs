//! `office-365`: a whole Microsoft 365 tenant (OneDrive for Business, administrator, and
//! SharePoint Online), linked by administrator consent; app-only tokens afterwards.

use super::{Module, Provider, Section, SectionError, Shared, microsoft};
use crate::domain::connector_type::{AuthMethod, ConnectorType, Deletion, MicrosoftService};

/// The catalogue entry.
static TYPE: ConnectorType = ConnectorType {
    id: "office-365",
    display_name: "Office 365",
    auth_method: AuthMethod::OAuth2AdminConsent,
    microsoft_services: &[
        MicrosoftService::OneDriveForBusinessAdministrator,
        MicrosoftService::SharePointOnline,
    ],
    description: "A whole Microsoft 365 tenant (every user's OneDrive for Business and SharePoint Online), linked by administrator consent.",
    services: &["OneDrive for Business (Administrator)", "SharePoint Online"],
    credential_fields: &[],
    identity_provider: Some("Microsoft"),
    deletion: Deletion {
        revokes_access: false,
        access: "We erase our tokens, but the administrator consent stays on the tenant until it is withdrawn there.",
        check: "An administrator deletes the app in the Microsoft Entra admin center: Enterprise applications → the app → Properties → Delete.",
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
        scopes: "openid profile https://graph.microsoft.com/.default",
        tenant_wide: true,
    };
    microsoft::build(section, shared, &flavour)
}
