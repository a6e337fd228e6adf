//! Loading configuration files and environment variables.

use std::collections::HashMap;

use secrecy::ExposeSecret as _;

use super::*;
use crate::config::{DEFAULT_AZURE_BLOB_ENDPOINT, redact_password};

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

fn file(content: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), content).unwrap();
    file
}

#[test]
fn provider_endpoints_must_be_https_except_on_loopback() {
    let mut config = Config::new("data");
    config.check_endpoints().expect("the defaults are https");
    config.azure_blob_endpoint = "http://127.0.0.1:10000/{account}".into();
    config.microsoft_login = "http://localhost:8080".into();
    config.microsoft_graph = "http://[::1]:8080".into();
    config
        .check_endpoints()
        .expect("an emulator on this machine");
    config.azure_blob_endpoint = "http://azurite:10000/{account}".into();
    let refused = config
        .check_endpoints()
        .expect_err("plain http over a network");
    assert!(refused.0.contains("azure_blob_endpoint"), "{refused}");
    config.allow_insecure_endpoints = true;
    config.check_endpoints().expect("explicitly allowed");
    config.allow_insecure_endpoints = false;
    config.azure_blob_endpoint = DEFAULT_AZURE_BLOB_ENDPOINT.into();
    config.oauth_apps.insert(
        ConnectorTypeId::OneDriveConsumer,
        OAuthAppConfig {
            client_id: "id".into(),
            client_secret: "secret".to_owned().into(),
            tenant: None,
            scopes: None,
            revocation_url: Some("http://idp.example.com/revoke".into()),
            authorize_url: None,
            token_url: None,
            identity_url: None,
            issuer: None,
        },
    );
    let refused = config.check_endpoints().expect_err("revocation over http");
    assert!(refused.0.contains("revocation_url"), "{refused}");
}

#[test]
fn no_configuration_means_the_embedded_default() {
    let (config, listen) = load(None, env_of(&[])).unwrap();
    assert_eq!(listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(config.data_dir, PathBuf::from("data"));
    assert!(config.database_url.is_none() && config.master_key.is_none());
    assert!(config.api_keys.is_empty());
    assert_eq!(config.azure_blob_endpoint, DEFAULT_AZURE_BLOB_ENDPOINT);
}

#[test]
fn file_settings_and_environment_overrides() {
    let hash = "ab".repeat(32);
    let config_file = file(&format!(
        r#"
        listen = "0.0.0.0:6000"
        database_url = "postgres://u:p@db/connectors"
        azure_blob_endpoint = "http://127.0.0.1:10000/{{account}}"
        sas_lifetime_secs = 600
        [master_key]
        id = "k2"
        key = "AAAA"
        [[previous_master_keys]]
        id = "k1"
        key = "BBBB"
        [[api_keys]]
        id = "all"
        sha256 = "{hash}"
        [[api_keys]]
        id = "star"
        sha256 = "{hash}"
        accounts = ["*"]
        [[api_keys]]
        id = "two"
        sha256 = "{hash}"
        accounts = ["a", "b"]
        "#
    ));
    let (config, listen) = load(
        Some(config_file.path()),
        env_of(&[
            ("CONNECTOR_LISTEN", "127.0.0.1:7000"),
            ("CONNECTOR_MASTER_KEY", "CCCC"),
        ]),
    )
    .unwrap();
    assert_eq!(listen.to_string(), "127.0.0.1:7000", "the environment wins");
    assert_eq!(
        config.database_url.as_deref(),
        Some("postgres://u:p@db/connectors")
    );
    let master = config.master_key.as_ref().unwrap();
    assert_eq!(
        (master.id.as_str(), master.key_base64.expose_secret()),
        ("k2", "CCCC")
    );
    assert_eq!(config.previous_master_keys[0].id, "k1");
    assert_eq!(config.sas_lifetime, Duration::from_secs(600));
    assert_eq!(config.api_keys[0].scope, Scope::AllAccounts);
    assert_eq!(config.api_keys[1].scope, Scope::AllAccounts);
    assert_eq!(
        config.api_keys[2].scope,
        Scope::Accounts(BTreeSet::from(["a".to_owned(), "b".to_owned()]))
    );
    let shown = format!("{config:?}");
    assert!(!shown.contains(":p@") && !shown.contains("CCCC"), "{shown}");
}

#[test]
fn bad_settings_are_refused_without_quoting_secrets() {
    let cases = [
        "sas_lifetime_secs = 7200",
        "azure_blob_endpoint = \"https://example.net\"",
        "[[api_keys]]\nid = \"x\"\nsha256 = \"nothex\"",
        "unknown_setting = 1",
        "return_urls = [\"/relative\"]",
        "public_url = \"javascript:alert(1)\"",
        "[master_key]\nid = \"k\"\nkey = \"TOP-SECRET\" oops",
    ];
    for content in cases {
        let config_file = file(content);
        let error = load(Some(config_file.path()), env_of(&[])).expect_err(content);
        assert!(!error.to_string().contains("TOP-SECRET"), "{error}");
    }
}

#[test]
fn the_readme_example_configuration_loads() {
    let readme = include_str!("../../../../README.md");
    let example = readme
        .split("Example `connector.toml`:")
        .nth(1)
        .and_then(|rest| rest.split("```toml").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the README has an example configuration");
    let config_file = file(example);
    let (config, listen) = load(Some(config_file.path()), env_of(&[])).expect("it loads");
    assert_eq!(listen.port(), 50051);
    assert!(
        config
            .oauth_apps
            .contains_key(&ConnectorTypeId::OneDriveConsumer)
    );
    assert_eq!(config.return_urls.len(), 1);
    let capabilities: Vec<Vec<Capability>> = config
        .api_keys
        .iter()
        .map(|key| key.capabilities.iter().copied().collect())
        .collect();
    assert_eq!(
        capabilities,
        [
            vec![Capability::Read, Capability::Manage],
            vec![Capability::Read, Capability::Tokens]
        ]
    );
}

#[test]
fn passwords_are_redacted() {
    assert_eq!(
        redact_password("postgres://user:hunter2@db:5432/x"),
        "postgres://user:<redacted>@db:5432/x"
    );
    assert_eq!(redact_password("sqlite://data/x.db"), "sqlite://data/x.db");
}

#[test]
fn metrics_are_off_and_logs_text_unless_configured() {
    let (config, _) = load(None, env_of(&[])).unwrap();
    assert_eq!(config.metrics_listen, None, "no metrics port by default");
    assert_eq!(config.log_format, crate::config::LogFormat::Text);

    let configured = file("metrics_listen = \"127.0.0.1:9464\"\nlog_format = \"json\"\n");
    let (config, _) = load(Some(configured.path()), env_of(&[])).unwrap();
    assert_eq!(
        config.metrics_listen,
        Some("127.0.0.1:9464".parse().unwrap())
    );
    assert_eq!(config.log_format, crate::config::LogFormat::Json);

    let (config, _) = load(
        Some(configured.path()),
        env_of(&[
            ("CONNECTOR_METRICS_LISTEN", "0.0.0.0:9100"),
            ("CONNECTOR_LOG_FORMAT", "text"),
        ]),
    )
    .unwrap();
    assert_eq!(config.metrics_listen, Some("0.0.0.0:9100".parse().unwrap()));
    assert_eq!(config.log_format, crate::config::LogFormat::Text);

    let refused = load(None, env_of(&[("CONNECTOR_LOG_FORMAT", "xml")])).unwrap_err();
    assert!(refused.0.contains("log_format `xml`"), "{refused}");
    let refused = load(None, env_of(&[("CONNECTOR_METRICS_LISTEN", "nine")])).unwrap_err();
    assert!(refused.0.contains("CONNECTOR_METRICS_LISTEN"), "{refused}");
}

#[test]
fn the_console_is_on_and_cross_origin_calls_off_unless_configured() {
    let (config, _) = load(None, env_of(&[])).unwrap();
    assert!(config.console_enabled);
    assert!(config.cors_allowed_origins.is_empty());

    let configured = file(
        "console = false\ncors_allowed_origins = [\"https://ops.example.com\", \"http://localhost:5173\"]\n",
    );
    let (config, _) = load(Some(configured.path()), env_of(&[])).unwrap();
    assert!(!config.console_enabled);
    assert_eq!(
        config.cors_allowed_origins,
        ["https://ops.example.com", "http://localhost:5173"]
    );
    let (config, _) = load(
        None,
        env_of(&[
            ("CONNECTOR_CONSOLE", "true"),
            (
                "CONNECTOR_CORS_ALLOWED_ORIGINS",
                "https://a.example, https://b.example:8443",
            ),
        ]),
    )
    .unwrap();
    assert!(config.console_enabled);
    assert_eq!(
        config.cors_allowed_origins,
        ["https://a.example", "https://b.example:8443"]
    );

    for bad in [
        "*",
        "https://a.example/",
        "https://a.example/console",
        "ftp://a.example",
        "null",
    ] {
        let refused = load(None, env_of(&[("CONNECTOR_CORS_ALLOWED_ORIGINS", bad)])).unwrap_err();
        assert!(
            refused.0.contains("cors_allowed_origins"),
            "{bad}: {refused}"
        );
    }
}
