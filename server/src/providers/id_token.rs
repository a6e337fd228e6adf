//! The OpenID Connect id token checks every provider shares (OpenID Connect Core §3.1.3.7, for a
//! token received straight from the token endpoint over TLS, whose signature may therefore go
//! unchecked but which must still be signed): issued to our client, within its lifetime (five
//! minutes of clock skew allowed), and carrying the nonce of this authorization. The issuer is
//! the provider's to check, as only it knows what its issuer looks like.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use super::Error;

/// Clock skew allowed on `exp` and `nbf`.
const SKEW_SECS: i64 = 5 * 60;

/// The standard claims every check reads.
#[derive(serde::Deserialize)]
struct Standard {
    aud: Option<serde_json::Value>,
    exp: Option<i64>,
    nbf: Option<i64>,
    nonce: Option<String>,
}

fn segment(id_token: &str, index: usize) -> Option<Vec<u8>> {
    let part = id_token.split('.').nth(index)?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()
}

/// The id token's claims as `T`, once it is signed (an `alg` other than `none`), issued to
/// `client_id` (alone, or among its audiences), within its lifetime at `now`, and carrying
/// `nonce`. [`Error::IdTokenRejected`] says which check failed.
pub fn verified_claims<T: DeserializeOwned>(
    id_token: Option<&str>,
    client_id: &str,
    nonce: &str,
    now: DateTime<Utc>,
) -> Result<T, Error> {
    #[derive(serde::Deserialize)]
    struct Header {
        alg: String,
    }
    let reject = |why: &str| Error::IdTokenRejected(why.to_owned());
    let id_token = id_token.ok_or_else(|| reject("the token response has no id_token"))?;
    let header: Option<Header> =
        segment(id_token, 0).and_then(|json| serde_json::from_slice(&json).ok());
    if header.is_none_or(|header| header.alg.eq_ignore_ascii_case("none")) {
        return Err(reject("it is unsigned"));
    }
    let payload = segment(id_token, 1).ok_or_else(|| reject("it is unreadable"))?;
    let standard: Standard =
        serde_json::from_slice(&payload).map_err(|_| reject("it is unreadable"))?;
    let ours = match &standard.aud {
        Some(serde_json::Value::String(audience)) => audience == client_id,
        Some(serde_json::Value::Array(audiences)) => audiences
            .iter()
            .any(|audience| audience.as_str() == Some(client_id)),
        _ => false,
    };
    if !ours {
        return Err(reject("it was issued to another client"));
    }
    let now = now.timestamp();
    match standard.exp {
        Some(exp) if exp + SKEW_SECS > now => {}
        _ => return Err(reject("it has expired")),
    }
    if standard.nbf.is_some_and(|nbf| nbf - SKEW_SECS > now) {
        return Err(reject("it is not valid yet"));
    }
    if standard.nonce.as_deref() != Some(nonce) {
        return Err(reject("its nonce is not this authorization's"));
    }
    serde_json::from_slice(&payload).map_err(|_| reject("it is unreadable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str, claims: serde_json::Value) -> String {
        let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        format!(
            "{}.{}.c2ln",
            encode(header.as_bytes()),
            encode(claims.to_string().as_bytes())
        )
    }

    #[test]
    fn each_check_refuses_on_its_own() {
        let now = Utc::now();
        let good = serde_json::json!({
            "aud": "client", "exp": now.timestamp() + 600, "nonce": "n", "sub": "1234",
        });
        let signed = r#"{"alg":"RS256"}"#;
        let claims: serde_json::Value =
            verified_claims(Some(&token(signed, good.clone())), "client", "n", now).unwrap();
        assert_eq!(claims["sub"], "1234");

        let cases = [
            (r#"{"alg":"none"}"#, good.clone(), "unsigned"),
            (
                signed,
                serde_json::json!({"aud": "other", "exp": now.timestamp() + 600, "nonce": "n"}),
                "another client",
            ),
            (
                signed,
                serde_json::json!({"aud": ["x", "client"], "exp": now.timestamp() - 600, "nonce": "n"}),
                "expired",
            ),
            (
                signed,
                serde_json::json!({"aud": "client", "exp": now.timestamp() + 600, "nonce": "m"}),
                "nonce",
            ),
        ];
        for (header, claims, why) in cases {
            let refused = verified_claims::<serde_json::Value>(
                Some(&token(header, claims)),
                "client",
                "n",
                now,
            );
            assert!(
                matches!(&refused, Err(Error::IdTokenRejected(message)) if message.contains(why)),
                "{why}: {refused:?}"
            );
        }
    }
}
