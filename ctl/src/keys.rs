//! API keys for the server's configuration. A key is made the way the server makes its own
//! admin key (`csk_` and 32 random bytes in unpadded base64url, see `server/src/key_files.rs`),
//! and its `[[api_keys]]` entry carries the hex SHA-256 of the key string, as `ApiKey::hash`
//! computes it. The server only ever stores the hash; the key is shown here once.

use std::io::Write as _;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::{cli::NewKeyArgs, failure::Failure};

/// A new random key.
fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("csk_{}", BASE64URL.encode(bytes))
}

/// The `[[api_keys]]` entry for `key`.
fn entry(args: &NewKeyArgs, key: &str) -> String {
    let list = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|item| toml_string(item)).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut entry = format!(
        "[[api_keys]]\nid = {}\nsha256 = \"{}\"\n",
        toml_string(&args.id),
        hex::encode(Sha256::digest(key.as_bytes()))
    );
    if !args.accounts.is_empty() {
        entry.push_str(&format!("accounts = {}\n", list(&args.accounts)));
    }
    if !args.capabilities.is_empty() {
        entry.push_str(&format!("capabilities = {}\n", list(&args.capabilities)));
    }
    entry
}

/// A TOML basic string (the serializer quotes and escapes as TOML wants).
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// `keys new`: prints the key (or writes it to a new private file), then its entry.
pub(crate) fn new_key(args: &NewKeyArgs) -> Result<(), Failure> {
    if args.id.trim().is_empty() {
        return Err(Failure::Usage("--id must not be empty".to_owned()));
    }
    let key = generate();
    match &args.key_out {
        Some(path) => write_private(path, &key)?,
        None => println!("{key}"),
    }
    println!(
        "# Add to the server's config file; the key itself is shown only once and not stored."
    );
    print!("{}", entry(args, &key));
    Ok(())
}

/// Writes `key` to a new file readable by its owner only; never overwrites one.
fn write_private(path: &std::path::Path, key: &str) -> Result<(), Failure> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| Failure::Usage(format!("cannot create {}: {error}", path.display())))?;
    writeln!(file, "{key}")
        .map_err(|error| Failure::Other(format!("cannot write {}: {error}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_look_like_the_servers_own() {
        let key = generate();
        assert!(key.starts_with("csk_"));
        assert_eq!(BASE64URL.decode(&key[4..]).unwrap().len(), 32);
        assert_ne!(key, generate());
    }

    #[test]
    fn the_entry_is_toml_the_server_reads() {
        let args = NewKeyArgs {
            id: "ops \"team\"".to_owned(),
            accounts: vec!["a".to_owned(), "b".to_owned()],
            capabilities: vec!["read".to_owned()],
            key_out: None,
        };
        let parsed: toml::Table = toml::from_str(&entry(&args, "csk_x")).unwrap();
        let key = &parsed["api_keys"].as_array().unwrap()[0];
        assert_eq!(key["id"].as_str(), Some("ops \"team\""));
        assert_eq!(
            key["sha256"].as_str(),
            Some(hex::encode(Sha256::digest(b"csk_x")).as_str())
        );
        assert_eq!(key["accounts"].as_array().unwrap().len(), 2);
    }
}
