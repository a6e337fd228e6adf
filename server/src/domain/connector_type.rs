//! The catalogue of connector types and which Microsoft service each one serves.
//!
//! The catalogue is static: a connector type is code (a provider implementation), not data, so
//! adding one is a release, and every server agrees on the list without a database read.

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
}

/// The supported connector types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnectorTypeId {
    /// `amazon-s3`.
    AmazonS3,
    /// `azure-blob-storage`.
    AzureBlobStorage,
    /// `box`.
    Box,
    /// `dropbox`.
    Dropbox,
    /// `google-drive`.
    GoogleDrive,
    /// `office-365`.
    Office365,
    /// `onedrive-consumer`.
    OneDriveConsumer,
    /// `onedrive-for-business-user`.
    OneDriveForBusinessUser,
    /// `sftp`.
    Sftp,
    /// `webdav`.
    WebDav,
}

/// What the API tells about a connector type.
#[derive(Debug)]
pub struct ConnectorType {
    /// Its id.
    pub id: ConnectorTypeId,
    /// Human-readable name.
    pub display_name: &'static str,
    /// How it authenticates.
    pub auth_method: AuthMethod,
    /// The Microsoft services it serves.
    pub microsoft_services: &'static [MicrosoftService],
    /// One sentence on what it links to.
    pub description: &'static str,
    /// The services it serves, by name (wider than `microsoft_services`).
    pub services: &'static [&'static str],
    /// The credential fields it is created and reauthorized with; empty for OAuth 2.0 types.
    pub credential_fields: &'static [CredentialField],
}

/// Every connector type, ordered by id (the order `ListConnectorTypes` returns).
pub static CONNECTOR_TYPES: [ConnectorType; 10] = [
    ConnectorType {
        id: ConnectorTypeId::AmazonS3,
        display_name: "Amazon S3",
        auth_method: AuthMethod::AccountKey,
        microsoft_services: &[],
        description: "An AWS account's S3 (or an S3-compatible service), linked with an access key; workers get short-lived session credentials.",
        services: &["Amazon S3"],
        credential_fields: &[
            CredentialField {
                name: "access_key_id",
                display_name: "Access key ID",
                secret: false,
                required: true,
                validation_hint: "16 to 128 letters and digits, for example AKIAIOSFODNN7EXAMPLE",
            },
            CredentialField {
                name: "secret_access_key",
                display_name: "Secret access key",
                secret: true,
                required: true,
                validation_hint: "1 to 128 characters, no spaces",
            },
        ],
    },
    ConnectorType {
        id: ConnectorTypeId::AzureBlobStorage,
        display_name: "Azure Blob Storage",
        auth_method: AuthMethod::AccountKey,
        microsoft_services: &[MicrosoftService::AzureBlobStorage],
        description: "An Azure storage account's Blob service, linked with the account name and an access key.",
        services: &["Azure Blob Storage"],
        credential_fields: &[
            CredentialField {
                name: "account_name",
                display_name: "Storage account name",
                secret: false,
                required: true,
                validation_hint: "3 to 24 lower case letters and digits",
            },
            CredentialField {
                name: "account_key",
                display_name: "Access key",
                secret: true,
                required: true,
                validation_hint: "one of the account's access keys, base64 as the Azure portal shows it",
            },
        ],
    },
    ConnectorType {
        id: ConnectorTypeId::Box,
        display_name: "Box",
        auth_method: AuthMethod::OAuth2Delegated,
        microsoft_services: &[],
        description: "One Box user's files, linked by the user signing in; deleting the connector revokes the grant at Box.",
        services: &["Box"],
        credential_fields: &[],
    },
    ConnectorType {
        id: ConnectorTypeId::Dropbox,
        display_name: "Dropbox",
        auth_method: AuthMethod::OAuth2Delegated,
        microsoft_services: &[],
        description: "One Dropbox account's files, linked by the user signing in; deleting the connector revokes the grant at Dropbox.",
        services: &["Dropbox"],
        credential_fields: &[],
    },
    ConnectorType {
        id: ConnectorTypeId::GoogleDrive,
        display_name: "Google Drive",
        auth_method: AuthMethod::OAuth2Delegated,
        microsoft_services: &[],
        description: "One Google account's Drive, linked by the user signing in; deleting the connector revokes the grant at Google.",
        services: &["Google Drive"],
        credential_fields: &[],
    },
    ConnectorType {
        id: ConnectorTypeId::Office365,
        display_name: "Office 365",
        auth_method: AuthMethod::OAuth2AdminConsent,
        microsoft_services: &[
            MicrosoftService::OneDriveForBusinessAdministrator,
            MicrosoftService::SharePointOnline,
        ],
        description: "A whole Microsoft 365 tenant (every user's OneDrive for Business and SharePoint Online), linked by administrator consent.",
        services: &["OneDrive for Business (Administrator)", "SharePoint Online"],
        credential_fields: &[],
    },
    ConnectorType {
        id: ConnectorTypeId::OneDriveConsumer,
        display_name: "OneDrive Consumer",
        auth_method: AuthMethod::OAuth2Delegated,
        microsoft_services: &[MicrosoftService::OneDriveConsumer],
        description: "One personal Microsoft account's OneDrive, linked by the user signing in.",
        services: &["OneDrive Consumer"],
        credential_fields: &[],
    },
    ConnectorType {
        id: ConnectorTypeId::OneDriveForBusinessUser,
        display_name: "OneDrive for Business (User)",
        auth_method: AuthMethod::OAuth2Delegated,
        microsoft_services: &[MicrosoftService::OneDriveForBusinessUser],
        description: "One work account's OneDrive for Business, linked by the user signing in.",
        services: &["OneDrive for Business (User)"],
        credential_fields: &[],
    },
    ConnectorType {
        id: ConnectorTypeId::Sftp,
        display_name: "SFTP",
        auth_method: AuthMethod::Password,
        microsoft_services: &[],
        description: "A user's files on an SFTP server, linked with a password or an SSH private key; the server's host key is pinned.",
        services: &["SFTP server"],
        credential_fields: &[
            CredentialField {
                name: "host",
                display_name: "Host",
                secret: false,
                required: true,
                validation_hint: "a host name or IP address, for example sftp.example.com",
            },
            CredentialField {
                name: "port",
                display_name: "Port",
                secret: false,
                required: false,
                validation_hint: "1 to 65535; 22 when empty",
            },
            CredentialField {
                name: "username",
                display_name: "Username",
                secret: false,
                required: true,
                validation_hint: "1 to 256 characters, no spaces",
            },
            CredentialField {
                name: "password",
                display_name: "Password",
                secret: true,
                required: false,
                validation_hint: "1 to 1024 characters; give a password or a private key",
            },
            CredentialField {
                name: "private_key",
                display_name: "SSH private key",
                secret: true,
                required: false,
                validation_hint: "an OpenSSH or PEM private key (ed25519, ECDSA or RSA); give a password or a private key",
            },
            CredentialField {
                name: "private_key_passphrase",
                display_name: "Private key passphrase",
                secret: true,
                required: false,
                validation_hint: "only when the private key is protected by one",
            },
            CredentialField {
                name: "host_key_fingerprint",
                display_name: "Host key fingerprint",
                secret: false,
                required: false,
                validation_hint: "SHA256:… as ssh-keygen -lf prints it; empty to trust the key the server presents at creation; needed to accept a changed host key when reauthorizing",
            },
        ],
    },
    ConnectorType {
        id: ConnectorTypeId::WebDav,
        display_name: "WebDAV",
        auth_method: AuthMethod::Password,
        microsoft_services: &[],
        description: "A collection on a WebDAV server, linked with a username and password.",
        services: &["WebDAV server"],
        credential_fields: &[
            CredentialField {
                name: "base_url",
                display_name: "Server URL",
                secret: false,
                required: true,
                validation_hint: "the collection's https:// URL, for example https://dav.example.com/files/",
            },
            CredentialField {
                name: "username",
                display_name: "Username",
                secret: false,
                required: true,
                validation_hint: "1 to 256 characters, no colon",
            },
            CredentialField {
                name: "password",
                display_name: "Password",
                secret: true,
                required: true,
                validation_hint: "1 to 1024 characters",
            },
        ],
    },
];

impl ConnectorTypeId {
    /// The id as it appears in resource names, for example `azure-blob-storage`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorTypeId::AmazonS3 => "amazon-s3",
            ConnectorTypeId::AzureBlobStorage => "azure-blob-storage",
            ConnectorTypeId::Box => "box",
            ConnectorTypeId::Dropbox => "dropbox",
            ConnectorTypeId::GoogleDrive => "google-drive",
            ConnectorTypeId::Office365 => "office-365",
            ConnectorTypeId::OneDriveConsumer => "onedrive-consumer",
            ConnectorTypeId::OneDriveForBusinessUser => "onedrive-for-business-user",
            ConnectorTypeId::Sftp => "sftp",
            ConnectorTypeId::WebDav => "webdav",
        }
    }

    /// Parses an id such as `office-365`.
    pub fn parse(id: &str) -> Option<Self> {
        CONNECTOR_TYPES
            .iter()
            .map(|connector_type| connector_type.id)
            .find(|candidate| candidate.as_str() == id)
    }

    /// The catalogue entry.
    pub fn info(self) -> &'static ConnectorType {
        CONNECTOR_TYPES
            .iter()
            .find(|connector_type| connector_type.id == self)
            .expect("every ConnectorTypeId is in CONNECTOR_TYPES")
    }

    /// The connector type that serves a Microsoft service (the product's table).
    pub fn serving(service: MicrosoftService) -> Self {
        match service {
            MicrosoftService::AzureBlobStorage => ConnectorTypeId::AzureBlobStorage,
            MicrosoftService::OneDriveConsumer => ConnectorTypeId::OneDriveConsumer,
            MicrosoftService::OneDriveForBusinessAdministrator
            | MicrosoftService::SharePointOnline => ConnectorTypeId::Office365,
            MicrosoftService::OneDriveForBusinessUser => ConnectorTypeId::OneDriveForBusinessUser,
        }
    }
}

impl fmt::Display for ConnectorTypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_and_resolution_agree() {
        for connector_type in &CONNECTOR_TYPES {
            assert_eq!(
                ConnectorTypeId::parse(connector_type.id.as_str()),
                Some(connector_type.id)
            );
            for &service in connector_type.microsoft_services {
                assert_eq!(ConnectorTypeId::serving(service), connector_type.id);
            }
            assert_eq!(
                connector_type.auth_method.uses_credentials(),
                !connector_type.credential_fields.is_empty(),
                "{}: credential types list their fields, OAuth types none",
                connector_type.id
            );
        }
    }
}
