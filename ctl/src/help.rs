//! The words `--help` adds after the options: for the tool, where settings come from and the
//! exit codes; for each command, examples to copy. Kept apart from `cli.rs` so the command
//! line's shape reads without the prose.

/// Shown at the end of `connectorctl --help`; the same table as in `main.rs` and the README.
pub(crate) const TOOL: &str = "\
Connection settings: flags, then the environment (CONNECTORCTL_ENDPOINT, CONNECTORCTL_API_KEY
(the key itself), CONNECTORCTL_API_KEY_FILE, CONNECTORCTL_ACCOUNT, CONNECTORCTL_CA_CERT,
CONNECTORCTL_CLIENT_CERT, CONNECTORCTL_CLIENT_KEY), then the config file, then the default
endpoint http://127.0.0.1:50051. An endpoint without a scheme is http:// on loopback
(127.0.0.1:50051) and https:// elsewhere.

Exit codes:
  0  success
  1  anything else: an internal error
  2  usage: bad arguments or settings, a deletion not confirmed
  3  not found
  4  authentication or permission: the API key was refused or may not do this
  5  the connector is deauthorized and needs reauthorization
  6  invalid argument, rejected credentials, failed precondition
  7  unavailable, unreachable or timed out: retry (the server is down or not there yet)
  8  conflict: already exists, etag mismatch, aborted

`connectorctl COMMAND --help` shows a command's options and examples.";

/// `types`.
pub(crate) const TYPES: &str = "\
Examples:
  connectorctl types
  connectorctl types --json";

/// `resolve`.
pub(crate) const RESOLVE: &str = "\
Examples:
  connectorctl resolve \"SharePoint Online\"
  connectorctl resolve onedrive-consumer --json";

/// `list`.
pub(crate) const LIST: &str = "\
Examples:
  connectorctl list --account demo
  connectorctl list --filter 'state = DEAUTHORIZED'
  connectorctl list --filter 'connector_type = \"connectorTypes/azure-blob-storage\"' --json";

/// `get`.
pub(crate) const GET: &str = "\
Examples:
  connectorctl get accounts/demo/connectors/0193e5f0-8f5e-7c3a-9d41-2b6f0c1e4a77
  connectorctl get 0193e5f0-8f5e-7c3a-9d41-2b6f0c1e4a77 --account demo --json";

/// `create`.
pub(crate) const CREATE: &str = "\
Examples:
  connectorctl create webdav --display-name \"Files\" --field base_url=https://dav.example/ \\
      --field username=alice
      (on a terminal: asks for each required secret field, not shown as you type)
  echo \"$PASSWORD\" | connectorctl create sftp --display-name \"Backups\" --field host=sftp.example \\
      --field username=backup --secret-stdin password --quiet
  connectorctl create sftp --display-name \"Backups\" --field host=sftp.example \\
      --field username=backup --secret-file private_key=id_ed25519
  connectorctl create azure --account-name demostore   (Azure's shorthand: create azure --help)

Secret fields are never taken on the command line: --secret-stdin NAME, --secret-file
NAME=FILE, or asked for on a terminal. An OAuth 2.0 type is linked with `connectorctl
authorize` instead.";

/// `create azure`.
pub(crate) const CREATE_AZURE: &str = "\
Examples:
  connectorctl create azure --account-name demostore
      (on a terminal: asks for the key, which is not shown as you type)
  echo \"$KEY\" | connectorctl create azure --account-name demostore --key-stdin --quiet
  connectorctl create azure --account-name demostore --display-name \"Finance\" --key-file key.txt";

/// `authorize`.
pub(crate) const AUTHORIZE: &str = "\
Examples:
  connectorctl authorize onedrive-consumer --display-name \"Alice's files\"
  connectorctl authorize office-365 --open
  connectorctl authorize google-drive --complete-with-url 'https://app.example/done?state=…&code=…'";

/// `reauthorize`.
pub(crate) const REAUTHORIZE: &str = "\
Examples:
  connectorctl reauthorize accounts/demo/connectors/ID
      (OAuth 2.0: prints the URL to sign in again; Azure on a terminal: asks for the new key)
  echo \"$NEW_KEY\" | connectorctl reauthorize ID --account demo --key-stdin
  connectorctl reauthorize ID --field username=alice --key-file password.txt";

/// `delete`.
pub(crate) const DELETE: &str = "\
Examples:
  connectorctl delete accounts/demo/connectors/ID
      (asks first, saying what deleting does for the connector's type)
  connectorctl delete ID --account demo --yes";

/// `events`.
pub(crate) const EVENTS: &str = "\
Examples:
  connectorctl events --account demo
  connectorctl events --follow --after 120
  connectorctl events --json";

/// `token`.
pub(crate) const TOKEN: &str = "\
Examples:
  connectorctl token accounts/demo/connectors/ID
  connectorctl token ID --account demo --json

The credential goes to standard output only (a warning on a terminal): pipe it, or keep it out
of your shell history.";

/// `keys new`.
pub(crate) const KEYS_NEW: &str = "\
Examples:
  connectorctl keys new --id ops --key-out ops.key >> connector.toml
  connectorctl keys new --id worker --accounts demo --capabilities read,tokens,reveal";
