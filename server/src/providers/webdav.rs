//! WebDAV servers (RFC 4918), linked with a base URL, a username and a password (HTTP Basic).
//!
//! The credentials are checked with an authenticated `PROPFIND` of the base collection at depth
//! 0: 207 means the server accepts them, 401 or 403 that it does not. A password has no
//! short-lived form, so nothing is minted: the worker that moves the data gets the stored
//! fields from `RevealConnectorCredentials`.
//!
//! The base URL is the customer's, so the service must not become a way to reach its own
//! network: unless `allow_private_endpoints` is set (tests, or deployments whose WebDAV servers
//! sit on a private network), the URL must be `https` and its host must resolve to public
//! addresses only (no loopback, private, link-local, shared or unspecified ones).

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;

use super::{
    Error,
    credentials::{
        Access, CredentialFields, CredentialProvider, FieldError, FieldErrors, Identity, Parsed,
        Secrets, stored_text,
    },
    endpoints,
};

/// The credential field with the collection's URL.
pub const BASE_URL_FIELD: &str = "base_url";
/// The credential field with the username.
pub const USERNAME_FIELD: &str = "username";
/// The credential field with the password.
pub const PASSWORD_FIELD: &str = "password";

/// The body of the `PROPFIND` check: the resource type only.
const PROPFIND_BODY: &str = r#"<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:"><prop><resourcetype/></prop></propfind>"#;

/// Talks to WebDAV servers.
#[derive(Debug, Clone)]
pub struct WebDav {
    http: reqwest::Client,
    allow_private_endpoints: bool,
}

impl WebDav {
    /// A client; `allow_private_endpoints` lets base URLs use plain http and private addresses.
    pub fn new(http: reqwest::Client, allow_private_endpoints: bool) -> Self {
        Self {
            http,
            allow_private_endpoints,
        }
    }

    /// The normalised base URL: scheme and host lower case, no default port, no user,
    /// query or fragment, and a path that ends with `/`.
    fn base_url(&self, given: &str) -> Result<reqwest::Url, String> {
        let mut url = reqwest::Url::parse(given.trim())
            .map_err(|_| String::from("an absolute URL such as https://dav.example.com/files/"))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_private_endpoints => {}
            "http" => {
                return Err(
                    "must be https: the password would cross the network in the clear".into(),
                );
            }
            _ => return Err("must be an https URL".into()),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must name a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "must not carry a user or password: use the username and password fields".into(),
            );
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query or fragment".into());
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    }

    /// Refuses a host that resolves to an address of this service's own network.
    async fn check_public(&self, url: &reqwest::Url) -> Result<(), Error> {
        if self.allow_private_endpoints {
            return Ok(());
        }
        let host = url.host_str().unwrap_or_default();
        endpoints::ensure_public(
            host.trim_matches(['[', ']']),
            url.port_or_known_default().unwrap_or(443),
        )
        .await
    }
}

fn username(given: &str) -> Result<String, String> {
    if given.is_empty() || given.len() > 256 {
        return Err("1 to 256 characters".into());
    }
    if given.contains(':') || given.chars().any(char::is_control) {
        return Err("no colon or control characters (HTTP Basic cannot carry them)".into());
    }
    Ok(given.to_owned())
}

fn password(given: &str) -> Result<String, String> {
    if given.is_empty() || given.len() > 1024 {
        return Err("1 to 1024 characters".into());
    }
    Ok(given.to_owned())
}

#[async_trait::async_trait]
impl CredentialProvider for WebDav {
    fn secret_fields(&self) -> &'static [&'static str] {
        // All three: the worker needs them together.
        &[BASE_URL_FIELD, USERNAME_FIELD, PASSWORD_FIELD]
    }

    fn mints_access(&self) -> bool {
        false
    }

    fn parse(&self, fields: &CredentialFields) -> Result<Parsed, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        let mut check = |field, result| errors.check(field, result);
        let url = check(
            BASE_URL_FIELD,
            self.base_url(fields.get(BASE_URL_FIELD))
                .map(|url| url.to_string()),
        );
        let user = check(USERNAME_FIELD, username(fields.get(USERNAME_FIELD)));
        let pass = check(PASSWORD_FIELD, password(fields.get(PASSWORD_FIELD)));
        let (Some(url), Some(user), Some(pass)) = (url, user, pass) else {
            return Err(errors.into_errors());
        };
        // Once per account: the normalised URL with the user in it (never the password).
        let mut account = reqwest::Url::parse(&url).expect("normalised above");
        account
            .set_username(&user)
            .expect("an http(s) URL takes a user");
        Ok(Parsed {
            identity: Some(Identity {
                id: account.to_string(),
                label: account.to_string(),
                host_key: None,
            }),
            secrets: [
                (BASE_URL_FIELD, url.into_bytes().into()),
                (USERNAME_FIELD, user.into_bytes().into()),
                (PASSWORD_FIELD, pass.into_bytes().into()),
            ]
            .into(),
        })
    }

    async fn check(
        &self,
        _account: Option<&Identity>,
        secrets: &Secrets,
        _now: DateTime<Utc>,
    ) -> Result<Option<Identity>, Error> {
        let url = self
            .base_url(stored_text(secrets, BASE_URL_FIELD)?)
            .map_err(Error::Refused)?;
        self.check_public(&url).await?;
        let method = reqwest::Method::from_bytes(b"PROPFIND").expect("a valid method");
        let answer = self
            .http
            .request(method, url.clone())
            .basic_auth(
                stored_text(secrets, USERNAME_FIELD)?,
                Some(stored_text(secrets, PASSWORD_FIELD)?),
            )
            .header("Depth", "0")
            .header("Content-Type", "application/xml; charset=utf-8")
            .body(PROPFIND_BODY)
            .send()
            .await
            .map_err(|error| Error::Unavailable {
                message: format!(
                    "cannot reach the WebDAV server at {url}: {}",
                    error.without_url()
                ),
                retry_after: Duration::from_secs(30),
            })?;
        match answer.status() {
            StatusCode::MULTI_STATUS => Ok(None),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Error::CredentialsRejected(
                format!("the WebDAV server at {url} rejected the username or password"),
            )),
            status if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => {
                Err(Error::Unavailable {
                    message: format!("the WebDAV server at {url} answered {status}"),
                    retry_after: Duration::from_secs(30),
                })
            }
            status => Err(Error::Refused(format!(
                "no WebDAV collection at {url} (PROPFIND answered {status})"
            ))),
        }
    }

    async fn mint(
        &self,
        _external_account_id: &str,
        _secrets: &Secrets,
        _now: DateTime<Utc>,
    ) -> Result<Access, Error> {
        Err(Error::Protocol(
            "a WebDAV password has no short-lived form".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(url: &str, user: &str, pass: &str) -> CredentialFields {
        let mut fields = CredentialFields::default();
        fields.insert(BASE_URL_FIELD, url);
        fields.insert(USERNAME_FIELD, user);
        fields.insert(PASSWORD_FIELD, pass);
        fields
    }

    fn strict() -> WebDav {
        WebDav::new(reqwest::Client::new(), false)
    }

    #[test]
    fn the_account_is_the_normalised_url_with_the_user() {
        let parsed = strict()
            .parse(&fields("HTTPS://Dav.Example.COM:443/Files", "alice", "pw"))
            .expect("valid");
        assert_eq!(
            parsed.identity.clone().expect("named by the fields").id,
            "https://alice@dav.example.com/Files/"
        );
        assert!(!format!("{parsed:?}").contains("pw"));
    }

    #[test]
    fn bad_fields_are_reported_together_and_http_needs_the_opt_in() {
        let errors = strict()
            .parse(&fields("http://dav.example.com/", "a:b", ""))
            .expect_err("invalid");
        let named: Vec<_> = errors.iter().map(|error| error.field).collect();
        assert_eq!(named, [BASE_URL_FIELD, USERNAME_FIELD, PASSWORD_FIELD]);
        assert!(
            WebDav::new(reqwest::Client::new(), true)
                .parse(&fields("http://127.0.0.1:8080/", "alice", "pw"))
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_private_host_is_refused_before_any_request() {
        let mut secrets = Secrets::new();
        secrets.insert(BASE_URL_FIELD, b"https://127.0.0.1/dav/".to_vec().into());
        secrets.insert(USERNAME_FIELD, b"alice".to_vec().into());
        secrets.insert(PASSWORD_FIELD, b"pw".to_vec().into());
        let refused = strict().check(None, &secrets, Utc::now()).await;
        assert!(matches!(refused, Err(Error::Refused(_))), "{refused:?}");
    }
}
