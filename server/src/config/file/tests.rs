//! Loading configuration files and environment variables.

use std::collections::HashMap;

use secrecy::ExposeSecret as _;

use super::*;
use crate::access::{Capability, Scope};
use crate::config::redact_password;
use std::collections::BTreeSet;

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

/// Loads a file and builds every type's provider from it, as start-up does.
fn checked(file: &tempfile::NamedTempFile) -> Result<Config, ConfigError> {
    let (config, _) = load(Some(file.path()), env_of(&[]))?;
    let metrics = crate::metrics::Metrics::new();
    crate::registry::providers(&config, &reqwest::Client::new(), &metrics)?;
    Ok(config)
}

#[test]
fn no_configuration_means_the_embedded_default() {
    let (config, listen) = load(None, env_of(&[])).unwrap();
    assert_eq!(listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(config.data_dir, PathBuf::from("data"));
    assert!(config.database_url.is_none() && config.master_key.is_none());
    assert!(config.api_keys.is_empty());
    assert!(config.types.type_ids().next().is_none());
}

#[test]
fn file_settings_and_environment_overrides() {
    let hash = "ab".repeat(32);
    let config_file = file(&format!(
        r#"
        listen = "0.0.0.0:6000"
        database_url = "postgres://u:p@db/connectors"
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
        let error = checked(&config_file).expect_err(content);
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
    let metrics = crate::metrics::Metrics::new();
    let providers = crate::registry::providers(&config, &reqwest::Client::new(), &metrics)
        .expect("its types are configured");
    assert!(
        !providers.oauth.is_empty(),
        "it configures an OAuth 2.0 type"
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

#[test]
fn type_sections_are_checked_when_the_types_are_built() {
    for (content, said) in [
        (
            "[types.no-such-type]\nkey = 1\n",
            "there is no connector type `no-such-type`",
        ),
        ("no_such_key = 1\n", "unknown key `no_such_key`"),
    ] {
        let error = checked(&file(content)).expect_err(content);
        assert!(error.0.contains(said), "{error} should say {said}");
    }
}
