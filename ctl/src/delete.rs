//! `delete`: a connector for good, after a confirmation that says what deleting does for its
//! type. What it does is read from the type's catalogue entry rather than a list of type ids
//! here: a type linked with credentials the customer gave us (an account key, a password) has
//! nothing we can revoke, as the credential is the customer's and stays valid at the service
//! until they change it; an OAuth 2.0 grant is revoked where the provider offers revocation.

use std::io::Write as _;

use connector_client::{ConnectorClient, pb};

use crate::{
    failure::{About as _, Failure},
    render,
};

/// `delete`; asks first unless `yes`.
pub(crate) async fn run(client: &ConnectorClient, name: &str, yes: bool) -> Result<(), Failure> {
    let connector = client
        .get_connector(pb::GetConnectorRequest {
            name: name.to_owned(),
        })
        .await
        .about(name)?;
    if !yes {
        // Without the catalogue entry the question is still asked, with less said.
        let connector_type = client
            .get_connector_type(pb::GetConnectorTypeRequest {
                name: connector.connector_type.clone(),
            })
            .await
            .ok();
        let external = connector
            .external_account
            .as_ref()
            .map(|account| account.id.as_str())
            .unwrap_or_default();
        eprint!(
            "Delete connector {name} ({}, {}, {external})? {} [y/N] ",
            connector.display_name,
            render::id(&connector.connector_type),
            consequences(connector_type.as_ref()),
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .map_err(|error| Failure::Other(format!("cannot read the answer: {error}")))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            return Err(Failure::Usage("not deleted".to_owned()));
        }
    }
    // With the etag read above: if the connector changed since it was shown, nothing is deleted.
    client
        .delete_connector(pb::DeleteConnectorRequest {
            name: name.to_owned(),
            etag: connector.etag.clone(),
        })
        .await
        .about(name)?;
    println!("deleted {name}");
    Ok(())
}

/// What deleting a connector of this type does, in a sentence or two.
fn consequences(connector_type: Option<&pb::ConnectorType>) -> String {
    const PERMANENT: &str = "This is permanent";
    let Some(connector_type) = connector_type else {
        return format!("{PERMANENT}: its stored credentials are destroyed.");
    };
    let secrets: Vec<String> = connector_type
        .credential_fields
        .iter()
        .filter(|field| field.secret)
        .map(|field| lower_first(&field.display_name))
        .collect();
    if secrets.is_empty() {
        // Linked through a sign-in: we hold a grant, which the provider may let us revoke.
        return format!(
            "{PERMANENT}: its tokens are destroyed, and the grant is revoked at {} if it offers revocation (`connectorctl events` shows the outcome).",
            connector_type.display_name
        );
    }
    let secrets = either(&secrets);
    format!(
        "{PERMANENT}: the stored {secrets} is destroyed, but nothing can be revoked at {}; the {secrets} stays valid there until it is changed.",
        connector_type.display_name
    )
}

/// "a", "a or b", "a, b or c".
fn either(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// "Access key" → "access key", but "SSH private key" stays as written.
fn lower_first(label: &str) -> String {
    let mut chars = label.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
            first.to_lowercase().chain(label.chars().skip(1)).collect()
        }
        _ => label.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(display_name: &str, secret: bool) -> pb::CredentialField {
        pb::CredentialField {
            display_name: display_name.to_owned(),
            secret,
            ..Default::default()
        }
    }

    #[test]
    fn credential_types_say_nothing_can_be_revoked() {
        let azure = pb::ConnectorType {
            display_name: "Azure Blob Storage".to_owned(),
            credential_fields: vec![
                field("Storage account name", false),
                field("Access key", true),
            ],
            ..Default::default()
        };
        let said = consequences(Some(&azure));
        assert!(
            said.contains("the stored access key is destroyed, but nothing can be revoked at Azure Blob Storage; the access key stays valid there"),
            "{said}"
        );
        let sftp = pb::ConnectorType {
            display_name: "SFTP".to_owned(),
            credential_fields: vec![
                field("Password", true),
                field("SSH private key", true),
                field("Private key passphrase", true),
            ],
            ..Default::default()
        };
        assert!(
            consequences(Some(&sftp))
                .contains("password, SSH private key or private key passphrase")
        );
        let box_ = pb::ConnectorType {
            display_name: "Box".to_owned(),
            ..Default::default()
        };
        assert!(consequences(Some(&box_)).contains("the grant is revoked at Box if it offers"));
    }
}
