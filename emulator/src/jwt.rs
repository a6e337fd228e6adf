//! ID tokens: compact JWTs signed with HS256 under a fixed, public key.
//!
//! Microsoft signs with RS256 keys published at its JWKS endpoint; a client of the token
//! endpoint (which received the token over TLS from the issuer) may read the claims without
//! verifying the signature, and that is what Connector Service does. HS256 with a published
//! key keeps tokens well-formed and verifiable by a test that wants to, without a key server.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The HS256 key that signs every id token (`kid` `identity-emulator`). It is public: the
/// emulator's tokens prove nothing outside tests.
pub const ID_TOKEN_SIGNING_KEY: &[u8] = b"identity-emulator-id-token-signing-key-not-secret";

/// The claims of an id token, named as Microsoft names them.
#[derive(Serialize)]
pub(crate) struct IdTokenClaims<'a> {
    pub(crate) aud: &'a str,
    pub(crate) iss: String,
    pub(crate) iat: u64,
    pub(crate) nbf: u64,
    pub(crate) exp: u64,
    pub(crate) name: &'a str,
    pub(crate) oid: &'a str,
    pub(crate) preferred_username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) nonce: Option<&'a str>,
    pub(crate) sub: String,
    pub(crate) tid: &'a str,
    pub(crate) ver: &'static str,
    /// Directory role template ids; absent for users without roles, as Microsoft does.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub(crate) wids: &'a [String],
}

/// Microsoft's `sub` is pairwise: stable for one user and one application, different across
/// applications. A hash of both gives the same property deterministically.
pub(crate) fn pairwise_subject(client_id: &str, object_id: &str) -> String {
    let digest = Sha256::digest(format!("{client_id}:{object_id}").as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..24])
}

/// Encodes `claims` unsigned (`alg: none`, empty signature): what a forger sends.
pub(crate) fn unsigned(claims: &IdTokenClaims<'_>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"none"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    format!("{header}.{payload}.")
}

/// Encodes and signs `claims`.
pub(crate) fn sign(claims: &IdTokenClaims<'_>) -> String {
    let header =
        URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256","kid":"identity-emulator"}"#);
    // Serializing a struct of strings and integers cannot fail.
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(ID_TOKEN_SIGNING_KEY)
        .expect("HMAC accepts keys of any length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}
