//! What a connector type is, as the domain sees it, and the catalogue of them.
//!
//! A connector type is code, not data: its module (`crate::connector_types`) declares a static
//! [`ConnectorType`] entry, and the registry there lists the modules. The domain knows no type
//! by name: it reads the entry (how the type authenticates, its credential fields, what
//! deleting means) and finds types through the [`Catalogue`] it is given, so adding a type
//! never edits the domain.

use std::fmt;

/// How a connector type authenticates to its cloud service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Storage account name and access key.
    AccountKey,
    /// OAuth 2.0 authorization code flow for one user's account.
    OAuth2Delegated,
    /// OAuth 2.0 administrator consent for a tenant, then app-only tokens.
    OAuth2AdminConsent,
    /// A username and password; no short-lived token (workers get the stored fields).
    Password,
}

impl AuthMethod {
    /// Whether connectors of this method are created with credentials (not a browser flow).
    pub fn uses_credentials(self) -> bool {
        matches!(self, AuthMethod::AccountKey | AuthMethod::Password)
    }
}

/// A Microsoft service a customer migrates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MicrosoftService {
    /// Azure Blob Storage.
    AzureBlobStorage,
    /// OneDrive for personal accounts.
    OneDriveConsumer,
    /// OneDrive for Business, tenant-wide by an administrator.
    OneDriveForBusinessAdministrator,
    /// OneDrive for Business, one user's drive.
    OneDriveForBusinessUser,
    /// SharePoint Online.
    SharePointOnline,
}

/// One credential field a connector type asks for (the catalogue describes them, so that a
/// caller can render a form without knowing the type).
#[derive(Debug)]
pub struct CredentialField {
    /// The field's name, its key in the credentials.
    pub name: &'static str,
    /// A label for a form.
    pub display_name: &'static str,
    /// Whether the value is a secret (sealed at rest, never returned, masked in a form).
    pub secret: bool,
    /// Whether it must be given.
    pub required: bool,
    /// What a valid value looks like, in words.
    pub validation_hint: &'static str,
    /// Whether the value names the external account (it becomes the connector's external
    /// account id), so a reauthorization must give the same value.
    pub identifies_account: bool,
}

impl CredentialField {
    /// A field with no special role; the struct's other flags are set with struct update syntax.
    pub const PLAIN: CredentialField = CredentialField {
        name: "",
        display_name: "",
        secret: false,
        required: true,
        validation_hint: "",
        identifies_account: false,
    };
}

/// What deleting a connector of a type does to our access at the cloud service.
#[derive(Debug)]
pub struct Deletion {
    /// Whether deleting revokes the access at the service (some offer apps no way to).
    pub revokes_access: bool,
    /// What happens to what we held, in a sentence that claims no more than happens.
    pub access: &'static str,
    /// What the customer does to check the access is gone, or to end it where we cannot.
    pub check: &'static str,
}

/// One connector type's catalogue entry, declared by its module.
#[derive(Debug)]
pub struct ConnectorType {
    /// Its id, for example `azure-blob-storage`: lower case letters, digits and `-`, at most 63
    /// characters (the [`Catalogue`] refuses any other).
    pub id: &'static str,
    /// Human-readable name.
    pub display_name: &'static str,
    /// How it authenticates.
    pub auth_method: AuthMethod,
    /// The Microsoft services it serves (the product's table).
    pub microsoft_services: &'static [MicrosoftService],
    /// One sentence on what it links to.
    pub description: &'static str,
    /// The services it serves, by name (wider than `microsoft_services`).
    pub services: &'static [&'static str],
    /// The credential fields it is created and reauthorized with; empty for OAuth 2.0 types.
    pub credential_fields: &'static [CredentialField],
    /// For OAuth 2.0 types, who runs the sign-in page, for example "Microsoft".
    pub identity_provider: Option<&'static str>,
    /// What deleting a connector of this type does to our access.
    pub deletion: Deletion,
}

/// A connector type known to this server: a handle on its catalogue entry, compared and
/// ordered by id.
///
/// It is not a closed enum: the set of types is the catalogue's, and a type id from a request
/// or a stored row becomes one only through [`Catalogue::parse`] (so an unknown or malformed
/// id is caught at the edge, and the domain can always read the entry).
#[derive(Clone, Copy)]
pub struct ConnectorTypeId(&'static ConnectorType);

impl ConnectorTypeId {
    /// The id as it appears in resource names, for example `azure-blob-storage`.
    pub fn as_str(self) -> &'static str {
        self.0.id
    }

    /// The catalogue entry.
    pub fn info(self) -> &'static ConnectorType {
        self.0
    }
}

impl PartialEq for ConnectorTypeId {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ConnectorTypeId {}

impl std::hash::Hash for ConnectorTypeId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

impl PartialOrd for ConnectorTypeId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ConnectorTypeId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.id.cmp(other.0.id)
    }
}

impl fmt::Debug for ConnectorTypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.id)
    }
}

impl fmt::Display for ConnectorTypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.id)
    }
}

/// Whether `id` is a well-formed connector type id: 1 to 63 lower case letters, digits and `-`.
pub fn well_formed(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

/// A catalogue that breaks a rule every catalogue keeps.
#[derive(Debug, thiserror::Error)]
#[error("connector type catalogue: {0}")]
pub struct CatalogueError(String);

/// The connector types this build knows, ordered by id (the order `ListConnectorTypes`
/// returns).
#[derive(Debug, Clone)]
pub struct Catalogue {
    types: Vec<ConnectorTypeId>,
}

impl Catalogue {
    /// A catalogue of `entries`. Refused when an id is malformed or repeated, a Microsoft
    /// service is served by two types, or an entry contradicts its own auth method.
    pub fn new(
        entries: impl IntoIterator<Item = &'static ConnectorType>,
    ) -> Result<Self, CatalogueError> {
        let mut types: Vec<ConnectorTypeId> = entries.into_iter().map(ConnectorTypeId).collect();
        types.sort();
        for pair in types.windows(2) {
            if pair[0] == pair[1] {
                return Err(CatalogueError(format!("`{}` is listed twice", pair[0])));
            }
        }
        for connector_type in &types {
            let entry = connector_type.info();
            if !well_formed(entry.id) {
                return Err(CatalogueError(format!("`{}` is not a valid id", entry.id)));
            }
            if entry.auth_method.uses_credentials() == entry.credential_fields.is_empty() {
                return Err(CatalogueError(format!(
                    "`{}`: credential types list their fields, OAuth 2.0 types none",
                    entry.id
                )));
            }
            if entry.auth_method.uses_credentials() == entry.identity_provider.is_some() {
                return Err(CatalogueError(format!(
                    "`{}`: OAuth 2.0 types name who signs the user in, credential types nobody",
                    entry.id
                )));
            }
            for service in entry.microsoft_services {
                let servers = types
                    .iter()
                    .filter(|other| other.info().microsoft_services.contains(service))
                    .count();
                if servers != 1 {
                    return Err(CatalogueError(format!(
                        "{service:?} is served by {servers} types"
                    )));
                }
            }
        }
        Ok(Self { types })
    }

    /// The type with id `id`, if this build has it.
    pub fn parse(&self, id: &str) -> Option<ConnectorTypeId> {
        self.types
            .binary_search_by(|candidate| candidate.as_str().cmp(id))
            .ok()
            .map(|index| self.types[index])
    }

    /// Every type, ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = ConnectorTypeId> + '_ {
        self.types.iter().copied()
    }

    /// The connector type that serves a Microsoft service (the product's table), if this build
    /// has one.
    pub fn serving(&self, service: MicrosoftService) -> Option<ConnectorTypeId> {
        self.iter()
            .find(|connector_type| connector_type.info().microsoft_services.contains(&service))
    }
}

/// Two made-up types for unit tests, so that no test outside a type's module names a real one.
#[cfg(test)]
pub(crate) mod examples {
    use super::*;

    /// A type linked with a key.
    pub(crate) static KEY: ConnectorType = ConnectorType {
        id: "example-key",
        display_name: "Example (key)",
        auth_method: AuthMethod::AccountKey,
        microsoft_services: &[],
        description: "",
        services: &[],
        credential_fields: &[CredentialField {
            name: "key",
            secret: true,
            ..CredentialField::PLAIN
        }],
        identity_provider: None,
        deletion: Deletion {
            revokes_access: false,
            access: "",
            check: "",
        },
    };

    /// A type linked by signing in.
    pub(crate) static OAUTH: ConnectorType = ConnectorType {
        id: "example-oauth",
        display_name: "Example (OAuth 2.0)",
        auth_method: AuthMethod::OAuth2Delegated,
        microsoft_services: &[],
        description: "",
        services: &[],
        credential_fields: &[],
        identity_provider: Some("Example"),
        deletion: Deletion {
            revokes_access: true,
            access: "",
            check: "",
        },
    };

    /// A catalogue of both.
    pub(crate) fn catalogue() -> Catalogue {
        Catalogue::new([&KEY, &OAUTH]).expect("valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn entry(id: &'static str, services: &'static [MicrosoftService]) -> ConnectorType {
        ConnectorType {
            id,
            display_name: "Example",
            auth_method: AuthMethod::OAuth2Delegated,
            microsoft_services: services,
            description: "",
            services: &[],
            credential_fields: &[],
            identity_provider: Some("Example"),
            deletion: Deletion {
                revokes_access: false,
                access: "",
                check: "",
            },
        }
    }

    static FIRST: ConnectorType = entry("first", &[MicrosoftService::OneDriveConsumer]);
    static SECOND: ConnectorType = entry("second", &[]);
    static AGAIN: ConnectorType = entry("second", &[MicrosoftService::OneDriveConsumer]);
    static MALFORMED: ConnectorType = entry("Not_Valid", &[]);

    #[test]
    fn a_catalogue_finds_its_types_by_id_and_by_service() {
        let catalogue = Catalogue::new([&SECOND, &FIRST]).unwrap();
        let ids: Vec<_> = catalogue.iter().map(ConnectorTypeId::as_str).collect();
        assert_eq!(ids, ["first", "second"]);
        assert_eq!(catalogue.parse("second").unwrap().info().id, "second");
        assert!(catalogue.parse("third").is_none());
        assert_eq!(
            catalogue
                .serving(MicrosoftService::OneDriveConsumer)
                .map(ConnectorTypeId::as_str),
            Some("first")
        );
        assert!(
            catalogue
                .serving(MicrosoftService::SharePointOnline)
                .is_none()
        );
    }

    #[test]
    fn a_catalogue_refuses_repeats_malformed_ids_and_a_service_served_twice() {
        assert!(Catalogue::new([&SECOND, &SECOND]).is_err());
        assert!(Catalogue::new([&MALFORMED]).is_err());
        assert!(Catalogue::new([&FIRST, &AGAIN]).is_err());
    }
}
