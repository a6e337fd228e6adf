//! One function per subcommand: turn the arguments into requests, call the service through
//! `connector-client`, print the answer. Errors go back to `main` as a [`Failure`], which knows
//! the exit code and the words.

use std::io::IsTerminal as _;

use connector_client::{ConnectorClient, pb};

use crate::{
    authorize::{self, Awaited, Started},
    cli::{
        AuthorizeArgs, Cli, Command, CreateArgs, CreateAzureArgs, CreateCommand, KeysCommand,
        ReauthorizeArgs,
    },
    create, delete, events,
    failure::{About as _, Failure},
    keys, render,
    secret::{self, Missing},
    settings::Settings,
};

/// The one type with credentials of its own kind in the API (`AzureStorageAccountKey`); other
/// credential types take named fields.
const AZURE_BLOB_STORAGE: &str = "connectorTypes/azure-blob-storage";

/// The largest page the service serves; fewer round trips for "every page".
const PAGE_SIZE: i32 = 1000;

/// Runs the command line.
pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    let Cli {
        connection,
        command,
    } = cli;
    // Needs no server.
    if let Command::Keys(KeysCommand::New(args)) = &command {
        return keys::new_key(args);
    }
    let settings = Settings::resolve(&connection)?;
    // Refused before anything is sent: nobody can answer the question.
    if let Command::Delete { yes: false, .. } = &command
        && !std::io::stdin().is_terminal()
    {
        return Err(Failure::Usage(
            "not deleting without a confirmation: there is no terminal to ask on, pass --yes"
                .to_owned(),
        ));
    }
    check_names(&command, &settings)?;
    let client = settings.connect().await?;
    match command {
        Command::Types { json } => types(&client, json).await,
        Command::Resolve { service, json } => resolve(&client, &service, json).await,
        Command::List { filter, json } => list(&client, &settings, filter, json).await,
        Command::Get { connector, json } => {
            let name = settings.connector_name(&connector)?;
            let connector = get(&client, &name).await?;
            print_connector(&connector, json);
            Ok(())
        }
        Command::Create(CreateArgs {
            shorthand: Some(CreateCommand::Azure(args)),
            ..
        }) => create_azure(&client, &settings, args).await,
        Command::Create(CreateArgs {
            shorthand: None,
            fields,
        }) => {
            let (quiet, json) = (fields.quiet, fields.json);
            let created = create::run(&client, &settings, fields).await?;
            print_created(&created, quiet, json);
            Ok(())
        }
        Command::Authorize(args) => authorize(&client, &settings, args).await,
        Command::Reauthorize(args) => reauthorize(&client, &settings, args).await,
        Command::Delete { connector, yes } => {
            delete::run(&client, &settings.connector_name(&connector)?, yes).await
        }
        Command::Events {
            after,
            follow,
            json,
        } => events::run(&client, &settings.parent()?, after, follow, json).await,
        Command::Token { connector, json } => token(&client, &settings, &connector, json).await,
        Command::Keys(KeysCommand::New(_)) => unreachable!("handled above"),
    }
}

/// A missing account is a usage error, told before a connection attempt could hide it.
fn check_names(command: &Command, settings: &Settings) -> Result<(), Failure> {
    match command {
        Command::Get { connector, .. }
        | Command::Delete { connector, .. }
        | Command::Token { connector, .. }
        | Command::Reauthorize(ReauthorizeArgs { connector, .. }) => {
            settings.connector_name(connector).map(drop)
        }
        Command::List { .. }
        | Command::Events { .. }
        | Command::Create(_)
        | Command::Authorize(_) => settings.parent().map(drop),
        Command::Types { .. } | Command::Resolve { .. } | Command::Keys(_) => Ok(()),
    }
}

fn print_connector(connector: &pb::Connector, json: bool) {
    if json {
        println!("{}", render::pretty(&render::connector_json(connector)));
    } else {
        println!("{}", render::connector_details(connector));
    }
}

async fn get(client: &ConnectorClient, name: &str) -> Result<pb::Connector, Failure> {
    client
        .get_connector(pb::GetConnectorRequest {
            name: name.to_owned(),
        })
        .await
        .about(name)
}

async fn types(client: &ConnectorClient, json: bool) -> Result<(), Failure> {
    let types = client
        .list_connector_types(pb::ListConnectorTypesRequest {})
        .await?
        .connector_types;
    if json {
        let all: Vec<_> = types.iter().map(render::connector_type_json).collect();
        println!("{}", render::pretty(&serde_json::Value::Array(all)));
    } else {
        println!("{}", render::types_table(&types));
    }
    Ok(())
}

/// `"SharePoint Online"`, `sharepoint-online` or `MICROSOFT_SERVICE_SHAREPOINT_ONLINE`.
fn microsoft_service(service: &str) -> Result<pb::MicrosoftService, Failure> {
    let words: Vec<String> = service
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    let joined = words.join("_");
    let joined = joined.strip_prefix("MICROSOFT_SERVICE_").unwrap_or(&joined);
    pb::MicrosoftService::from_str_name(&format!("MICROSOFT_SERVICE_{joined}"))
        .filter(|service| *service != pb::MicrosoftService::Unspecified)
        .ok_or_else(|| {
            Failure::Usage(format!(
                "`{service}` is not a Microsoft service the API knows: one of \"Azure Blob Storage\", \"OneDrive consumer\", \"OneDrive for Business administrator\", \"OneDrive for Business user\", \"SharePoint Online\""
            ))
        })
}

async fn resolve(client: &ConnectorClient, service: &str, json: bool) -> Result<(), Failure> {
    let microsoft_service = microsoft_service(service)?;
    let resolved = client
        .resolve_connector_type(pb::ResolveConnectorTypeRequest {
            microsoft_service: microsoft_service.into(),
        })
        .await
        .about(service)?;
    let Some(connector_type) = resolved.connector_type else {
        return Err(Failure::Other(
            "the server named no connector type".to_owned(),
        ));
    };
    if json {
        println!(
            "{}",
            render::pretty(&render::connector_type_json(&connector_type))
        );
    } else {
        println!("{}", render::types_table(&[connector_type]));
    }
    Ok(())
}

async fn list(
    client: &ConnectorClient,
    settings: &Settings,
    filter: Option<String>,
    json: bool,
) -> Result<(), Failure> {
    let parent = settings.parent()?;
    let mut connectors = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_connectors(pb::ListConnectorsRequest {
                parent: parent.clone(),
                page_size: PAGE_SIZE,
                page_token,
                filter: filter.clone().unwrap_or_default(),
            })
            .await
            .about(&parent)?;
        connectors.extend(page.connectors);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if json {
        let all: Vec<_> = connectors.iter().map(render::connector_json).collect();
        println!("{}", render::pretty(&serde_json::Value::Array(all)));
    } else {
        println!("{}", render::connectors_table(&connectors));
    }
    Ok(())
}

fn azure_credentials(account_name: String, account_key: String) -> pb::Credentials {
    pb::Credentials {
        kind: Some(pb::credentials::Kind::AzureStorageAccountKey(
            pb::AzureStorageAccountKey {
                account_name,
                account_key,
            },
        )),
    }
}

async fn create_azure(
    client: &ConnectorClient,
    settings: &Settings,
    args: CreateAzureArgs,
) -> Result<(), Failure> {
    let parent = settings.parent()?;
    let key = secret::read(&args.key, "account key", Missing::Ask)?.ok_or_else(|| {
        Failure::Usage(
            "give the account key with --key-file FILE or --key-stdin (or run on a terminal to be asked)"
                .to_owned(),
        )
    })?;
    let created = client
        .create_connector(pb::CreateConnectorRequest {
            parent: parent.clone(),
            connector: Some(pb::Connector {
                connector_type: AZURE_BLOB_STORAGE.to_owned(),
                display_name: args
                    .display_name
                    .unwrap_or_else(|| args.account_name.clone()),
                ..Default::default()
            }),
            credentials: Some(azure_credentials(args.account_name, key)),
        })
        .await
        .about(&parent)?;
    print_created(&created, args.quiet, args.json);
    Ok(())
}

/// A new connector: its name only with `--quiet`.
fn print_created(created: &pb::Connector, quiet: bool, json: bool) {
    if quiet {
        println!("{}", created.name);
    } else {
        print_connector(created, json);
    }
}

/// The cursor of the account's latest event (0 for none): events after it are new.
async fn latest_cursor(client: &ConnectorClient, parent: &str) -> Result<i64, Failure> {
    let mut latest = 0;
    let mut page_token = String::new();
    loop {
        let page = client
            .list_connector_events(pb::ListConnectorEventsRequest {
                parent: parent.to_owned(),
                page_size: PAGE_SIZE,
                page_token,
            })
            .await
            .about(parent)?;
        if let Some(last) = page.events.last() {
            latest = last.cursor;
        }
        if page.next_page_token.is_empty() {
            return Ok(latest);
        }
        page_token = page.next_page_token;
    }
}

async fn authorize(
    client: &ConnectorClient,
    settings: &Settings,
    args: AuthorizeArgs,
) -> Result<(), Failure> {
    let parent = settings.parent()?;
    let connector_type = if args.connector_type.starts_with("connectorTypes/") {
        args.connector_type
    } else {
        format!("connectorTypes/{}", args.connector_type)
    };
    let after_cursor = latest_cursor(client, &parent).await?;
    let response = client
        .start_authorization(pb::StartAuthorizationRequest {
            parent: parent.clone(),
            connector_type: connector_type.clone(),
            display_name: args.display_name.unwrap_or_default(),
            ..Default::default()
        })
        .await
        .about(&connector_type)?;
    let started = Started {
        parent,
        url: response.authorization_url,
        expire_time: response.expire_time,
        after_cursor,
    };
    let awaited = Awaited::NewConnectorOfType(connector_type);
    let connector = authorize::finish(client, started, awaited, &args.browser).await?;
    eprintln!("Authorized:");
    print_connector(&connector, args.browser.json);
    Ok(())
}

async fn reauthorize(
    client: &ConnectorClient,
    settings: &Settings,
    args: ReauthorizeArgs,
) -> Result<(), Failure> {
    let name = settings.connector_name(&args.connector)?;
    let connector = get(client, &name).await?;
    let credentials = match connector.auth_method() {
        pb::AuthMethod::Oauth2Delegated | pb::AuthMethod::Oauth2AdminConsent => {
            let parent = name
                .split("/connectors/")
                .next()
                .unwrap_or_default()
                .to_owned();
            let after_cursor = latest_cursor(client, &parent).await?;
            let response = client
                .start_reauthorization(pb::StartReauthorizationRequest {
                    name: name.clone(),
                    ..Default::default()
                })
                .await
                .about(&name)?;
            let started = Started {
                parent,
                url: response.authorization_url,
                expire_time: response.expire_time,
                after_cursor,
            };
            let awaited = Awaited::Reauthorized(name.clone());
            let connector = authorize::finish(client, started, awaited, &args.browser).await?;
            eprintln!("Reauthorized:");
            print_connector(&connector, args.browser.json);
            return Ok(());
        }
        _ if connector.connector_type == AZURE_BLOB_STORAGE => {
            let key = secret::read(&args.key, "new account key", Missing::Ask)?.ok_or_else(|| {
                Failure::Usage(
                    "give the new account key with --key-file or --key-stdin (or run on a terminal to be asked)"
                        .to_owned(),
                )
            })?;
            let account_name = args.account_name.clone().unwrap_or_else(|| {
                connector
                    .external_account
                    .as_ref()
                    .map(|account| account.id.clone())
                    .unwrap_or_default()
            });
            azure_credentials(account_name, key)
        }
        _ => field_credentials(client, &connector, &args).await?,
    };
    let reauthorized = client
        .reauthorize_connector(pb::ReauthorizeConnectorRequest {
            name: name.clone(),
            credentials: Some(credentials),
        })
        .await
        .about(&name)?;
    print_connector(&reauthorized, args.browser.json);
    Ok(())
}

/// Named credential fields: `--field NAME=VALUE` for the plain ones, and the secret (from a
/// file or standard input) for the type's secret field.
async fn field_credentials(
    client: &ConnectorClient,
    connector: &pb::Connector,
    args: &ReauthorizeArgs,
) -> Result<pb::Credentials, Failure> {
    let connector_type = client
        .get_connector_type(pb::GetConnectorTypeRequest {
            name: connector.connector_type.clone(),
        })
        .await
        .about(&connector.connector_type)?;
    let mut values = std::collections::HashMap::new();
    for field in &args.fields {
        let Some((name, value)) = field.split_once('=') else {
            return Err(Failure::Usage(format!(
                "--field {field}: expected NAME=VALUE"
            )));
        };
        values.insert(name.to_owned(), value.to_owned());
    }
    if let Some(secret) = secret::read(&args.key, "secret", Missing::Skip)? {
        let Some(field) = connector_type.credential_fields.iter().find(|f| f.secret) else {
            return Err(Failure::Usage(format!(
                "{} has no secret field",
                connector.connector_type
            )));
        };
        values.insert(field.name.clone(), secret);
    }
    Ok(pb::Credentials {
        kind: Some(pb::credentials::Kind::Fields(pb::CredentialFields {
            values,
        })),
    })
}

async fn token(
    client: &ConnectorClient,
    settings: &Settings,
    connector: &str,
    json: bool,
) -> Result<(), Failure> {
    let name = settings.connector_name(connector)?;
    let token = client
        .get_access_token(pb::GetAccessTokenRequest { name: name.clone() })
        .await
        .about(&name)?;
    let on_terminal = std::io::stdout().is_terminal();
    if on_terminal {
        eprintln!(
            "warning: a live credential for {name} follows; it grants access to the customer's data until {}",
            token
                .expire_time
                .map(|time| time.to_string())
                .unwrap_or_else(|| "it expires".to_owned())
        );
    }
    // Printing the short-lived credential is what this command exists for (the one secret the
    // GetAccessToken RPC returns); it goes to stdout only, for a pipe or a file, with the
    // warning above when a person is looking at it. Stored secrets are never printed.
    if json {
        println!("{}", render::pretty(&render::token_json(&token)));
    } else if let Some(aws) = &token.aws_session_credentials {
        println!("AWS_ACCESS_KEY_ID={}", aws.access_key_id);
        println!("AWS_SECRET_ACCESS_KEY={}", aws.secret_access_key);
        println!("AWS_SESSION_TOKEN={}", token.access_token);
    } else {
        println!("{}", token.access_token);
    }
    if on_terminal && !json && !token.resource_url.is_empty() {
        eprintln!("for {}", token.resource_url);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_named_as_people_write_them() {
        for (written, expected) in [
            ("SharePoint Online", pb::MicrosoftService::SharepointOnline),
            ("sharepoint-online", pb::MicrosoftService::SharepointOnline),
            (
                "MICROSOFT_SERVICE_SHAREPOINT_ONLINE",
                pb::MicrosoftService::SharepointOnline,
            ),
            (
                "OneDrive for Business (user)",
                pb::MicrosoftService::OnedriveForBusinessUser,
            ),
        ] {
            assert_eq!(microsoft_service(written).unwrap(), expected, "{written}");
        }
        assert!(microsoft_service("Dropbox").is_err());
        assert!(microsoft_service("unspecified").is_err());
    }
}
