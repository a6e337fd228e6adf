//! What the three Microsoft OAuth 2.0 types share: the identity platform and Graph endpoints
//! (`login_url`, `graph_url`; the older top-level `microsoft_login` and `microsoft_graph` set
//! them for all three), and how an app registration becomes a Microsoft provider.

use std::sync::Arc;

use super::{Alias, Provider, Section, SectionError, Shared, endpoint, oauth_app};
use crate::providers::microsoft::{Microsoft, MicrosoftApp, OAuthApp};

/// The Microsoft identity platform.
pub(super) const DEFAULT_LOGIN: &str = "https://login.microsoftonline.com";
/// Microsoft Graph.
pub(super) const DEFAULT_GRAPH: &str = "https://graph.microsoft.com";

/// The older names of the shared keys.
pub(super) const ALIASES: &[Alias] = &[
    Alias {
        key: "login_url",
        file_key: Some("microsoft_login"),
        env: None,
    },
    Alias {
        key: "graph_url",
        file_key: Some("microsoft_graph"),
        env: None,
    },
];

/// How one Microsoft type differs from the others.
pub(super) struct Flavour {
    /// The tenant segment when the registration names none (`consumers`, `organizations`).
    pub(super) tenant: &'static str,
    /// The scopes when the registration names none.
    pub(super) scopes: &'static str,
    /// Tenant-wide administrator consent and app-only tokens, rather than one user's.
    pub(super) tenant_wide: bool,
}

/// The provider of a Microsoft type, from its section.
pub(super) fn build(
    section: &Section,
    shared: &Shared<'_>,
    flavour: &Flavour,
) -> Result<Option<Provider>, SectionError> {
    let login = endpoint::url(section, "login_url", DEFAULT_LOGIN, shared)?;
    let graph = endpoint::url(section, "graph_url", DEFAULT_GRAPH, shared)?;
    let Some(app) = oauth_app::read(section, &["login_url", "graph_url"], shared)? else {
        return Ok(None);
    };
    // Microsoft's endpoints come from login_url and graph_url.
    for key in ["authorize_url", "token_url", "identity_url", "issuer"] {
        if section.contains(key) {
            return Err(section.invalid(key, "is not used by Microsoft types (set login_url)"));
        }
    }
    let registration = OAuthApp {
        client_id: app.client_id,
        client_secret: app.client_secret,
        tenant: app.tenant.unwrap_or_else(|| flavour.tenant.to_owned()),
        scopes: app
            .scopes
            .unwrap_or_else(|| flavour.scopes.split(' ').map(str::to_owned).collect()),
        revocation_url: app.revocation_url,
    };
    let microsoft = Microsoft::new(shared.http.clone(), &login, &graph);
    let provider = MicrosoftApp::new(microsoft, registration, flavour.tenant_wide, &graph);
    Ok(Some(Provider::OAuth(Arc::new(provider))))
}
