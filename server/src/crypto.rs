//! Secret sealing: every secret (account keys now, OAuth tokens later) is encrypted with
//! AES-256-GCM before it reaches the database.
//!
//! Each seal uses a fresh random 96-bit nonce, and the ciphertext is bound through associated
//! data to the row and field it belongs to, so a ciphertext copied into another connector's row
//! (or another field of the same row) fails to open. The id of the master key travels with each
//! ciphertext, which is what lets an operator rotate keys: new seals use the current key, old
//! ciphertexts still open with a previous key until they are rewritten.

use std::{collections::HashMap, fmt};

use aes_gcm::{
    Aes256Gcm, KeyInit as _, Nonce,
    aead::{Aead as _, Payload},
};
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretBox, SecretSlice};

/// Length of a master key in bytes (AES-256).
pub const MASTER_KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// Errors of sealing and opening. They never carry secret material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ciphertext names a key id this server was not given.
    #[error("secret was sealed with master key `{0}`, which is not configured")]
    UnknownKey(String),
    /// Wrong key, tampered ciphertext, or a ciphertext moved to another row or field.
    #[error("secret sealed with master key `{0}` does not open: wrong key or tampered data")]
    Unopenable(String),
    /// A master key of the wrong length or encoding.
    #[error("master key `{id}` is invalid: {why}")]
    InvalidKey {
        /// The key id.
        id: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// A sealed secret as stored: key id, nonce and ciphertext (with the GCM tag appended).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Id of the master key that sealed it.
    pub key_id: String,
    /// The 96-bit nonce, unique per seal.
    pub nonce: Vec<u8>,
    /// Ciphertext followed by the 128-bit tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// A master key with its id. `Debug` shows only the id.
pub struct MasterKey {
    id: String,
    key: SecretBox<[u8; MASTER_KEY_LEN]>,
}

impl MasterKey {
    /// Wraps raw key bytes.
    pub fn new(id: impl Into<String>, bytes: &[u8]) -> Result<Self, Error> {
        let id = id.into();
        let key: [u8; MASTER_KEY_LEN] = bytes.try_into().map_err(|_| Error::InvalidKey {
            id: id.clone(),
            why: "it must be exactly 32 bytes",
        })?;
        Ok(Self {
            id,
            key: SecretBox::new(Box::new(key)),
        })
    }

    /// Decodes a base64 (standard alphabet) key.
    pub fn from_base64(id: impl Into<String>, encoded: &str) -> Result<Self, Error> {
        use base64::Engine as _;
        let id = id.into();
        let bytes = SecretSlice::from(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| Error::InvalidKey {
                    id: id.clone(),
                    why: "it is not valid base64",
                })?,
        );
        Self::new(id, bytes.expose_secret())
    }

    /// Generates a new random key.
    pub fn generate(id: impl Into<String>) -> Self {
        let mut key = Box::new([0u8; MASTER_KEY_LEN]);
        rand::rng().fill_bytes(key.as_mut());
        Self {
            id: id.into(),
            key: SecretBox::new(key),
        }
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as base64, for writing a freshly generated key file.
    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.key.expose_secret())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Seals with the current master key; opens with the current or any previous one.
pub struct Sealer {
    current: String,
    ciphers: HashMap<String, Aes256Gcm>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("current", &self.current)
            .field("key_ids", &self.ciphers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Sealer {
    /// A sealer that seals with `current` and also opens what `previous` keys sealed.
    pub fn new(current: &MasterKey, previous: &[MasterKey]) -> Self {
        let ciphers = std::iter::once(current)
            .chain(previous)
            .map(|key| {
                let cipher = Aes256Gcm::new(&(*key.key.expose_secret()).into());
                (key.id.clone(), cipher)
            })
            .collect();
        Self {
            current: current.id.clone(),
            ciphers,
        }
    }

    /// Id of the key new seals use.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Whether a key id is configured.
    pub fn knows_key(&self, key_id: &str) -> bool {
        self.ciphers.contains_key(key_id)
    }

    /// Encrypts `plaintext`, binding it to `context` (for example the connector id and field).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Sealed {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let cipher = &self.ciphers[&self.current];
        let ciphertext = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            // AES-GCM fails only for inputs of more than 64 GiB, which never reach this.
            .expect("AES-GCM encryption of a small secret cannot fail");
        Sealed {
            key_id: self.current.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        }
    }

    /// Decrypts a sealed secret that was bound to `context`.
    pub fn open(&self, sealed: &Sealed, context: &[u8]) -> Result<SecretSlice<u8>, Error> {
        let cipher = self
            .ciphers
            .get(&sealed.key_id)
            .ok_or_else(|| Error::UnknownKey(sealed.key_id.clone()))?;
        let nonce: [u8; NONCE_LEN] = sealed
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| Error::Unopenable(sealed.key_id.clone()))?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: context,
                },
            )
            .map(SecretSlice::from)
            .map_err(|_| Error::Unopenable(sealed.key_id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(&MasterKey::generate("k1"), &[])
    }

    #[test]
    fn sealed_secret_opens_with_its_context() {
        let sealer = sealer();
        let sealed = sealer.seal(b"account-key", b"connector/a/account_key");
        let opened = sealer.open(&sealed, b"connector/a/account_key").unwrap();
        assert_eq!(opened.expose_secret(), b"account-key");
        assert_ne!(sealed.ciphertext[..11], b"account-key"[..]);
    }

    #[test]
    fn ciphertext_moved_to_another_row_does_not_open() {
        let sealer = sealer();
        let sealed = sealer.seal(b"account-key", b"connector/a/account_key");
        assert!(matches!(
            sealer.open(&sealed, b"connector/b/account_key"),
            Err(Error::Unopenable(_))
        ));
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let sealer = sealer();
        let a = sealer.seal(b"same", b"ctx");
        let b = sealer.seal(b"same", b"ctx");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn previous_key_still_opens_after_rotation() {
        let old = MasterKey::generate("old");
        let sealed = Sealer::new(&old, &[]).seal(b"secret", b"ctx");
        let rotated = Sealer::new(&MasterKey::generate("new"), &[old]);
        assert_eq!(
            rotated.open(&sealed, b"ctx").unwrap().expose_secret(),
            b"secret"
        );
        assert_eq!(rotated.seal(b"x", b"ctx").key_id, "new");
    }

    #[test]
    fn wrong_key_with_the_same_id_does_not_open() {
        let sealed = Sealer::new(&MasterKey::generate("k"), &[]).seal(b"secret", b"ctx");
        let other = Sealer::new(&MasterKey::generate("k"), &[]);
        assert!(matches!(
            other.open(&sealed, b"ctx"),
            Err(Error::Unopenable(_))
        ));
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let key = MasterKey::generate("k");
        let encoded = key.to_base64();
        let shown = format!("{key:?} {:?}", Sealer::new(&key, &[]));
        assert!(!shown.contains(&encoded));
    }
}
