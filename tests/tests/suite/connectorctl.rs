//! `connectorctl`, the operators' command line, run as the built binary against a real server
//! (in-process on `127.0.0.1:0`, with Azurite and the identity emulator): what it prints, the
//! exit codes it promises, its confirmations and spinner on a real terminal (tmux), and the
//! README's CLI session as written.

use std::{
    path::{Path, PathBuf},
    process::{Output, Stdio},
    time::{Duration, Instant},
};

use chrono::Duration as Days;
use connector_client::pb;
use connector_server::access::{ApiKey, Scope};
use connector_tests::{
    ADMIN_KEY, Azurite, Backend, ConfigHook, OAuthWorld, ServerOptions, TestServer, WebDavServer,
    azure_create, free_port,
    readme::{FreshShell, printed_path, root_leftovers, run_readme_block},
    unique_account, workspace_binary,
};
use identity_emulator::fixtures;
use sha2::{Digest as _, Sha256};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    process::Command,
};
use tonic::Code;

/// Exit codes documented in `connectorctl --help`.
const EXIT_USAGE: i32 = 2;
const EXIT_NOT_FOUND: i32 = 3;
const EXIT_ACCESS: i32 = 4;
const EXIT_DEAUTHORIZED: i32 = 5;
const EXIT_INVALID: i32 = 6;
const EXIT_RETRYABLE: i32 = 7;

/// `connectorctl` set up for one server and one customer account, through the environment the
/// way an operator would set it, with no config file of the machine's user in the way.
struct Ctl {
    endpoint: String,
    account: String,
    home: tempfile::TempDir,
}

impl Ctl {
    fn new(server: &TestServer) -> Ctl {
        Ctl {
            endpoint: server.endpoint(),
            account: unique_account(),
            home: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(workspace_binary("connectorctl"));
        command.args(args).kill_on_drop(true);
        for (name, _) in std::env::vars() {
            if name.starts_with("CONNECTORCTL_") {
                command.env_remove(name);
            }
        }
        command
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path())
            .env("CONNECTORCTL_ENDPOINT", &self.endpoint)
            .env("CONNECTORCTL_API_KEY", ADMIN_KEY)
            .env("CONNECTORCTL_ACCOUNT", &self.account);
        command
    }

    /// Runs to the end with `stdin` as standard input.
    async fn run_with_input(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run connectorctl");
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(stdin.as_bytes())
            .await
            .expect("write stdin");
        drop(input);
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("connectorctl finishes within 60 s")
            .expect("connectorctl output")
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.run_with_input(args, "").await
    }

    /// Runs and asserts success; returns standard output.
    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(
            output.status.success(),
            "connectorctl {args:?} failed: {}",
            text(&output.stderr)
        );
        text(&output.stdout)
    }

    /// Creates an Azure connector for storage account `i` with the key on standard input;
    /// returns its resource name.
    async fn create_azure(&self, i: usize, display_name: &str) -> String {
        let storage = Azurite::shared().account(i);
        let output = self
            .run_with_input(
                &[
                    "create",
                    "azure",
                    "--account-name",
                    &storage.name,
                    "--display-name",
                    display_name,
                    "--key-stdin",
                    "--quiet",
                ],
                &format!("{}\n", storage.key1),
            )
            .await;
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout).trim().to_owned()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {stderr}",
        text(&output.stdout)
    );
    stderr
}

/// `table`'s first line is a header with `columns` in order, and each later line has a cell
/// starting exactly where each column's heading starts (an empty last cell may end the line
/// early).
#[track_caller]
fn assert_columns_line_up(table: &str, columns: &[&str]) {
    let mut lines = table.lines();
    let header = lines.next().expect("a header");
    let starts: Vec<usize> = columns
        .iter()
        .map(|column| {
            header
                .find(column)
                .unwrap_or_else(|| panic!("no {column} in the header:\n{table}"))
        })
        .collect();
    assert_eq!(starts[0], 0, "{table}");
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "{table}");
    for row in lines {
        let row: Vec<char> = row.chars().collect();
        for (column, &start) in columns.iter().zip(&starts).skip(1) {
            if start >= row.len() && column == columns.last().unwrap() {
                continue;
            }
            assert!(
                row.get(start - 1) == Some(&' ') && row.get(start).is_some_and(|c| *c != ' '),
                "{column} does not line up in:\n{table}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_and_resolve_name_the_connector_types() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ctl = Ctl::new(&server);

    let table = ctl.ok(&["types"]).await;
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("AUTH METHOD"),
        "{table}"
    );
    assert!(
        table.contains("azure-blob-storage") && table.contains("ACCOUNT_KEY"),
        "{table}"
    );
    assert!(table.contains("office-365") && table.contains("OAUTH2_ADMIN_CONSENT"));

    let json: serde_json::Value =
        serde_json::from_str(&ctl.ok(&["types", "--json"]).await).expect("types --json is JSON");
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"connectorTypes/onedrive-consumer"),
        "{names:?}"
    );
    // What the catalogue says about a type reaches scripts too.
    let azure = json
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "connectorTypes/azure-blob-storage")
        .expect("azure is listed");
    assert_eq!(azure["configured"], true, "{azure}");
    assert_eq!(azure["deletion"]["revokes_access"], false, "{azure}");
    assert!(
        azure["deletion"]["check"]
            .as_str()
            .unwrap()
            .contains("Rotate"),
        "{azure}"
    );
    assert_eq!(
        azure["credential_fields"][0]["identifies_account"], true,
        "{azure}"
    );

    let resolved = ctl.ok(&["resolve", "SharePoint Online"]).await;
    assert!(resolved.contains("office-365"), "{resolved}");
    let unknown = ctl.run(&["resolve", "Dropbox Paper"]).await;
    assert!(assert_exit(&unknown, EXIT_USAGE).contains("SharePoint Online"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_azure_connector_is_created_listed_used_and_deleted() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ctl = Ctl::new(&server);
    let storage = Azurite::shared().account(1);
    let name = ctl.create_azure(1, "Finance share").await;
    assert!(
        name.starts_with(&format!("accounts/{}/connectors/", ctl.account)),
        "{name}"
    );
    let id = name.rsplit('/').next().unwrap();

    let table = ctl.ok(&["list"]).await;
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for column in [
        "ID",
        "TYPE",
        "DISPLAY NAME",
        "STATE",
        "EXTERNAL ACCOUNT",
        "LAST TRANSFER",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = lines.next().expect("one connector");
    for cell in [
        id,
        "azure-blob-storage",
        "Finance share",
        "AUTHORIZED",
        "never",
    ] {
        assert!(row.contains(cell), "{row}");
    }
    assert!(row.contains(&storage.name), "{row}");

    let listed: serde_json::Value =
        serde_json::from_str(&ctl.ok(&["list", "--json"]).await).expect("list --json is JSON");
    assert_eq!(listed[0]["name"], name.as_str());
    assert_eq!(listed[0]["state"], "STATE_AUTHORIZED");
    assert_eq!(listed[0]["display_name"], "Finance share");
    // Deterministic: the same answer twice is the same text.
    assert_eq!(
        ctl.ok(&["get", &name, "--json"]).await,
        ctl.ok(&["get", id, "--json"]).await
    );
    let details = ctl.ok(&["get", id]).await;
    assert!(
        details.contains(&name) && details.contains("Finance share"),
        "{details}"
    );
    let filtered = ctl.ok(&["list", "--filter", "state = DEAUTHORIZED"]).await;
    assert_eq!(filtered.lines().count(), 1, "only the header: {filtered}");

    // The SAS printed works at the storage service. (No terminal: no warning.)
    let token = ctl.run(&["token", id]).await;
    assert!(token.status.success(), "{}", text(&token.stderr));
    let sas = text(&token.stdout).trim().to_owned();
    assert!(sas.contains("sig="), "{sas}");
    assert!(text(&token.stderr).is_empty());
    assert_eq!(Azurite::shared().use_sas(&storage.name, &sas).await, 201);
    let token_json: serde_json::Value =
        serde_json::from_str(&ctl.ok(&["token", id, "--json"]).await).unwrap();
    assert_eq!(token_json["token_type"], "TOKEN_TYPE_AZURE_SAS");

    let events = ctl.ok(&["events"]).await;
    assert!(
        events
            .lines()
            .any(|line| line.contains("AUTHORIZED") && line.contains(&name)),
        "{events}"
    );
    let event: serde_json::Value =
        serde_json::from_str(ctl.ok(&["events", "--json"]).await.lines().next().unwrap()).unwrap();
    assert_eq!(event["kind"], "KIND_AUTHORIZED");
    let none = ctl.ok(&["events", "--after", "1000000"]).await;
    assert_eq!(none.lines().count(), 1, "only the header: {none}");

    // A second connector for the same storage account is a conflict (8).
    let again = ctl
        .run_with_input(
            &[
                "create",
                "azure",
                "--account-name",
                &storage.name,
                "--key-stdin",
            ],
            &storage.key1,
        )
        .await;
    assert!(assert_exit(&again, 8).contains(&name));

    let deleted = ctl.ok(&["delete", id, "--yes"]).await;
    assert!(deleted.contains(&name), "{deleted}");

    // The event log as a table: a header, and every row's cells under their column's heading.
    let events = ctl.ok(&["events"]).await;
    assert_columns_line_up(
        &events,
        &["CURSOR", "TIME", "KIND", "CONNECTOR", "TYPE", "DETAIL"],
    );
    for kind in ["AUTHORIZED", "DELETED"] {
        assert!(
            events.lines().any(|line| line.contains(kind)
                && line.contains(&name)
                && line.contains("azure-blob-storage")),
            "{events}"
        );
    }
    let missing = ctl.run(&["get", id]).await;
    let said = assert_exit(&missing, EXIT_NOT_FOUND);
    assert!(said.contains(&name) && said.contains("not found"), "{said}");
    assert_exit(&ctl.run(&["token", id]).await, EXIT_NOT_FOUND);
}

/// `create TYPE` links any credential type from the fields the catalogue lists: here a WebDAV
/// collection at a real WebDAV server, the password read from standard input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_links_a_credential_type_from_its_catalogue_fields() {
    let dav = WebDavServer::start(&[("alice", "s3cret"), ("bob", "b0b")]);
    let mut options = ServerOptions::new(Backend::Sqlite);
    options.configure = Some(ConfigHook::new(|config| {
        config.allow_private_endpoints = true;
    }));
    let server = TestServer::start_with(options).await;
    let ctl = Ctl::new(&server);
    let base_url = format!("base_url={}", dav.url());
    let output = ctl
        .run_with_input(
            &[
                "create",
                "webdav",
                "--display-name",
                "File server",
                "--field",
                &base_url,
                "--field",
                "username=alice",
                "--secret-stdin",
                "password",
                "--quiet",
            ],
            "s3cret\n",
        )
        .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let name = text(&output.stdout).trim().to_owned();
    assert!(
        name.starts_with(&format!("accounts/{}/connectors/", ctl.account)),
        "{name}"
    );
    let created = server
        .client()
        .await
        .get_connector(pb::GetConnectorRequest { name: name.clone() })
        .await
        .unwrap();
    assert_eq!(created.connector_type, "connectorTypes/webdav");
    assert_eq!(created.display_name, "File server");
    assert_eq!(created.state(), pb::connector::State::Authorized);
    assert_eq!(
        created.external_account.unwrap().id,
        format!("http://alice@127.0.0.1:{}/", dav.port)
    );

    // Bob's wrong password, from a file, is the server's refusal (6), with nothing created.
    let wrong = ctl.home.path().join("password");
    std::fs::write(&wrong, "not-it\n").unwrap();
    let refused = ctl
        .run(&[
            "create",
            "webdav",
            "--display-name",
            "Again",
            "--field",
            &base_url,
            "--field",
            "username=bob",
            "--secret-file",
            &format!("password={}", wrong.display()),
        ])
        .await;
    let said = assert_exit(&refused, EXIT_INVALID);
    assert!(!said.contains("not-it"), "{said}");
    let listed = ctl.ok(&["list"]).await;
    assert_eq!(listed.lines().count(), 2, "the header and one: {listed}");
}

/// `create TYPE` checks the fields against the catalogue before the call: a field the type does
/// not have (listing the ones it has), a required one left out, a secret on the command line,
/// and an OAuth 2.0 type, which is linked with `authorize`. Nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_refuses_fields_the_type_does_not_take_and_oauth_types() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ctl = Ctl::new(&server);
    let base = [
        "create",
        "webdav",
        "--display-name",
        "Files",
        "--field",
        "base_url=http://dav.example/",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        base.iter().chain(extra).copied().collect()
    };

    let unknown = ctl
        .run_with_input(
            &with(&[
                "--field",
                "username=alice",
                "--field",
                "colour=red",
                "--secret-stdin",
                "password",
            ]),
            "s3cret\n",
        )
        .await;
    let said = assert_exit(&unknown, EXIT_USAGE);
    for part in [
        "webdav has no field `colour`",
        "base_url (required)",
        "username (required)",
        "password (required, secret)",
    ] {
        assert!(said.contains(part), "{part}: {said}");
    }

    let missing = ctl
        .run_with_input(&with(&["--secret-stdin", "password"]), "s3cret\n")
        .await;
    let said = assert_exit(&missing, EXIT_USAGE);
    assert!(
        said.contains("webdav needs username (Username: --field username=VALUE)"),
        "{said}"
    );
    // No terminal to ask on: the secret's missing too, and how to give it is said.
    let no_secret = ctl.run(&with(&["--field", "username=alice"])).await;
    let said = assert_exit(&no_secret, EXIT_USAGE);
    assert!(said.contains("--secret-stdin password"), "{said}");

    let on_argv = ctl
        .run(&with(&[
            "--field",
            "username=alice",
            "--field",
            "password=s3cret",
        ]))
        .await;
    let said = assert_exit(&on_argv, EXIT_USAGE);
    assert!(
        said.contains("password is secret and is not taken on the command line"),
        "{said}"
    );
    assert!(!said.contains("s3cret"), "{said}");

    let oauth = ctl
        .run(&["create", "onedrive-consumer", "--display-name", "Files"])
        .await;
    let said = assert_exit(&oauth, EXIT_USAGE);
    assert!(
        said.contains("is linked by signing in at Microsoft")
            && said.contains("connectorctl authorize onedrive-consumer"),
        "{said}"
    );

    let unknown_type = ctl.run(&["create", "gopher", "--display-name", "X"]).await;
    assert_exit(&unknown_type, EXIT_NOT_FOUND);

    let listed = ctl.ok(&["list"]).await;
    assert_eq!(listed.lines().count(), 1, "only the header: {listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_without_yes_and_without_a_terminal_refuses() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ctl = Ctl::new(&server);
    let name = ctl.create_azure(2, "Keep me").await;

    let refused = ctl.run_with_input(&["delete", &name], "y\n").await;
    let said = assert_exit(&refused, EXIT_USAGE);
    assert!(said.contains("--yes"), "{said}");
    server
        .client()
        .await
        .get_connector(pb::GetConnectorRequest { name })
        .await
        .expect("still there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deauthorized_connector_exits_5_with_the_way_back() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ctl = Ctl::new(&server);
    let name = ctl.create_azure(3, "Idle").await;
    server.clock.advance(Days::days(91));

    let refused = ctl.run(&["token", &name]).await;
    let said = assert_exit(&refused, EXIT_DEAUTHORIZED);
    assert!(
        said.contains(&format!(
            "connector {name} is deauthorized (reason: inactivity)"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!("connectorctl reauthorize {name}")),
        "{said}"
    );

    // The way back works: a new key for the same storage account, and the token flows again.
    let storage = Azurite::shared().account(3);
    let reauthorized = ctl
        .run_with_input(&["reauthorize", &name, "--key-stdin"], &storage.key1)
        .await;
    assert!(
        reauthorized.status.success(),
        "{}",
        text(&reauthorized.stderr)
    );
    assert!(ctl.ok(&["token", &name]).await.contains("sig="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_new_prints_a_key_and_the_entry_that_lets_it_in() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(workspace_binary("connectorctl"))
        .args([
            "keys",
            "new",
            "--id",
            "ops",
            "--accounts",
            "a,b",
            "--capabilities",
            "read,tokens",
        ])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let printed = text(&output.stdout);
    let (key, snippet) = printed.split_once('\n').unwrap();
    assert!(key.starts_with("csk_") && key.len() > 40, "{key}");
    let config: toml::Table = toml::from_str(snippet).expect("the entry is TOML");
    let entry = &config["api_keys"].as_array().unwrap()[0];
    assert_eq!(entry["id"].as_str(), Some("ops"));
    assert_eq!(
        entry["sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(key.as_bytes()))
    );
    assert_eq!(entry["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(entry["capabilities"].as_array().unwrap().len(), 2);

    // --key-out: the key in a private file, the entry alone on stdout; a server given the
    // entry accepts the key.
    let key_file = dir.path().join("ops.key");
    let output = Command::new(workspace_binary("connectorctl"))
        .args(["keys", "new", "--id", "ops", "--key-out"])
        .arg(&key_file)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let config: toml::Table = toml::from_str(&text(&output.stdout)).unwrap();
    let sha256 = config["api_keys"].as_array().unwrap()[0]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let mut options = ServerOptions::new(Backend::Sqlite);
    options.configure = Some(ConfigHook::new(move |config| {
        config.api_keys.push(ApiKey {
            id: "ops".to_owned(),
            sha256: hex::decode(&sha256).unwrap().try_into().unwrap(),
            scope: Scope::AllAccounts,
            capabilities: ApiKey::all_capabilities(),
        });
    }));
    let server = TestServer::start_with(options).await;
    let ctl = Ctl::new(&server);
    let mut with_file = ctl.command(&["list"]);
    with_file
        .env_remove("CONNECTORCTL_API_KEY")
        .env("CONNECTORCTL_API_KEY_FILE", &key_file);
    let listed = with_file.output().await.unwrap();
    assert!(listed.status.success(), "{}", text(&listed.stderr));

    // A key the server does not know: 4, in plain words.
    let mut wrong = ctl.command(&["list"]);
    wrong.env("CONNECTORCTL_API_KEY", "csk_not-a-key");
    let said = assert_exit(&wrong.output().await.unwrap(), EXIT_ACCESS);
    assert!(said.contains("the API key was refused"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_exits_7_and_an_endpoint_without_a_scheme_works() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ctl = Ctl::new(&server);

    // Nothing listens on a port just handed out: retryable (7), saying where and why.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let mut unreachable = ctl.command(&["types"]);
    unreachable.env("CONNECTORCTL_ENDPOINT", &nowhere);
    let said = assert_exit(&unreachable.output().await.unwrap(), EXIT_RETRYABLE);
    assert!(
        said.contains(&format!("cannot reach the server at {nowhere}"))
            && said.contains("Connection refused"),
        "{said}"
    );

    // grpcurl's habit, host:port without a scheme, in the environment and as a flag: plaintext
    // on loopback.
    let bare = ctl.endpoint.trim_start_matches("http://").to_owned();
    let mut from_env = ctl.command(&["types"]);
    from_env.env("CONNECTORCTL_ENDPOINT", &bare);
    let output = from_env.output().await.unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("azure-blob-storage"));
    let listed = ctl.ok(&["--endpoint", &bare, "list"]).await;
    assert!(listed.starts_with("ID"), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commands_help_shows_its_own_options_then_the_connection_options_and_examples() {
    for command in [
        &["types"][..],
        &["resolve"],
        &["list"],
        &["get"],
        &["create"],
        &["create", "azure"],
        &["authorize"],
        &["reauthorize"],
        &["delete"],
        &["events"],
        &["token"],
        &["keys", "new"],
    ] {
        let output = Command::new(workspace_binary("connectorctl"))
            .args(command)
            .arg("--help")
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{command:?}");
        let help = text(&output.stdout);
        let (own, connection) = help
            .split_once("Connection options (every command):")
            .unwrap_or_else(|| panic!("{command:?}: no connection heading:\n{help}"));
        assert!(
            own.contains("Options:") && own.contains("--help"),
            "{command:?}:\n{help}"
        );
        for global in [
            "--endpoint <URL>",
            "--api-key-file <FILE>",
            "--account <ACCOUNT>",
            "--config <FILE>",
        ] {
            assert!(
                !own.contains(global) && connection.contains(global),
                "{command:?}: {global} is not under the connection heading:\n{help}"
            );
        }
        let examples = format!("Examples:\n  connectorctl {}", command.join(" "));
        assert!(
            help.contains(&examples),
            "{command:?}: no examples:\n{help}"
        );
    }
    let help = Command::new(workspace_binary("connectorctl"))
        .args(["create", "azure", "--help"])
        .output()
        .await
        .unwrap();
    let own = text(&help.stdout);
    let own = own.split("Connection options").next().unwrap();
    for option in [
        "--account-name",
        "--display-name",
        "--key-file",
        "--key-stdin",
    ] {
        assert!(own.contains(option), "{own}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_file_is_read_and_flags_win() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ctl = Ctl::new(&server);
    let name = ctl.create_azure(4, "From config").await;
    let dir = ctl.home.path().join("connectorctl");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("admin.key"), format!("{ADMIN_KEY}\n")).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "endpoint = \"{}\"\napi_key_file = \"admin.key\"\naccount = \"{}\"\n",
            ctl.endpoint, ctl.account
        ),
    )
    .unwrap();
    let mut from_file = ctl.command(&["list"]);
    from_file
        .env_remove("CONNECTORCTL_ENDPOINT")
        .env_remove("CONNECTORCTL_API_KEY")
        .env_remove("CONNECTORCTL_ACCOUNT");
    let listed = from_file.output().await.unwrap();
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert!(text(&listed.stdout).contains(name.rsplit('/').next().unwrap()));

    // A flag beats the environment: another account has no connectors.
    let other = ctl.ok(&["list", "--account", &unique_account()]).await;
    assert_eq!(other.lines().count(), 1, "{other}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_links_an_oauth_connector_with_the_address_the_browser_ended_on() {
    let world = OAuthWorld::start(Backend::Sqlite).await;
    let ctl = Ctl::new(&world.server);
    let mut child = ctl
        .command(&[
            "authorize",
            "onedrive-consumer",
            "--display-name",
            "Alice's files",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let line = stdout
                .next_line()
                .await
                .unwrap()
                .expect("the URL is printed");
            if line.starts_with("http") {
                return line;
            }
        }
    })
    .await
    .expect("the URL within 30 s");

    // The user signs in; the browser lands on the service's callback page, whose address the
    // operator pastes.
    let landed = world
        .emulator
        .complete_authorization(&url, fixtures::ALICE_UPN)
        .expect("signed in");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{landed}\n").as_bytes())
        .await
        .unwrap();
    let mut rest = String::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
        .await
        .unwrap()
    {
        rest.push_str(&line);
        rest.push('\n');
    }
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains("Alice's files"), "{rest}");
    assert!(rest.contains(fixtures::ALICE_UPN), "{rest}");
    assert!(rest.contains("onedrive-consumer"), "{rest}");
    let events = ctl.ok(&["events"]).await;
    assert!(events.contains("AUTHORIZED"), "{events}");
}

// ---------------------------------------------------------------------------------------------
// On a terminal (tmux)

/// A private tmux server, killed when dropped.
struct Tmux {
    binary: String,
    socket: String,
}

impl Tmux {
    fn start() -> Tmux {
        Tmux {
            binary: std::env::var("TMUX_BIN").unwrap_or_else(|_| "tmux".to_owned()),
            socket: format!("connectorctl-{}", unique_account()),
        }
    }

    async fn tmux(&self, args: &[&str]) -> Output {
        Command::new(&self.binary)
            .args(["-L", &self.socket])
            .args(args)
            .env("LANG", "C.UTF-8")
            .env_remove("TMUX")
            .output()
            .await
            .expect("run tmux")
    }

    /// Runs `script` in a new window `name`; the shell stays open afterwards.
    async fn run(&self, name: &str, script: &Path) {
        let command = format!("sh {}; sleep 600", script.display());
        let output = self
            .tmux(&[
                "-u",
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                "200",
                "-y",
                "40",
                &command,
            ])
            .await;
        assert!(output.status.success(), "tmux: {}", text(&output.stderr));
    }

    async fn screen(&self, name: &str) -> String {
        // -J: a line the terminal wrapped comes back whole.
        text(
            &self
                .tmux(&["capture-pane", "-p", "-J", "-t", name])
                .await
                .stdout,
        )
    }

    /// Polls the screen until `done` holds, for up to 30 s; returns it.
    async fn wait_for(&self, name: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen(name).await;
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never got there:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.binary)
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// A shell script running connectorctl with `ctl`'s settings, then printing its exit code.
fn script(ctl: &Ctl, args: &str) -> PathBuf {
    let path = ctl.home.path().join(format!("run-{}.sh", unique_account()));
    let body = format!(
        "export HOME='{home}' XDG_CONFIG_HOME='{home}' LANG=C.UTF-8\n\
         export CONNECTORCTL_ENDPOINT='{endpoint}' CONNECTORCTL_API_KEY='{key}' CONNECTORCTL_ACCOUNT='{account}'\n\
         '{binary}' {args}\necho \"EXIT=$?\"\n",
        home = ctl.home.path().display(),
        endpoint = ctl.endpoint,
        key = ADMIN_KEY,
        account = ctl.account,
        binary = workspace_binary("connectorctl").display(),
    );
    std::fs::write(&path, body).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_delete_asks_and_waiting_shows_a_spinner() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ctl = Ctl::new(&server);
    let name = server
        .client()
        .await
        .create_connector(azure_create(
            &format!("accounts/{}", ctl.account),
            Azurite::shared().account(5),
            "Marketing",
        ))
        .await
        .expect("created")
        .name;
    let tmux = Tmux::start();

    // The spinner while `events --follow` waits, under the event already there.
    tmux.run("follow", &script(&ctl, "events --follow")).await;
    // The watch delivers the backlog shortly after the spinner starts: wait for both.
    let screen = tmux
        .wait_for("follow", |screen| {
            screen.contains("waiting for events") && screen.contains("AUTHORIZED")
        })
        .await;
    assert!(screen.contains(&name), "{screen}");
    // A header, and the rows under it, aligned although the follower never saw them together.
    let table: String = screen
        .lines()
        .skip_while(|line| !line.starts_with("CURSOR"))
        .take_while(|line| line.contains(&name) || line.starts_with("CURSOR"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(table.lines().count(), 2, "{screen}");
    assert_columns_line_up(
        &table,
        &["CURSOR", "TIME", "KIND", "CONNECTOR", "TYPE", "DETAIL"],
    );
    let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    assert!(screen.chars().any(|c| frames.contains(&c)), "{screen}");

    // The confirmation names the connector and says what deleting does for its type (from the
    // catalogue: Azure's key stays valid, nothing is revoked); "y" deletes it.
    tmux.run("delete", &script(&ctl, &format!("delete {name}")))
        .await;
    let screen = tmux
        .wait_for("delete", |screen| screen.contains("[y/N]"))
        .await;
    assert!(
        screen.contains(&format!(
            "Delete connector {name} (Marketing, azure-blob-storage, {})? This is permanent: the stored access key is destroyed, but nothing can be revoked at Azure Blob Storage; the access key stays valid there until it is changed. [y/N]",
            Azurite::shared().account(5).name
        )),
        "{screen}"
    );
    tmux.tmux(&["send-keys", "-t", "delete", "y", "Enter"])
        .await;
    let screen = tmux
        .wait_for("delete", |screen| screen.contains("EXIT="))
        .await;
    assert!(
        screen.contains("EXIT=0") && screen.contains("deleted"),
        "{screen}"
    );
    let gone = server
        .client()
        .await
        .get_connector(pb::GetConnectorRequest { name: name.clone() })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);

    // The follower saw the deletion as it happened, above the spinner.
    tmux.wait_for("follow", |screen| screen.contains("DELETED"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_the_account_key_is_asked_for_and_not_shown() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ctl = Ctl::new(&server);
    let storage = Azurite::shared().account(6);
    let tmux = Tmux::start();

    // Neither --key-file nor --key-stdin: on a terminal, the key is asked for.
    tmux.run(
        "create",
        &script(
            &ctl,
            &format!(
                "create azure --account-name {} --display-name Typed --quiet",
                storage.name
            ),
        ),
    )
    .await;
    tmux.wait_for("create", |screen| {
        screen.contains("Account key (not shown as you type): ")
    })
    .await;
    tmux.tmux(&["send-keys", "-t", "create", "-l", &storage.key1])
        .await;
    tmux.tmux(&["send-keys", "-t", "create", "Enter"]).await;
    let screen = tmux
        .wait_for("create", |screen| screen.contains("EXIT="))
        .await;
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        !screen.contains(&storage.key1),
        "the key showed on the screen:\n{screen}"
    );
    assert!(
        screen.contains(&format!("accounts/{}/connectors/", ctl.account)),
        "{screen}"
    );
    let listed = ctl.ok(&["list"]).await;
    assert!(
        listed.contains("Typed") && listed.contains("AUTHORIZED"),
        "{listed}"
    );
}

/// `create TYPE` on a terminal asks for the type's required secret field, named by its label,
/// without echoing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_create_asks_for_the_secret_field_and_does_not_show_it() {
    let dav = WebDavServer::start(&[("carol", "c4r0l-pw")]);
    let mut options = ServerOptions::new(Backend::Sqlite);
    options.configure = Some(ConfigHook::new(|config| {
        config.allow_private_endpoints = true;
    }));
    let server = TestServer::start_with(options).await;
    let ctl = Ctl::new(&server);
    let tmux = Tmux::start();
    tmux.run(
        "create-dav",
        &script(
            &ctl,
            &format!(
                "create webdav --display-name Typed --field base_url={} --field username=carol --quiet",
                dav.url()
            ),
        ),
    )
    .await;
    tmux.wait_for("create-dav", |screen| {
        screen.contains("Password (not shown as you type): ")
    })
    .await;
    tmux.tmux(&["send-keys", "-t", "create-dav", "-l", "c4r0l-pw"])
        .await;
    tmux.tmux(&["send-keys", "-t", "create-dav", "Enter"]).await;
    let screen = tmux
        .wait_for("create-dav", |screen| screen.contains("EXIT="))
        .await;
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        !screen.contains("c4r0l-pw"),
        "the password showed on the screen:\n{screen}"
    );
    let listed = ctl.ok(&["list"]).await;
    assert!(
        listed.contains("Typed") && listed.contains("AUTHORIZED"),
        "{listed}"
    );
}

// ---------------------------------------------------------------------------------------------
// The README

/// The README's connectorctl session (between its `cli-session` markers), run as written in a
/// fresh shell at the repository root, as a new user runs it (`connector_tests::readme` says
/// what that shell is given: no substitutions, `PATH=/usr/bin:/bin`). The block must build and
/// put on `PATH` what it uses, start on ports of its own, and leave nothing in the repository.
#[test]
fn readme_cli_session_works_as_written() {
    let before = root_leftovers();
    let output = run_readme_block(
        "cli-session",
        FreshShell {
            stop_on_error: true,
            timeout: Duration::from_secs(900),
        },
    );
    let stdout = text(&output.stdout);
    let all = format!("{stdout}\n{}", text(&output.stderr));
    assert!(output.status.success(), "the session failed:\n{all}");
    for expected in [
        "azure-blob-storage",
        "Demo storage",
        "AUTHORIZED",
        "sig=",
        "CURSOR",
        "deleted accounts/demo/connectors/",
    ] {
        assert!(
            all.contains(expected),
            "the session's output lacks `{expected}`:\n{all}"
        );
    }
    assert!(
        !stdout.contains("csk_"),
        "the key went to a file, not the screen:\n{stdout}"
    );
    // Its key, config and data went into a directory of its own, removed at the end.
    let files = printed_path(&stdout, "files in ");
    assert!(!files.exists(), "{} is left behind", files.display());
    assert_eq!(
        root_leftovers(),
        before,
        "files left in the repository root"
    );
}
