//! Amazon S3 and S3-compatible storage, linked with an access key id and secret access key.
//!
//! Everything goes through AWS STS with Signature Version 4 (written here, as for Azure: a few
//! HMAC-SHA256 steps over documented canonical strings, no SDK): `GetCallerIdentity` checks the
//! keys and names the account (the once-per-account key is the S3 endpoint and that account),
//! and `GetSessionToken` mints the short-lived session credentials a worker gets. The secret
//! access key itself is never handed out. Endpoints and region are configurable, so tests talk
//! to moto's server mode and deployments to S3-compatible services with an STS.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};

use super::{
    Error,
    credentials::{
        Access, AccessKind, CredentialFields, CredentialProvider, FieldError, FieldErrors,
        Identity, Parsed, Secrets, stored_text,
    },
};

/// The credential field with the access key id.
pub const ACCESS_KEY_ID_FIELD: &str = "access_key_id";
/// The credential field with the secret access key, kept sealed.
pub const SECRET_ACCESS_KEY_FIELD: &str = "secret_access_key";

const STS_VERSION: &str = "2011-06-15";

/// Talks to an S3-compatible service's STS.
#[derive(Debug, Clone)]
pub struct S3 {
    http: reqwest::Client,
    s3_endpoint: String,
    sts_endpoint: String,
    region: String,
    session_lifetime: Duration,
}

impl S3 {
    /// A client for the S3 endpoint `s3_endpoint` (named in the external account) whose
    /// keys STS at `sts_endpoint` checks in `region`; sessions live `session_lifetime`
    /// (15 minutes to 1 hour).
    pub fn new(
        http: reqwest::Client,
        s3_endpoint: &str,
        sts_endpoint: &str,
        region: &str,
        session_lifetime: Duration,
    ) -> Self {
        Self {
            http,
            s3_endpoint: s3_endpoint.trim_end_matches('/').to_owned(),
            sts_endpoint: sts_endpoint.trim_end_matches('/').to_owned(),
            region: region.to_owned(),
            session_lifetime: session_lifetime
                .clamp(Duration::from_secs(900), Duration::from_secs(3600)),
        }
    }

    /// Calls an STS action signed with the stored keys; the XML answer.
    async fn sts(
        &self,
        secrets: &Secrets,
        action: &str,
        extra: &str,
        now: DateTime<Utc>,
    ) -> Result<String, Error> {
        let key_id = stored_text(secrets, ACCESS_KEY_ID_FIELD)?;
        let secret = stored_text(secrets, SECRET_ACCESS_KEY_FIELD)?;
        let url = reqwest::Url::parse(&format!("{}/", self.sts_endpoint)).map_err(|_| {
            Error::Unavailable {
                message: "the configured STS endpoint is not a valid URL".into(),
                retry_after: Duration::from_secs(60),
            }
        })?;
        let body = format!("Action={action}&Version={STS_VERSION}{extra}");
        let signed = sign_v4(&SigningRequest {
            url: &url,
            body: body.as_bytes(),
            region: &self.region,
            service: "sts",
            key_id,
            secret,
            now,
        });
        let answer = self
            .http
            .post(url.clone())
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-date", signed.amz_date)
            .header("authorization", signed.authorization)
            .body(body)
            .send()
            .await
            .map_err(|error| Error::Unavailable {
                message: format!("cannot reach STS at {url}: {}", error.without_url()),
                retry_after: Duration::from_secs(30),
            })?;
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(text);
        }
        let code = xml_text(&text, "Code").unwrap_or_default();
        match (status, code.as_str()) {
            (
                StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED,
                "SignatureDoesNotMatch"
                | "InvalidClientTokenId"
                | "ExpiredToken"
                | "InvalidAccessKeyId",
            )
            | (_, "InvalidClientTokenId" | "SignatureDoesNotMatch") => Err(
                Error::CredentialsRejected(format!("STS rejected the access key ({code})")),
            ),
            (status, _) if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => {
                Err(Error::Unavailable {
                    message: format!("STS answered {status} to {action}"),
                    retry_after: Duration::from_secs(30),
                })
            }
            (status, code) => Err(Error::Refused(format!(
                "STS refused {action} ({status} {code})"
            ))),
        }
    }
}

const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// The text of the first `<name>…</name>` in an XML answer (STS answers are small and flat).
fn xml_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].trim().to_owned())
}

struct SigningRequest<'a> {
    url: &'a reqwest::Url,
    body: &'a [u8],
    region: &'a str,
    service: &'a str,
    key_id: &'a str,
    secret: &'a str,
    now: DateTime<Utc>,
}

struct Signed {
    amz_date: String,
    authorization: String,
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// AWS Signature Version 4 for a POST with a form body and no query: signs `content-type`,
/// `host` and `x-amz-date`.
fn sign_v4(request: &SigningRequest<'_>) -> Signed {
    let amz_date = request.now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = request.now.format("%Y%m%d").to_string();
    let host = match request.url.port() {
        Some(port) => format!("{}:{port}", request.url.host_str().unwrap_or_default()),
        None => request.url.host_str().unwrap_or_default().to_owned(),
    };
    let payload_hash = hex::encode(Sha256::digest(request.body));
    let signed_headers = "content-type;host;x-amz-date";
    let canonical_request = format!(
        "POST\n{}\n\ncontent-type:{CONTENT_TYPE}\nhost:{host}\nx-amz-date:{amz_date}\n\n{signed_headers}\n{payload_hash}",
        request.url.path()
    );
    let scope = format!("{date}/{}/{}/aws4_request", request.region, request.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let key = [request.region, request.service, "aws4_request"]
        .iter()
        .fold(
            hmac(format!("AWS4{}", request.secret).as_bytes(), &date),
            |key, part| hmac(&key, part),
        );
    let signature = hex::encode(hmac(&key, &string_to_sign));
    Signed {
        authorization: format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            request.key_id
        ),
        amz_date,
    }
}

fn access_key_id(given: &str) -> Result<String, String> {
    let ok = (16..=128).contains(&given.len()) && given.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(given.to_owned())
    } else {
        Err("16 to 128 letters and digits, for example AKIAIOSFODNN7EXAMPLE".into())
    }
}

fn secret_access_key(given: &str) -> Result<String, String> {
    if given.is_empty() || given.len() > 128 || given.chars().any(char::is_whitespace) {
        return Err("1 to 128 characters, no spaces".into());
    }
    Ok(given.to_owned())
}

#[async_trait::async_trait]
impl CredentialProvider for S3 {
    fn secret_fields(&self) -> &'static [&'static str] {
        &[ACCESS_KEY_ID_FIELD, SECRET_ACCESS_KEY_FIELD]
    }

    fn pinned(&self) -> Option<&'static super::credentials::PinnedAttribute> {
        None
    }

    fn parse(&self, fields: &CredentialFields) -> Result<Parsed, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        let mut check = |field, result| errors.check(field, result);
        let key_id = check(
            ACCESS_KEY_ID_FIELD,
            access_key_id(fields.get(ACCESS_KEY_ID_FIELD)),
        );
        let secret = check(
            SECRET_ACCESS_KEY_FIELD,
            secret_access_key(fields.get(SECRET_ACCESS_KEY_FIELD)),
        );
        let (Some(key_id), Some(secret)) = (key_id, secret) else {
            return Err(errors.into_errors());
        };
        Ok(Parsed {
            // The account is the one STS names: known once checked.
            identity: None,
            secrets: [
                (ACCESS_KEY_ID_FIELD, key_id.into_bytes().into()),
                (SECRET_ACCESS_KEY_FIELD, secret.into_bytes().into()),
            ]
            .into(),
        })
    }

    async fn check(
        &self,
        _account: Option<&Identity>,
        secrets: &Secrets,
        now: DateTime<Utc>,
    ) -> Result<Option<Identity>, Error> {
        let answer = self.sts(secrets, "GetCallerIdentity", "", now).await?;
        let account = xml_text(&answer, "Account")
            .filter(|account| !account.is_empty())
            .ok_or_else(|| Error::Protocol("GetCallerIdentity named no account".into()))?;
        let arn = xml_text(&answer, "Arn").unwrap_or_else(|| account.clone());
        Ok(Some(Identity {
            id: format!("{}/{account}", self.s3_endpoint),
            label: arn,
            pinned: None,
        }))
    }

    async fn mint(
        &self,
        _external_account_id: &str,
        secrets: &Secrets,
        now: DateTime<Utc>,
    ) -> Result<Access, Error> {
        let answer = self
            .sts(
                secrets,
                "GetSessionToken",
                &format!("&DurationSeconds={}", self.session_lifetime.as_secs()),
                now,
            )
            .await?;
        let field = |name: &str| {
            xml_text(&answer, name)
                .ok_or_else(|| Error::Protocol(format!("GetSessionToken answered no {name}")))
        };
        let expire_time = DateTime::parse_from_rfc3339(&field("Expiration")?)
            .map_err(|_| {
                Error::Protocol("GetSessionToken answered an unreadable Expiration".into())
            })?
            .with_timezone(&Utc)
            .min(now + chrono::Duration::hours(1));
        Ok(Access {
            token: field("SessionToken")?.into(),
            kind: AccessKind::AwsSession {
                access_key_id: field("AccessKeyId")?,
                secret_access_key: field("SecretAccessKey")?.into(),
            },
            expire_time,
            scopes: Vec::new(),
            resource_url: self.s3_endpoint.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credential scope and signed headers (the signature itself is checked end to end:
    /// moto recomputes it and refuses a wrong one, see `tests/tests/suite/s3_connectors.rs`).
    #[test]
    fn signature_version_4_names_its_scope_and_signed_headers() {
        let url = reqwest::Url::parse("https://sts.amazonaws.com/").unwrap();
        let now = DateTime::parse_from_rfc3339("2015-08-30T12:36:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let signed = sign_v4(&SigningRequest {
            url: &url,
            body: b"Action=GetCallerIdentity&Version=2011-06-15",
            region: "us-east-1",
            service: "sts",
            key_id: "AKIDEXAMPLE",
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            now,
        });
        assert_eq!(signed.amz_date, "20150830T123600Z");
        assert!(signed.authorization.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="
        ));
    }

    #[test]
    fn xml_fields_are_read() {
        let xml = "<R><Credentials><AccessKeyId>ASIA1</AccessKeyId><Expiration>2026-12-02T04:00:00Z</Expiration></Credentials></R>";
        assert_eq!(xml_text(xml, "AccessKeyId").as_deref(), Some("ASIA1"));
        assert_eq!(xml_text(xml, "Missing"), None);
    }
}
