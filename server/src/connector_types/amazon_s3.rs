//! `amazon-s3`: an AWS account's S3 (or an S3-compatible service), linked with an access key;
//! workers get short-lived session credentials from STS.

use std::sync::Arc;

use super::{Alias, Module, Provider, Section, SectionError, Shared, endpoint};
use crate::{
    domain::connector_type::{AuthMethod, ConnectorType, CredentialField, Deletion},
    providers::s3::S3,
};

/// The catalogue entry.
static TYPE: ConnectorType = ConnectorType {
    id: "amazon-s3",
    display_name: "Amazon S3",
    auth_method: AuthMethod::AccountKey,
    microsoft_services: &[],
    description: "An AWS account's S3 (or an S3-compatible service), linked with an access key; workers get short-lived session credentials.",
    services: &["Amazon S3"],
    credential_fields: &[
        CredentialField {
            name: "access_key_id",
            display_name: "Access key ID",
            validation_hint: "16 to 128 letters and digits, for example AKIAIOSFODNN7EXAMPLE",
            ..CredentialField::PLAIN
        },
        CredentialField {
            name: "secret_access_key",
            display_name: "Secret access key",
            secret: true,
            validation_hint: "1 to 128 characters, no spaces",
            ..CredentialField::PLAIN
        },
    ],
    identity_provider: None,
    deletion: Deletion {
        revokes_access: false,
        access: "We erase the access key we held, but AWS has no way for us to revoke it: the key stays valid until it is deactivated.",
        check: "Deactivate or delete the access key in the AWS IAM console.",
    },
};

/// The module.
pub(super) static MODULE: Module = Module {
    entry: &TYPE,
    aliases: &[
        Alias {
            key: "endpoint",
            file_key: Some("s3_endpoint"),
            env: Some("CONNECTOR_S3_ENDPOINT"),
        },
        Alias {
            key: "sts_endpoint",
            file_key: Some("sts_endpoint"),
            env: Some("CONNECTOR_STS_ENDPOINT"),
        },
        Alias {
            key: "region",
            file_key: Some("aws_region"),
            env: None,
        },
        Alias {
            key: "session_lifetime_secs",
            file_key: Some("aws_session_lifetime_secs"),
            env: None,
        },
    ],
    build,
};

fn build(section: &Section, shared: &Shared<'_>) -> Result<Option<Provider>, SectionError> {
    section.only(&[
        "endpoint",
        "sts_endpoint",
        "region",
        "session_lifetime_secs",
    ])?;
    let endpoint = endpoint::url(section, "endpoint", "https://s3.amazonaws.com", shared)?;
    let sts = endpoint::url(section, "sts_endpoint", "https://sts.amazonaws.com", shared)?;
    let region = section
        .string("region")?
        .unwrap_or_else(|| "us-east-1".to_owned());
    let lifetime = section
        .seconds("session_lifetime_secs", 900..=3600)?
        .unwrap_or(std::time::Duration::from_secs(3600));
    let s3 = S3::new(shared.http.clone(), &endpoint, &sts, &region, lifetime);
    Ok(Some(Provider::Credentials(Arc::new(s3))))
}
