//! What the emulator knows about: registered applications ([`Client`]), directories
//! ([`Tenant`]) and the people who can sign in ([`User`]).
//!
//! These are plain data with public fields so a test can build them with a struct literal or
//! the short constructors, and they (de)serialize as the JSON of the `/_emulator` admin
//! endpoints and the tables of the binary's configuration file.

use serde::{Deserialize, Serialize};

/// The tenant id Microsoft uses for every personal (Microsoft account) user: the `tid` claim of
/// a personal account's id token. A `{tenant}` path segment with this id means `consumers`.
pub const CONSUMER_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// The one scope the client-credentials grant accepts (and admin consent usually asks for).
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

/// A registered application (an "app registration" in Entra ID).
///
/// Every client may be used from every tenant (a multi-tenant app accepting personal
/// accounts too); what restricts app-only access is admin consent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// The application (client) id, usually a GUID.
    pub client_id: String,
    /// The client secret. `None` makes a public client: it redeems codes with PKCE alone and
    /// cannot use the client-credentials grant.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Redirect URIs, compared with the request's `redirect_uri` byte for byte.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The name shown on the consent page.
    #[serde(default = "default_client_name")]
    pub display_name: String,
    /// Which provider this registration is at: the token endpoint's rotation rule, the id
    /// token's issuer, and which identity and revocation endpoints serve it.
    #[serde(default)]
    pub flavour: Flavour,
}

/// The identity provider a client registration plays (see the emulator README).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavour {
    /// The Microsoft identity platform: refresh tokens rotate on every use.
    #[default]
    Microsoft,
    /// Google: refresh tokens do not rotate (a refresh answers without one); the id token's
    /// issuer is `{base}/google`; revocation at `/google/revoke` without client credentials.
    Google,
    /// Dropbox: refresh tokens do not rotate; the account from
    /// `POST /dropbox/2/users/get_current_account`; revocation by bearer token at
    /// `POST /dropbox/2/auth/token/revoke`.
    Dropbox,
    /// Box: refresh tokens rotate and are single-use; the user from `GET /box/2.0/users/me`;
    /// revocation at `/box/oauth2/revoke` with the client's credentials (RFC 7009).
    Box,
}

impl Flavour {
    /// Whether a refresh spends the presented refresh token and answers with a new one.
    pub fn rotates_refresh_tokens(self) -> bool {
        matches!(self, Flavour::Microsoft | Flavour::Box)
    }
}

fn default_client_name() -> String {
    "Connector Service".to_owned()
}

impl Client {
    /// A confidential client with a secret and its redirect URIs.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        redirect_uris: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Client {
            client_id: client_id.into(),
            client_secret: Some(client_secret.into()),
            redirect_uris: redirect_uris.into_iter().map(Into::into).collect(),
            display_name: default_client_name(),
            flavour: Flavour::Microsoft,
        }
    }

    /// The same registration at another provider.
    pub fn with_flavour(mut self, flavour: Flavour) -> Self {
        self.flavour = flavour;
        self
    }
}

/// A work directory (an Entra ID tenant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// The tenant id, a GUID; compared case-insensitively.
    pub tenant_id: String,
    /// The default verified domain, e.g. `contoso.onmicrosoft.com`. It also works as the
    /// `{tenant}` path segment, as at Microsoft.
    pub default_domain: String,
    /// The organization's name (Graph `/organization` `displayName`).
    pub display_name: String,
}

impl Tenant {
    /// A tenant with its id, default domain and display name.
    pub fn new(
        tenant_id: impl Into<String>,
        default_domain: impl Into<String>,
        display_name: impl Into<String>,
    ) -> Self {
        Tenant {
            tenant_id: tenant_id.into(),
            default_domain: default_domain.into(),
            display_name: display_name.into(),
        }
    }
}

/// Which kind of Microsoft identity a user is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// A personal Microsoft account (outlook.com, hotmail.com…): signs in at `consumers`.
    Personal,
    /// A work or school account in a [`Tenant`]: signs in at `organizations` or its tenant.
    Work,
}

/// A person who can sign in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Personal or work.
    pub kind: AccountKind,
    /// The user's tenant: [`CONSUMER_TENANT_ID`] for personal users, a registered [`Tenant`]
    /// for work users (the id token's `tid`).
    pub tenant_id: String,
    /// The object id, stable for the user's life (the id token's `oid`, Graph `/me` `id`).
    pub object_id: String,
    /// The sign-in name (`preferred_username`, Graph `userPrincipalName`).
    pub user_principal_name: String,
    /// The e-mail address (`email` claim, Graph `mail`); `None` answers `null`, as Graph does
    /// for work accounts without a mailbox.
    #[serde(default)]
    pub mail: Option<String>,
    /// The person's name (`name` claim, Graph `displayName`).
    pub display_name: String,
    /// Template ids of the directory roles the user holds (the id token's `wids` claim, as
    /// Microsoft emits it for an app whose manifest asks for directory roles), for example
    /// [`crate::fixtures::GLOBAL_ADMINISTRATOR_ROLE`]. Empty: an ordinary user.
    #[serde(default)]
    pub directory_roles: Vec<String>,
}

impl User {
    /// A personal account; its mail is its sign-in name.
    pub fn personal(
        object_id: impl Into<String>,
        user_principal_name: impl Into<String>,
        display_name: impl Into<String>,
    ) -> Self {
        let upn = user_principal_name.into();
        User {
            kind: AccountKind::Personal,
            tenant_id: CONSUMER_TENANT_ID.to_owned(),
            object_id: object_id.into(),
            mail: Some(upn.clone()),
            user_principal_name: upn,
            display_name: display_name.into(),
            directory_roles: Vec::new(),
        }
    }

    /// A work account in `tenant_id`; its mail is its sign-in name.
    pub fn work(
        tenant_id: impl Into<String>,
        object_id: impl Into<String>,
        user_principal_name: impl Into<String>,
        display_name: impl Into<String>,
    ) -> Self {
        let upn = user_principal_name.into();
        User {
            kind: AccountKind::Work,
            tenant_id: tenant_id.into(),
            object_id: object_id.into(),
            mail: Some(upn.clone()),
            user_principal_name: upn,
            display_name: display_name.into(),
            directory_roles: Vec::new(),
        }
    }

    /// The same user holding these directory roles (template ids).
    pub fn with_directory_roles<I: Into<String>>(
        mut self,
        roles: impl IntoIterator<Item = I>,
    ) -> Self {
        self.directory_roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Whether `reference` names this user: its object id or its sign-in name, ignoring case.
    pub(crate) fn is(&self, reference: &str) -> bool {
        self.object_id.eq_ignore_ascii_case(reference)
            || self.user_principal_name.eq_ignore_ascii_case(reference)
    }
}
