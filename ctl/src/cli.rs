//! The command line: connection settings shared by every command, and one subcommand per
//! operator task. Secrets (the API key, account keys) have no argument of their own on purpose:
//! a command line is visible to every user of the machine in `ps`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::help;

/// Operate Connector Service: connectors, their authorizations, events and API keys.
#[derive(Debug, Parser)]
#[command(name = "connectorctl", version, after_help = help::TOOL)]
pub(crate) struct Cli {
    /// Where to connect and with which key.
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Connection settings; each falls back to the environment, then the config file. Every command
/// takes them; under their own heading, so a command's `--help` shows its own options first.
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection options (every command)")]
pub(crate) struct ConnectionArgs {
    /// Config file (TOML: endpoint, api_key_file, account, ca_cert, client_cert, client_key)
    /// [default: $XDG_CONFIG_HOME/connectorctl/config.toml]
    #[arg(long, global = true, env = "CONNECTORCTL_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Server endpoint, for example https://connectors.internal:50051
    /// [default: http://127.0.0.1:50051]
    #[arg(long, global = true, env = "CONNECTORCTL_ENDPOINT", value_name = "URL")]
    pub(crate) endpoint: Option<String>,
    /// File holding the API key (or the key itself in CONNECTORCTL_API_KEY, or a file in
    /// CONNECTORCTL_API_KEY_FILE)
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) api_key_file: Option<PathBuf>,
    /// CA certificate (PEM) to verify an https:// server with, instead of the system's roots
    #[arg(long, global = true, env = "CONNECTORCTL_CA_CERT", value_name = "FILE")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for a server that requires mutual TLS
    #[arg(
        long,
        global = true,
        env = "CONNECTORCTL_CLIENT_CERT",
        value_name = "FILE"
    )]
    pub(crate) client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert
    #[arg(
        long,
        global = true,
        env = "CONNECTORCTL_CLIENT_KEY",
        value_name = "FILE"
    )]
    pub(crate) client_key: Option<PathBuf>,
    /// Customer account for commands that take one (and for bare connector ids)
    #[arg(
        long,
        global = true,
        env = "CONNECTORCTL_ACCOUNT",
        value_name = "ACCOUNT"
    )]
    pub(crate) account: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List the connector types the service offers
    #[command(after_help = help::TYPES)]
    Types {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Name the connector type that serves a Microsoft service (for example "SharePoint Online")
    #[command(after_help = help::RESOLVE)]
    Resolve {
        /// The service: "SharePoint Online", "OneDrive consumer", "Azure Blob Storage", …
        service: String,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// List an account's connectors (every page)
    #[command(after_help = help::LIST)]
    List {
        /// Filter, for example 'state = DEAUTHORIZED' or
        /// 'connector_type = "connectorTypes/azure-blob-storage"'
        #[arg(long)]
        filter: Option<String>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show a connector
    #[command(after_help = help::GET)]
    Get {
        /// accounts/ACCOUNT/connectors/ID, or an ID with --account
        connector: String,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Create a connector of a credential type (sftp, webdav, amazon-s3, …) from its fields
    Create(CreateArgs),
    /// Link an OAuth 2.0 connector: print the authorization URL and wait for the link
    #[command(after_help = help::AUTHORIZE)]
    Authorize(AuthorizeArgs),
    /// Reauthorize a connector: with new credentials, or through the browser for OAuth 2.0
    #[command(after_help = help::REAUTHORIZE)]
    Reauthorize(ReauthorizeArgs),
    /// Delete a connector for good (after a confirmation on the terminal, or --yes)
    #[command(after_help = help::DELETE)]
    Delete {
        /// accounts/ACCOUNT/connectors/ID, or an ID with --account
        connector: String,
        /// Do not ask: delete
        #[arg(long, short)]
        yes: bool,
    },
    /// List an account's connector events; --follow keeps watching
    #[command(after_help = help::EVENTS)]
    Events {
        /// Only events after this cursor
        #[arg(long, default_value_t = 0, value_name = "CURSOR")]
        after: i64,
        /// Keep watching and print each new event as it happens
        #[arg(long)]
        follow: bool,
        /// Print JSON lines instead of text
        #[arg(long)]
        json: bool,
    },
    /// Print a live access credential for a connector (a SAS, a bearer token, AWS session keys)
    #[command(after_help = help::TOKEN)]
    Token {
        /// accounts/ACCOUNT/connectors/ID, or an ID with --account
        connector: String,
        /// Print the whole response as JSON
        #[arg(long)]
        json: bool,
    },
    /// API keys for the server's configuration
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// `create TYPE`: any credential type, its fields named as the catalogue lists them; or
/// `create azure`, Azure's own shorthand.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = help::CREATE
)]
pub(crate) struct CreateArgs {
    /// Azure's shorthand.
    #[command(subcommand)]
    pub(crate) shorthand: Option<CreateCommand>,
    /// The type and its fields.
    #[command(flatten)]
    pub(crate) fields: CreateFieldsArgs,
}

/// `create TYPE`.
#[derive(Debug, Args)]
pub(crate) struct CreateFieldsArgs {
    /// A credential connector type: sftp, webdav, amazon-s3, … (or connectorTypes/ID);
    /// `connectorctl types --json` lists them with their fields
    #[arg(required = true, value_name = "TYPE")]
    pub(crate) connector_type: Option<String>,
    /// Display name [default: the value of the field that names the account, if the type has one]
    #[arg(long)]
    pub(crate) display_name: Option<String>,
    /// A credential field that is not secret, as NAME=VALUE (repeatable)
    #[arg(long = "field", value_name = "NAME=VALUE")]
    pub(crate) fields: Vec<String>,
    /// A secret field read from a file, as NAME=FILE (repeatable)
    #[arg(long = "secret-file", value_name = "NAME=FILE")]
    pub(crate) secret_files: Vec<String>,
    /// The secret field read from standard input (one)
    #[arg(long, value_name = "NAME")]
    pub(crate) secret_stdin: Option<String>,
    /// Print only the new connector's name
    #[arg(long, short, conflicts_with = "json")]
    pub(crate) quiet: bool,
    /// Print JSON instead of a table
    #[arg(long)]
    pub(crate) json: bool,
}

/// `create` subcommands: Azure's shorthand.
#[derive(Debug, Subcommand)]
pub(crate) enum CreateCommand {
    /// An Azure Blob Storage connector from a storage account name and key
    #[command(after_help = help::CREATE_AZURE)]
    Azure(CreateAzureArgs),
}

/// `create azure`.
#[derive(Debug, Args)]
pub(crate) struct CreateAzureArgs {
    /// The storage account's name
    #[arg(long)]
    pub(crate) account_name: String,
    /// Display name [default: the storage account's name]
    #[arg(long)]
    pub(crate) display_name: Option<String>,
    /// Where the account key is read from.
    #[command(flatten)]
    pub(crate) key: KeySource,
    /// Print only the new connector's name
    #[arg(long, short, conflicts_with = "json")]
    pub(crate) quiet: bool,
    /// Print JSON instead of a table
    #[arg(long)]
    pub(crate) json: bool,
}

/// Where a secret (an account key, a password) is read from: never the command line.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub(crate) struct KeySource {
    /// Read the key from this file
    #[arg(long, value_name = "FILE")]
    pub(crate) key_file: Option<PathBuf>,
    /// Read the key from standard input; on a terminal it is asked for and not shown as you
    /// type (as it is when neither option is given)
    #[arg(long)]
    pub(crate) key_stdin: bool,
}

/// How the browser's part of an OAuth 2.0 authorization ends.
#[derive(Debug, Args)]
pub(crate) struct BrowserArgs {
    /// Open the authorization URL with xdg-open
    #[arg(long)]
    pub(crate) open: bool,
    /// The address the browser ended on after signing in (else it is asked for on standard
    /// input, while the event log is watched for a link the service completed itself)
    #[arg(long, value_name = "URL")]
    pub(crate) complete_with_url: Option<String>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub(crate) json: bool,
}

/// `authorize`.
#[derive(Debug, Args)]
pub(crate) struct AuthorizeArgs {
    /// An OAuth 2.0 connector type: office-365, onedrive-consumer, … (or connectorTypes/ID)
    pub(crate) connector_type: String,
    /// Display name [default: the label of the account the user signs in with]
    #[arg(long)]
    pub(crate) display_name: Option<String>,
    /// How the browser's part ends.
    #[command(flatten)]
    pub(crate) browser: BrowserArgs,
}

/// `reauthorize`.
#[derive(Debug, Args)]
pub(crate) struct ReauthorizeArgs {
    /// accounts/ACCOUNT/connectors/ID, or an ID with --account
    pub(crate) connector: String,
    /// The new account key or password, for a credential connector.
    #[command(flatten)]
    pub(crate) key: KeySource,
    /// Azure: the storage account's name [default: the connector's]
    #[arg(long)]
    pub(crate) account_name: Option<String>,
    /// A credential field that is not secret, as NAME=VALUE (repeatable)
    #[arg(long = "field", value_name = "NAME=VALUE")]
    pub(crate) fields: Vec<String>,
    /// How the browser's part ends, for an OAuth 2.0 connector.
    #[command(flatten)]
    pub(crate) browser: BrowserArgs,
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate an API key; print it once, then its [[api_keys]] entry for the server's config
    #[command(after_help = help::KEYS_NEW)]
    New(NewKeyArgs),
}

/// `keys new`.
#[derive(Debug, Args)]
pub(crate) struct NewKeyArgs {
    /// The key's id (named in the server's logs)
    #[arg(long)]
    pub(crate) id: String,
    /// Accounts the key may use, comma-separated [default: every account]
    #[arg(long, value_delimiter = ',')]
    pub(crate) accounts: Vec<String>,
    /// Capabilities, comma-separated [default: read,manage,tokens]
    #[arg(long, value_delimiter = ',', value_parser = ["read", "manage", "tokens", "reveal"])]
    pub(crate) capabilities: Vec<String>,
    /// Write the key to this new file (readable by you only) instead of printing it
    #[arg(long, value_name = "FILE")]
    pub(crate) key_out: Option<PathBuf>,
}
