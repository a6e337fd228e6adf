//! Secret sealing: every secret (account keys, OAuth tokens, PKCE verifiers) is encrypted with
//! AES-256-GCM before it reaches the database.
//!
//! The master key itself encrypts nothing: each purpose (secrets at rest, page tokens, the MAC
//! of OAuth `state` values) uses its own sub-key, derived from the master key with HKDF-SHA256,
//! so what one purpose produces is worthless to another. Ciphertexts sealed before sub-keys
//! existed (their nonce is 12 bytes, without the format byte) still open with the master key
//! itself, until `connector-server rewrap` seals them again.
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
/// First byte of the stored nonce of a ciphertext sealed with a derived sub-key (the stored
/// nonce is this byte and the 12-byte GCM nonce). A 12-byte stored nonce is the older format,
/// sealed with the master key itself.
const DERIVED_FORMAT: u8 = 1;
/// Length of the MAC carried in an OAuth `state`.
pub const STATE_TAG_LEN: usize = 16;

/// What a derived sub-key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Secrets at rest: account keys, tokens, PKCE verifiers.
    Secrets,
    /// List page tokens handed to clients.
    PageTokens,
}

impl Purpose {
    fn info(self) -> &'static [u8] {
        match self {
            Purpose::Secrets => b"connector-service/v1/secrets",
            Purpose::PageTokens => b"connector-service/v1/page-tokens",
        }
    }
}

const STATE_MAC_INFO: &[u8] = b"connector-service/v1/oauth-state-mac";
const HKDF_SALT: &[u8] = b"connector-service";

/// A sub-key for `info`, derived from `master` with HKDF-SHA256.
fn derive(master: &[u8; MASTER_KEY_LEN], info: &[u8]) -> SecretBox<[u8; 32]> {
    let mut derived = Box::new([0u8; 32]);
    hkdf::Hkdf::<sha2::Sha256>::new(Some(HKDF_SALT), master)
        .expand(info, derived.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    SecretBox::new(derived)
}

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

/// The keys of one master key: its sub-keys, and itself for the older format.
struct KeySet {
    /// The master key itself: opens what was sealed before sub-keys existed.
    legacy: Aes256Gcm,
    secrets: Aes256Gcm,
    page_tokens: Aes256Gcm,
    state_mac: SecretBox<[u8; 32]>,
}

impl KeySet {
    fn new(key: &MasterKey) -> Self {
        let master = key.key.expose_secret();
        let cipher = |purpose: Purpose| {
            Aes256Gcm::new(&(*derive(master, purpose.info()).expose_secret()).into())
        };
        Self {
            legacy: Aes256Gcm::new(&(*master).into()),
            secrets: cipher(Purpose::Secrets),
            page_tokens: cipher(Purpose::PageTokens),
            state_mac: derive(master, STATE_MAC_INFO),
        }
    }

    fn cipher(&self, purpose: Purpose) -> &Aes256Gcm {
        match purpose {
            Purpose::Secrets => &self.secrets,
            Purpose::PageTokens => &self.page_tokens,
        }
    }

    fn state_mac(&self) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac as _;
        hmac::Hmac::<sha2::Sha256>::new_from_slice(self.state_mac.expose_secret())
            .expect("HMAC takes a key of any length")
    }
}

/// Seals with the current master key's sub-keys; opens with the current or any previous one.
pub struct Sealer {
    current: String,
    ciphers: HashMap<String, KeySet>,
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
            .map(|key| (key.id.clone(), KeySet::new(key)))
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

    /// Encrypts a secret at rest, binding it to `context` (for example the connector id and
    /// field).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Sealed {
        self.seal_for(Purpose::Secrets, plaintext, context)
    }

    /// Encrypts `plaintext` with the current key's sub-key for `purpose`, bound to `context`.
    pub fn seal_for(&self, purpose: Purpose, plaintext: &[u8], context: &[u8]) -> Sealed {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self.ciphers[&self.current]
            .cipher(purpose)
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            // AES-GCM fails only for inputs of more than 64 GiB, which never reach this.
            .expect("AES-GCM encryption of a small secret cannot fail");
        let mut stored_nonce = Vec::with_capacity(NONCE_LEN + 1);
        stored_nonce.push(DERIVED_FORMAT);
        stored_nonce.extend_from_slice(&nonce);
        Sealed {
            key_id: self.current.clone(),
            nonce: stored_nonce,
            ciphertext,
        }
    }

    /// Decrypts a secret at rest that was bound to `context`.
    pub fn open(&self, sealed: &Sealed, context: &[u8]) -> Result<SecretSlice<u8>, Error> {
        self.open_for(Purpose::Secrets, sealed, context)
    }

    /// Decrypts what [`Sealer::seal_for`] sealed for `purpose` and `context` (or, in the older
    /// format, what the master key itself sealed).
    pub fn open_for(
        &self,
        purpose: Purpose,
        sealed: &Sealed,
        context: &[u8],
    ) -> Result<SecretSlice<u8>, Error> {
        let keys = self
            .ciphers
            .get(&sealed.key_id)
            .ok_or_else(|| Error::UnknownKey(sealed.key_id.clone()))?;
        let unopenable = || Error::Unopenable(sealed.key_id.clone());
        let (cipher, nonce) = match sealed.nonce.as_slice() {
            [DERIVED_FORMAT, nonce @ ..] if nonce.len() == NONCE_LEN => {
                (keys.cipher(purpose), nonce)
            }
            nonce if nonce.len() == NONCE_LEN => (&keys.legacy, nonce),
            _ => return Err(unopenable()),
        };
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| unopenable())?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: context,
                },
            )
            .map(SecretSlice::from)
            .map_err(|_| unopenable())
    }

    /// Whether `sealed` is in the current format under the current key (nothing for
    /// `rewrap` to do).
    pub fn is_current(&self, sealed: &Sealed) -> bool {
        sealed.key_id == self.current
            && sealed.nonce.len() == NONCE_LEN + 1
            && sealed.nonce[0] == DERIVED_FORMAT
    }

    /// The MAC that makes an OAuth `state` one this service issued, over its random part,
    /// with the current key.
    pub fn state_tag(&self, random: &[u8]) -> [u8; STATE_TAG_LEN] {
        use hmac::Mac as _;
        let mut mac = self.ciphers[&self.current].state_mac();
        mac.update(random);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; STATE_TAG_LEN];
        tag.copy_from_slice(&full[..STATE_TAG_LEN]);
        tag
    }

    /// Whether `tag` is the MAC of `random` under any configured key (a state issued just
    /// before a key rotation still completes). Compared in constant time.
    pub fn check_state_tag(&self, random: &[u8], tag: &[u8]) -> bool {
        use hmac::Mac as _;
        self.ciphers.values().any(|keys| {
            let mut mac = keys.state_mac();
            mac.update(random);
            mac.verify_truncated_left(tag).is_ok()
        })
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
    fn each_purpose_has_its_own_sub_key() {
        let sealer = sealer();
        let secret = sealer.seal(b"secret", b"ctx");
        assert!(sealer.is_current(&secret));
        assert_eq!(secret.nonce.len(), NONCE_LEN + 1);
        assert!(matches!(
            sealer.open_for(Purpose::PageTokens, &secret, b"ctx"),
            Err(Error::Unopenable(_))
        ));
        let token = sealer.seal_for(Purpose::PageTokens, b"page", b"ctx");
        assert!(sealer.open(&token, b"ctx").is_err());
        assert_eq!(
            sealer
                .open_for(Purpose::PageTokens, &token, b"ctx")
                .unwrap()
                .expose_secret(),
            b"page"
        );
    }

    #[test]
    fn the_older_format_sealed_with_the_master_key_still_opens_and_is_not_current() {
        let key = MasterKey::generate("k");
        let raw = Aes256Gcm::new(&(*key.key.expose_secret()).into());
        let nonce = [9u8; NONCE_LEN];
        let old = Sealed {
            key_id: "k".to_owned(),
            nonce: nonce.to_vec(),
            ciphertext: raw
                .encrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: b"old secret",
                        aad: b"ctx",
                    },
                )
                .unwrap(),
        };
        let sealer = Sealer::new(&key, &[]);
        assert_eq!(
            sealer.open(&old, b"ctx").unwrap().expose_secret(),
            b"old secret"
        );
        assert!(!sealer.is_current(&old));
    }

    #[test]
    fn a_state_tag_checks_under_any_configured_key_and_nothing_else() {
        let old = MasterKey::generate("old");
        let issued = Sealer::new(&old, &[]).state_tag(b"random part");
        let rotated = Sealer::new(&MasterKey::generate("new"), &[old]);
        assert!(rotated.check_state_tag(b"random part", &issued));
        assert!(!rotated.check_state_tag(b"other part", &issued));
        assert!(!sealer().check_state_tag(b"random part", &issued));
        assert!(!rotated.check_state_tag(b"random part", &[0u8; STATE_TAG_LEN]));
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let key = MasterKey::generate("k");
        let encoded = key.to_base64();
        let shown = format!("{key:?} {:?}", Sealer::new(&key, &[]));
        assert!(!shown.contains(&encoded));
    }
}
