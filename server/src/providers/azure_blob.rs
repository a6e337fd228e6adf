//! Azure Blob Storage: Shared Key requests to check an account key, and account SAS tokens for
//! the orchestrator.
//!
//! Both are a few lines of HMAC-SHA256 over documented canonical strings, so they are written
//! here rather than pulled in through a full storage SDK: the service never reads or writes
//! blobs itself. The Blob endpoint is a template (`https://{account}.blob.core.windows.net` by
//! default) so the same code talks to Azurite (`http://127.0.0.1:10000/{account}`) in tests and
//! to sovereign clouds in production.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use chrono::{DateTime, SubsecRound as _, Utc};
use hmac::{Hmac, Mac as _};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use sha2::Sha256;

use super::{
    Error,
    credentials::{
        Access, AccessKind, CredentialFields, CredentialProvider, FieldError, FieldErrors,
        Identity, Parsed, Secrets, stored_bytes,
    },
};

/// The storage service version we sign for (account SAS strings include the encryption scope
/// from 2020-12-06 on).
const STORAGE_VERSION: &str = "2021-08-06";
/// Default permissions of the SAS we hand out: everything a migration needs on containers and
/// blobs, in the canonical order Azure requires (read, write, delete, list, add, create, update,
/// process). Configurable (`sas_permissions`) down to what a deployment's migrations use.
pub const DEFAULT_SAS_PERMISSIONS: &str = "rwdlacup";
/// Service: Blob only. Resource types: container and object, never service: a service-level
/// SAS with write permission could change the account's Blob service properties (CORS rules,
/// soft-delete retention, logging), which no migration needs.
const SAS_SERVICES: &str = "b";
const SAS_RESOURCE_TYPES: &str = "co";

/// Checks SAS permissions given in configuration and puts them in Azure's canonical order:
/// letters from `rwdlacup`, each at most once.
pub fn canonical_sas_permissions(permissions: &str) -> Result<String, String> {
    if permissions.is_empty() {
        return Err("grants nothing".into());
    }
    if let Some(unknown) = permissions
        .chars()
        .find(|letter| !DEFAULT_SAS_PERMISSIONS.contains(*letter))
    {
        return Err(format!(
            "`{unknown}` is not one of the permissions `{DEFAULT_SAS_PERMISSIONS}`"
        ));
    }
    Ok(DEFAULT_SAS_PERMISSIONS
        .chars()
        .filter(|letter| permissions.contains(*letter))
        .collect())
}
/// How far back the SAS start is set, to absorb clock skew between us and Azure.
const SAS_START_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// Characters escaped in query values (RFC 3986 unreserved characters stay).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Talks to Azure Blob Storage endpoints.
#[derive(Debug, Clone)]
pub struct AzureBlob {
    http: reqwest::Client,
    endpoint_template: String,
    sas_lifetime: chrono::Duration,
    sas_permissions: String,
}

/// An account SAS as handed to the orchestrator.
#[derive(Debug)]
pub struct AccountSas {
    /// The query string, without `?`.
    pub query: String,
    /// When it expires.
    pub expire_time: DateTime<Utc>,
    /// What it grants, as `key=value` items.
    pub grants: Vec<String>,
    /// The Blob endpoint it is for.
    pub endpoint: String,
}

impl AzureBlob {
    /// A client for endpoints built from `endpoint_template` (containing `{account}`), issuing
    /// SAS tokens that live `sas_lifetime` (at most one hour).
    pub fn new(http: reqwest::Client, endpoint_template: &str, sas_lifetime: Duration) -> Self {
        let sas_lifetime = sas_lifetime.min(Duration::from_secs(3600));
        Self {
            http,
            endpoint_template: endpoint_template.trim_end_matches('/').to_owned(),
            sas_lifetime: chrono::Duration::from_std(sas_lifetime)
                .unwrap_or(chrono::Duration::hours(1)),
            sas_permissions: DEFAULT_SAS_PERMISSIONS.to_owned(),
        }
    }

    /// The same client, handing out SAS tokens with these permissions (canonical, as
    /// [`canonical_sas_permissions`] returns them).
    #[must_use]
    pub fn with_sas_permissions(mut self, permissions: &str) -> Self {
        self.sas_permissions = permissions.to_owned();
        self
    }

    /// The Blob endpoint of a storage account.
    pub fn endpoint(&self, account: &str) -> String {
        self.endpoint_template.replace("{account}", account)
    }

    /// Checks an account key with a signed List Containers request for one container.
    pub async fn check_credentials(
        &self,
        account: &str,
        key: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let endpoint = self.endpoint(account);
        let url =
            reqwest::Url::parse(&format!("{endpoint}/?comp=list&maxresults=1")).map_err(|_| {
                Error::Unavailable {
                    message: "the configured Azure Blob endpoint is not a valid URL".into(),
                    retry_after: Duration::from_secs(60),
                }
            })?;
        let date = now.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let canonical_resource = format!("/{account}{}\ncomp:list\nmaxresults:1", url.path());
        let string_to_sign = format!(
            "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{STORAGE_VERSION}\n{canonical_resource}"
        );
        let signature = sign(key, &string_to_sign);
        let response = self
            .http
            .get(url)
            .header("x-ms-date", &date)
            .header("x-ms-version", STORAGE_VERSION)
            .header("authorization", format!("SharedKey {account}:{signature}"))
            .send()
            .await
            .map_err(|error| Error::Unavailable {
                message: format!(
                    "cannot reach the Azure Blob endpoint of `{account}`: {}",
                    describe_transport_error(&error)
                ),
                retry_after: Duration::from_secs(5),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let code = response
            .headers()
            .get("x-ms-error-code")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Error::Unavailable {
                message: format!("Azure Blob Storage answered {status} {code}"),
                retry_after: Duration::from_secs(5),
            });
        }
        let body = match response.text().await {
            Ok(body) => body,
            Err(error) => {
                return Err(Error::Unavailable {
                    message: format!(
                        "Azure Blob Storage answered {status} {code} and the body could not be read: {}",
                        describe_transport_error(&error)
                    ),
                    retry_after: Duration::from_secs(5),
                });
            }
        };
        // A request time Azure finds too far from its own (more than 15 minutes) fails
        // authentication too; that is this host's clock, not the key.
        if body.contains("Request date header") {
            return Err(Error::Unavailable {
                message: "Azure Blob Storage refused the request time; check this host's clock"
                    .into(),
                retry_after: Duration::from_secs(60),
            });
        }
        let detail = format!("{status}{}{code}", if code.is_empty() { "" } else { " " });
        // Only a signature the account cannot verify means the key is wrong: Azure answers
        // `AuthenticationFailed`, Azurite `AuthorizationFailure`, both "Server failed to
        // authenticate the request". A storage firewall (`AuthorizationFailure`, "not
        // authorized"), disabled key access or an unknown account are refusals of another kind.
        if status == StatusCode::FORBIDDEN
            && (code == "AuthenticationFailed"
                || body.contains("Server failed to authenticate the request"))
        {
            return Err(Error::CredentialsRejected(format!(
                "Azure Blob Storage rejected the account key for `{account}` ({detail})"
            )));
        }
        Err(Error::Refused(format!(
            "Azure Blob Storage refused the request for `{account}` ({detail})"
        )))
    }

    /// Signs an account SAS for the Blob service, valid from a little before `now` until
    /// `now` plus the configured lifetime.
    pub fn account_sas(&self, account: &str, key: &[u8], now: DateTime<Utc>) -> AccountSas {
        let endpoint = self.endpoint(account);
        let format = |time: DateTime<Utc>| time.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let start = format(now - SAS_START_SKEW);
        // Whole seconds: the SAS carries seconds, and the reported expiry must not outlast it.
        let expire_time = (now + self.sas_lifetime).trunc_subsecs(0);
        let expiry = format(expire_time);
        // Real Azure gets HTTPS-only tokens; plain HTTP is only ever allowed for an http://
        // endpoint (the emulator).
        let protocol = if endpoint.starts_with("https://") {
            "https"
        } else {
            "https,http"
        };
        let permissions = self.sas_permissions.as_str();
        let string_to_sign = format!(
            "{account}\n{permissions}\n{SAS_SERVICES}\n{SAS_RESOURCE_TYPES}\n{start}\n{expiry}\n\n{protocol}\n{STORAGE_VERSION}\n\n"
        );
        let signature = sign(key, &string_to_sign);
        let pairs = [
            ("sv", STORAGE_VERSION),
            ("ss", SAS_SERVICES),
            ("srt", SAS_RESOURCE_TYPES),
            ("sp", permissions),
            ("st", &start),
            ("se", &expiry),
            ("spr", protocol),
            ("sig", &signature),
        ];
        let query = pairs
            .iter()
            .map(|(name, value)| format!("{name}={}", utf8_percent_encode(value, QUERY_VALUE)))
            .collect::<Vec<_>>()
            .join("&");
        AccountSas {
            query,
            expire_time,
            grants: vec![
                format!("ss={SAS_SERVICES}"),
                format!("srt={SAS_RESOURCE_TYPES}"),
                format!("sp={permissions}"),
            ],
            endpoint,
        }
    }
}

fn sign(key: &[u8], string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

fn describe_transport_error(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}

/// The credential field naming the storage account (as the catalogue lists it).
pub const ACCOUNT_NAME_FIELD: &str = "account_name";
/// The credential field holding the access key, kept sealed.
pub const ACCOUNT_KEY_FIELD: &str = "account_key";

/// Validates a storage account name: 3 to 24 lower-case letters and digits.
fn account_name(name: &str) -> Result<String, String> {
    let ok = (3..=24).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(name.to_owned())
    } else {
        Err("a storage account name is 3 to 24 lower-case letters and digits".into())
    }
}

/// Decodes an access key as the Azure portal shows it (base64).
fn account_key(encoded: &str) -> Result<secrecy::SecretSlice<u8>, String> {
    let decoded = BASE64
        .decode(encoded.trim())
        .map_err(|_| String::from("an access key is base64, as the Azure portal shows it"))?;
    if decoded.is_empty() || decoded.len() > 256 {
        return Err("an access key decodes to 1 to 256 bytes".into());
    }
    Ok(decoded.into())
}

#[async_trait::async_trait]
impl CredentialProvider for AzureBlob {
    fn secret_fields(&self) -> &'static [&'static str] {
        &[ACCOUNT_KEY_FIELD]
    }

    fn pinned(&self) -> Option<&'static super::credentials::PinnedAttribute> {
        None
    }

    fn parse(&self, fields: &CredentialFields) -> Result<Parsed, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        let name = errors.check(
            ACCOUNT_NAME_FIELD,
            account_name(fields.get(ACCOUNT_NAME_FIELD)),
        );
        let key = errors.check(
            ACCOUNT_KEY_FIELD,
            account_key(fields.get(ACCOUNT_KEY_FIELD)),
        );
        match (name, key) {
            // The storage account name is both the stable id and the label.
            (Some(name), Some(key)) => Ok(Parsed {
                identity: Some(Identity {
                    id: name.clone(),
                    label: name,
                    pinned: None,
                }),
                secrets: [(ACCOUNT_KEY_FIELD, key)].into(),
            }),
            _ => Err(errors.into_errors()),
        }
    }

    async fn check(
        &self,
        account: Option<&Identity>,
        secrets: &Secrets,
        now: DateTime<Utc>,
    ) -> Result<Option<Identity>, Error> {
        let account = account
            .ok_or_else(|| Error::Protocol("no storage account to check the key against".into()))?;
        self.check_credentials(&account.id, stored_bytes(secrets, ACCOUNT_KEY_FIELD)?, now)
            .await?;
        Ok(None)
    }

    async fn mint(
        &self,
        external_account_id: &str,
        secrets: &Secrets,
        now: DateTime<Utc>,
    ) -> Result<Access, Error> {
        let sas = self.account_sas(
            external_account_id,
            stored_bytes(secrets, ACCOUNT_KEY_FIELD)?,
            now,
        );
        Ok(Access {
            token: sas.query.into(),
            kind: AccessKind::AzureSas,
            expire_time: sas.expire_time,
            scopes: sas.grants,
            resource_url: sas.endpoint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(name: &str, key: &str) -> CredentialFields {
        let mut fields = CredentialFields::default();
        fields.insert(ACCOUNT_NAME_FIELD, name);
        fields.insert(ACCOUNT_KEY_FIELD, key);
        fields
    }

    fn provider() -> AzureBlob {
        AzureBlob::new(
            reqwest::Client::new(),
            "http://127.0.0.1:9/{account}",
            Duration::from_secs(3600),
        )
    }

    #[test]
    fn valid_fields_name_the_account_and_keep_only_the_key() {
        let parsed = provider()
            .parse(&fields("store1", "c2VjcmV0LWtleQ=="))
            .expect("valid");
        let identity = parsed.identity.clone().expect("named by the fields");
        assert_eq!(
            (identity.id.as_str(), identity.label.as_str()),
            ("store1", "store1")
        );
        assert_eq!(
            parsed.secrets.keys().copied().collect::<Vec<_>>(),
            [ACCOUNT_KEY_FIELD]
        );
        let shown = format!("{parsed:?} {:?}", fields("store1", "c2VjcmV0LWtleQ=="));
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let errors = provider()
            .parse(&fields("Not A Name", "not base64!"))
            .expect_err("invalid");
        assert_eq!(
            errors.iter().map(|error| error.field).collect::<Vec<_>>(),
            [ACCOUNT_NAME_FIELD, ACCOUNT_KEY_FIELD]
        );
    }

    #[test]
    fn sas_expires_within_an_hour_and_signs_blob_only() {
        let azure = AzureBlob::new(
            reqwest::Client::new(),
            "https://{account}.blob.core.windows.net",
            Duration::from_secs(7200),
        );
        let now = DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z")
            .unwrap()
            .to_utc();
        let sas = azure.account_sas("acme", b"key", now);
        assert_eq!(sas.expire_time, now + chrono::Duration::hours(1));
        assert!(sas.query.contains("ss=b&"));
        assert!(sas.query.contains("spr=https&"));
        assert!(sas.query.contains("se=2026-11-26T11%3A00%3A00Z"));
        assert_eq!(sas.endpoint, "https://acme.blob.core.windows.net");
        assert!(
            sas.query.contains("srt=co&"),
            "never the service: {}",
            sas.query
        );
    }

    #[test]
    fn sas_permissions_are_checked_and_put_in_canonical_order() {
        assert_eq!(canonical_sas_permissions("lr").unwrap(), "rl");
        assert_eq!(canonical_sas_permissions("rwdlacup").unwrap(), "rwdlacup");
        assert!(canonical_sas_permissions("").is_err());
        assert!(canonical_sas_permissions("rx").is_err());
    }
}
