//! Opaque list page tokens. A token is the position to continue after, plus the account and
//! filter it was issued for, sealed with the page-token sub-key of the master key: a client can neither read it nor forge
//! one (let alone one pointing into another account), and a token replayed with another parent
//! or filter is refused.

use std::sync::Arc;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL};
use secrecy::ExposeSecret as _;

use crate::{
    crypto::{Purpose, Sealed, Sealer},
    domain::{Error, Result},
};

const CONTEXT: &[u8] = b"list_connectors page_token v1";

/// Issues and checks page tokens.
#[derive(Debug, Clone)]
pub(crate) struct PageTokens {
    sealer: Arc<Sealer>,
}

impl PageTokens {
    pub(crate) fn new(sealer: Arc<Sealer>) -> Self {
        Self { sealer }
    }

    /// A token to continue after `after` for this parent and filter. `filter` also names the
    /// listing (connectors and events use distinct values), so a token works only where issued.
    pub(crate) fn issue(&self, parent: &str, filter: &str, after: &str) -> String {
        let plaintext = serde_json::to_vec(&(parent, filter, after)).expect("strings serialise");
        let sealed = self
            .sealer
            .seal_for(Purpose::PageTokens, &plaintext, CONTEXT);
        let envelope = serde_json::to_vec(&(
            sealed.key_id,
            BASE64URL.encode(sealed.nonce),
            BASE64URL.encode(sealed.ciphertext),
        ))
        .expect("strings serialise");
        BASE64URL.encode(envelope)
    }

    /// The position a token continues after, if it was issued for this parent and filter.
    pub(crate) fn redeem(&self, token: &str, parent: &str, filter: &str) -> Result<String> {
        let invalid = || Error::invalid("page_token", "is not a page token this service issued");
        let envelope = BASE64URL.decode(token).map_err(|_| invalid())?;
        let (key_id, nonce, ciphertext): (String, String, String) =
            serde_json::from_slice(&envelope).map_err(|_| invalid())?;
        let sealed = Sealed {
            key_id,
            nonce: BASE64URL.decode(nonce).map_err(|_| invalid())?,
            ciphertext: BASE64URL.decode(ciphertext).map_err(|_| invalid())?,
        };
        let plaintext = self
            .sealer
            .open_for(Purpose::PageTokens, &sealed, CONTEXT)
            .map_err(|_| invalid())?;
        let (issued_parent, issued_filter, after): (String, String, String) =
            serde_json::from_slice(plaintext.expose_secret()).map_err(|_| invalid())?;
        if issued_parent != parent || issued_filter != filter {
            return Err(Error::invalid(
                "page_token",
                "was issued for another parent or filter; send the same parent and filter as the first page",
            ));
        }
        Ok(after)
    }
}
