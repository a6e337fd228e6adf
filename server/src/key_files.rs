//! The embedded default's key files (the generated master key and admin API key in the data
//! directory), the sealer and API keys start-up builds from the configuration or those files,
//! and the private data directory.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL};
use rand::RngCore as _;
use secrecy::ExposeSecret as _;

use crate::{
    access::{ApiKey, Scope},
    config::{self, Config},
    crypto::{MasterKey, Sealer},
    error::{Error, io_error},
    persistence::Backend,
};

/// File in the data directory holding the generated master key (embedded default only).
pub const MASTER_KEY_FILE: &str = "master.key";
/// File in the data directory holding the generated admin API key.
pub const ADMIN_KEY_FILE: &str = "admin-api-key";
/// Key id of a generated master key.
pub(crate) const GENERATED_KEY_ID: &str = "local";

/// Whether start-up may create the embedded default's key files (a server starting) or must
/// only read what is there (`check-config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFiles {
    /// Create a missing file.
    Create,
    /// Read an existing file; a missing one would be generated, which cannot fail.
    ReadOnly,
}

/// The sealer from the configured master keys, or, for the embedded SQLite default with none
/// configured, from a key file created on first start.
pub(crate) fn sealer(config: &Config, backend: Backend, files: KeyFiles) -> Result<Sealer, Error> {
    let previous = config
        .previous_master_keys
        .iter()
        .map(|key| MasterKey::from_base64(key.id.clone(), key.key_base64.expose_secret()))
        .collect::<Result<Vec<_>, _>>()?;
    let current = match (&config.master_key, backend) {
        (Some(key), _) => MasterKey::from_base64(key.id.clone(), key.key_base64.expose_secret())?,
        (None, Backend::Sqlite) => {
            let path = config.data_dir.join(MASTER_KEY_FILE);
            let encoded = read_or_create_secret_file(&path, files, || {
                MasterKey::generate(GENERATED_KEY_ID).to_base64()
            })?;
            MasterKey::from_base64(GENERATED_KEY_ID, &encoded)?
        }
        (None, Backend::Postgres) => {
            return Err(config::ConfigError(
                "a PostgreSQL database needs a master key configured (CONNECTOR_MASTER_KEY or [master_key] in the config file): every server process sharing the database must seal with the same key".into(),
            )
            .into());
        }
    };
    let mut ids = std::collections::HashSet::new();
    if let Some(duplicate) = std::iter::once(&current)
        .chain(&previous)
        .find(|key| !ids.insert(key.id().to_owned()))
    {
        return Err(config::ConfigError(format!(
            "master key id `{}` is configured twice; every key (current and previous) needs its own id",
            duplicate.id()
        ))
        .into());
    }
    Ok(Sealer::new(&current, &previous))
}

/// The configured API keys, or an admin key from a file created on first start.
pub(crate) fn api_keys(
    config: &Config,
    backend: Backend,
    files: KeyFiles,
) -> Result<Vec<ApiKey>, Error> {
    let path = config.data_dir.join(ADMIN_KEY_FILE);
    if !config.api_keys.is_empty() {
        if files == KeyFiles::Create && path.exists() {
            // A key that silently stopped working is worse than a line at start-up.
            tracing::warn!(
                file = %path.display(),
                "[[api_keys]] is configured, so the generated admin key in this file no longer works; use a configured key (or delete the file)"
            );
        }
        return Ok(config.api_keys.clone());
    }
    if backend == Backend::Postgres {
        // Replicas sharing a database would each invent their own admin key.
        return Err(config::ConfigError(
            "a PostgreSQL deployment needs API keys configured ([[api_keys]] in the config file)"
                .into(),
        )
        .into());
    }
    let key = read_or_create_secret_file(&path, files, || {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        format!("csk_{}", BASE64URL.encode(bytes))
    })?;
    if files == KeyFiles::Create {
        tracing::info!(
            file = %path.display(),
            "no [[api_keys]] configured: the admin API key is in this file; send it as `authorization: Bearer <key>`"
        );
    }
    Ok(vec![ApiKey {
        id: "admin".to_owned(),
        sha256: ApiKey::hash(key.trim()),
        scope: Scope::AllAccounts,
        capabilities: ApiKey::all_capabilities(),
    }])
}

/// Creates the data directory (and its parents) readable by this user only (0700). An existing
/// directory is left as the operator made it: the files in it are private either way.
pub(crate) fn create_private_dir(path: &Path) -> Result<(), Error> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path).map_err(io_error(format!(
        "cannot create data directory {}",
        path.display()
    )))
}

/// Refuses a key file other users may read or write (like ssh does with private keys): a
/// master key or admin key that leaked to another account on the machine is no secret.
fn check_private(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(io_error(format!("cannot read {}", path.display())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(config::ConfigError(format!(
                "{} is accessible to other users (mode {:o}); make it private with `chmod 600 {}`",
                absolute(path).display(),
                mode & 0o777,
                absolute(path).display()
            ))
            .into());
        }
    }
    Ok(())
}

/// Reads a secret file, or creates it with mode 0600 and logs where it is (never the content).
/// An existing file must be private ([`check_private`]).
fn read_or_create_secret_file(
    path: &Path,
    files: KeyFiles,
    generate: impl FnOnce() -> String,
) -> Result<String, Error> {
    if path.exists() {
        check_private(path)?;
    }
    match std::fs::read_to_string(path) {
        Ok(content) if content.trim().is_empty() => {
            return Err(config::ConfigError(format!(
                "{} is empty (a crash while it was first written?); restore it from a backup, or remove it to generate a new one if nothing was sealed with it yet",
                absolute(path).display()
            ))
            .into());
        }
        Ok(content) => return Ok(content.trim().to_owned()),
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_error(format!("cannot read {}", path.display()))(error));
        }
        Err(_) => {}
    }
    let content = generate();
    if files == KeyFiles::ReadOnly {
        return Ok(content);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(io_error(format!("cannot create {}", path.display())))?;
    file.write_all(format!("{content}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(format!("cannot write {}", path.display())))?;
    tracing::warn!(path = %absolute(path).display(), "created a new secret file (mode 0600); keep it safe");
    Ok(content)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
