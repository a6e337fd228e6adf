//! `create TYPE`: a connector of any credential type, its credentials named as the catalogue
//! lists the type's fields. The fields are checked against the catalogue before the call:
//! a name the type does not have is refused with the list of its fields, a missing required
//! field is named, and a secret is never taken from the command line (only from a file,
//! standard input, or a prompt that does not echo). An OAuth 2.0 type is pointed to
//! `connectorctl authorize`.

use std::{collections::HashMap, io::IsTerminal as _, io::Read as _, path::Path};

use connector_client::{ConnectorClient, pb};

use crate::{
    cli::CreateFieldsArgs,
    failure::{About as _, Failure},
    settings::{self, Settings},
};

/// Creates the connector from the type's fields; returns it.
pub(crate) async fn run(
    client: &ConnectorClient,
    settings: &Settings,
    args: CreateFieldsArgs,
) -> Result<pb::Connector, Failure> {
    let parent = settings.parent()?;
    let written = args.connector_type.clone().unwrap_or_default();
    let name = if written.starts_with("connectorTypes/") {
        written
    } else {
        format!("connectorTypes/{written}")
    };
    let connector_type = client
        .get_connector_type(pb::GetConnectorTypeRequest { name: name.clone() })
        .await
        .about(&name)?;
    let on_terminal = std::io::stdin().is_terminal();
    let values = credential_values(&connector_type, &args, on_terminal)?;
    let display_name = display_name(&connector_type, &values, args.display_name)?;
    client
        .create_connector(pb::CreateConnectorRequest {
            parent: parent.clone(),
            connector: Some(pb::Connector {
                connector_type: connector_type.name.clone(),
                display_name,
                ..Default::default()
            }),
            credentials: Some(pb::Credentials {
                kind: Some(pb::credentials::Kind::Fields(pb::CredentialFields {
                    values,
                })),
            }),
        })
        .await
        .about(&parent)
}

/// The type's id for messages: `webdav` for `connectorTypes/webdav`.
fn id(connector_type: &pb::ConnectorType) -> &str {
    connector_type
        .name
        .strip_prefix("connectorTypes/")
        .unwrap_or(&connector_type.name)
}

/// The values to send: `--field`s, the secrets from files and standard input, then (on a
/// terminal) the secrets still missing asked for. Refuses an OAuth 2.0 type, a field the type
/// does not have, a secret on the command line, and a required field left out.
fn credential_values(
    connector_type: &pb::ConnectorType,
    args: &CreateFieldsArgs,
    on_terminal: bool,
) -> Result<HashMap<String, String>, Failure> {
    if connector_type.credential_fields.is_empty() {
        return Err(not_a_credential_type(connector_type));
    }
    let mut values = HashMap::new();
    for written in &args.fields {
        let (name, value) = pair(written, "--field", "NAME=VALUE")?;
        let field = field_of(connector_type, name)?;
        if field.secret {
            return Err(Failure::Usage(format!(
                "{name} is secret and is not taken on the command line: give it with --secret-stdin {name} or --secret-file {name}=FILE (or run on a terminal to be asked)"
            )));
        }
        insert(&mut values, name, value.trim().to_owned())?;
    }
    for written in &args.secret_files {
        let (name, path) = pair(written, "--secret-file", "NAME=FILE")?;
        field_of(connector_type, name)?;
        insert(&mut values, name, read_file(Path::new(path))?)?;
    }
    if let Some(name) = &args.secret_stdin {
        let field = field_of(connector_type, name)?;
        let value = if on_terminal {
            ask(field)?
        } else {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|error| Failure::Other(format!("cannot read standard input: {error}")))?;
            without_line_end(text)
        };
        insert(&mut values, name, value)?;
    }
    ask_for_missing_secrets(connector_type, &mut values, on_terminal)?;
    let missing: Vec<String> = connector_type
        .credential_fields
        .iter()
        .filter(|field| field.required && !values.contains_key(&field.name))
        .map(how_to_give)
        .collect();
    if !missing.is_empty() {
        return Err(Failure::Usage(format!(
            "{} needs {}",
            id(connector_type),
            missing.join(", ")
        )));
    }
    for (name, value) in &values {
        if value.is_empty() {
            return Err(Failure::Usage(format!("{name} is empty")));
        }
    }
    Ok(values)
}

/// On a terminal, asks for each required secret field not given; when the type's secrets are
/// all optional (SFTP: a password or a private key) and none was given, asks for the first.
fn ask_for_missing_secrets(
    connector_type: &pb::ConnectorType,
    values: &mut HashMap<String, String>,
    on_terminal: bool,
) -> Result<(), Failure> {
    if !on_terminal {
        return Ok(());
    }
    let secrets: Vec<&pb::CredentialField> = connector_type
        .credential_fields
        .iter()
        .filter(|field| field.secret)
        .collect();
    let required: Vec<&pb::CredentialField> = secrets
        .iter()
        .copied()
        .filter(|field| field.required)
        .collect();
    let to_ask = if !required.is_empty() {
        required
    } else if secrets.iter().any(|field| values.contains_key(&field.name)) {
        Vec::new()
    } else {
        secrets.into_iter().take(1).collect()
    };
    for field in to_ask {
        if !values.contains_key(&field.name) {
            values.insert(field.name.clone(), ask(field)?);
        }
    }
    Ok(())
}

/// The display name: `--display-name`, else the value of the field that names the account.
fn display_name(
    connector_type: &pb::ConnectorType,
    values: &HashMap<String, String>,
    given: Option<String>,
) -> Result<String, Failure> {
    if let Some(name) = given {
        return Ok(name);
    }
    connector_type
        .credential_fields
        .iter()
        .find(|field| field.identifies_account)
        .and_then(|field| values.get(&field.name).cloned())
        .ok_or_else(|| Failure::Usage("give the connector a name with --display-name".to_owned()))
}

fn not_a_credential_type(connector_type: &pb::ConnectorType) -> Failure {
    let by = if connector_type.identity_provider.is_empty() {
        String::new()
    } else {
        format!(" at {}", connector_type.identity_provider)
    };
    Failure::Usage(format!(
        "{} ({}) is linked by signing in{by}, not with credentials: run `connectorctl authorize {}`",
        connector_type.display_name,
        id(connector_type),
        id(connector_type),
    ))
}

/// The type's field called `name`, or a refusal listing the fields it has.
fn field_of<'a>(
    connector_type: &'a pb::ConnectorType,
    name: &str,
) -> Result<&'a pb::CredentialField, Failure> {
    connector_type
        .credential_fields
        .iter()
        .find(|field| field.name == name)
        .ok_or_else(|| {
            let fields: Vec<String> = connector_type
                .credential_fields
                .iter()
                .map(|field| {
                    let mut about = Vec::new();
                    if field.required {
                        about.push("required");
                    }
                    if field.secret {
                        about.push("secret");
                    }
                    if about.is_empty() {
                        field.name.clone()
                    } else {
                        format!("{} ({})", field.name, about.join(", "))
                    }
                })
                .collect();
            Failure::Usage(format!(
                "{} has no field `{name}`; its fields: {}",
                id(connector_type),
                fields.join(", ")
            ))
        })
}

/// How the operator gives a missing field, for the message naming it.
fn how_to_give(field: &pb::CredentialField) -> String {
    if field.secret {
        format!(
            "{} ({}: --secret-stdin {} or --secret-file {}=FILE)",
            field.name, field.display_name, field.name, field.name
        )
    } else {
        format!(
            "{} ({}: --field {}=VALUE)",
            field.name, field.display_name, field.name
        )
    }
}

fn pair<'a>(written: &'a str, option: &str, shape: &str) -> Result<(&'a str, &'a str), Failure> {
    written
        .split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| Failure::Usage(format!("{option} {written}: expected {shape}")))
}

fn insert(values: &mut HashMap<String, String>, name: &str, value: String) -> Result<(), Failure> {
    if values.insert(name.to_owned(), value).is_some() {
        return Err(Failure::Usage(format!("{name} is given twice")));
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<String, Failure> {
    String::from_utf8(settings::read(path)?)
        .map(without_line_end)
        .map_err(|_| Failure::Usage(format!("{} is not text", path.display())))
}

fn ask(field: &pb::CredentialField) -> Result<String, Failure> {
    rpassword::prompt_password(format!("{} (not shown as you type): ", field.display_name))
        .map_err(|error| Failure::Other(format!("cannot read the {}: {error}", field.name)))
}

/// The text without the line end a file or `echo` leaves; anything else is the secret's own.
fn without_line_end(mut text: String) -> String {
    while text.ends_with('\n') || text.ends_with('\r') {
        text.pop();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, secret: bool, required: bool) -> pb::CredentialField {
        pb::CredentialField {
            name: name.to_owned(),
            display_name: name.to_owned(),
            secret,
            required,
            ..Default::default()
        }
    }

    fn dav() -> pb::ConnectorType {
        pb::ConnectorType {
            name: "connectorTypes/dav".to_owned(),
            credential_fields: vec![
                field("base_url", false, true),
                field("username", false, true),
                field("password", true, true),
            ],
            ..Default::default()
        }
    }

    fn args(fields: &[&str]) -> CreateFieldsArgs {
        CreateFieldsArgs {
            connector_type: Some("dav".to_owned()),
            display_name: None,
            fields: fields.iter().map(|field| (*field).to_owned()).collect(),
            secret_files: Vec::new(),
            secret_stdin: None,
            quiet: false,
            json: false,
        }
    }

    fn refusal(result: Result<HashMap<String, String>, Failure>) -> String {
        match result {
            Err(Failure::Usage(text)) => text,
            other => panic!("not a usage error: {other:?}"),
        }
    }

    #[test]
    fn fields_are_checked_against_the_type() {
        let unknown = refusal(credential_values(&dav(), &args(&["colour=red"]), false));
        assert!(
            unknown.contains("no field `colour`")
                && unknown.contains("base_url (required)")
                && unknown.contains("password (required, secret)"),
            "{unknown}"
        );
        let secret = refusal(credential_values(&dav(), &args(&["password=x"]), false));
        assert!(secret.contains("--secret-stdin password"), "{secret}");
        assert!(!secret.contains("=x"), "the value is not echoed: {secret}");
        let missing = refusal(credential_values(
            &dav(),
            &args(&["base_url=http://h/"]),
            false,
        ));
        assert!(
            missing.contains("username (username: --field username=VALUE)")
                && missing.contains("password (password: --secret-stdin password"),
            "{missing}"
        );
    }

    #[test]
    fn a_file_loses_its_line_end_only() {
        assert_eq!(without_line_end(" p w \r\n".to_owned()), " p w ");
    }
}
