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
//! addresses only (no loopback, private, link-local, shared or unspecified ones). The request
//! goes to the addresses that were checked (the HTTP client is pinned to them), never to a
//! second lookup's answer.
//!
//! Once per account means once per collection, however its URL is written: scheme and host
//! in lower case, no default port, dot segments removed, and percent-encoded unreserved
//! characters decoded (RFC 3986 §6.2.2), so `/%64av/` and `/dav/` are one account.

use std::net::SocketAddr;
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
    /// How long a check may take (the service's `provider_timeout`).
    timeout: Duration,
    allow_private_endpoints: bool,
}

impl WebDav {
    /// A client; `allow_private_endpoints` lets base URLs use plain http and private addresses,
    /// and a check gives up after `timeout`.
    pub fn new(timeout: Duration, allow_private_endpoints: bool) -> Self {
        Self {
            timeout,
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
        let mut path = decode_unreserved(url.path());
        if !path.ends_with('/') {
            path.push('/');
        }
        url.set_path(&path);
        // Decoding may have formed dot segments (`%2E%2E`): parse again to remove them.
        reqwest::Url::parse(url.as_str()).map_err(|_| String::from("not a valid URL"))
    }

    /// The addresses the base URL's host resolves to, refused when private (unless allowed).
    async fn addresses(&self, url: &reqwest::Url) -> Result<Vec<SocketAddr>, Error> {
        let host = url.host_str().unwrap_or_default();
        endpoints::resolve(
            host.trim_matches(['[', ']']),
            url.port_or_known_default().unwrap_or(443),
            BASE_URL_FIELD,
            self.allow_private_endpoints,
        )
        .await
    }

    /// An HTTP client that connects `url`'s host only to `addresses`.
    fn pinned_client(
        &self,
        url: &reqwest::Url,
        addresses: &[SocketAddr],
    ) -> Result<reqwest::Client, Error> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .resolve_to_addrs(url.host_str().unwrap_or_default(), addresses)
            .build()
            .map_err(|error| Error::Protocol(format!("cannot build an HTTP client: {error}")))
    }
}

/// Decodes percent-encoded unreserved characters (ALPHA, DIGIT, `-`, `.`, `_`, `~`) and writes
/// the hex digits of the other escapes in upper case: RFC 3986's normalisations §6.2.2.1-2,
/// which never change what a URL names.
fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut normal = String::with_capacity(path.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = (bytes[at] == b'%')
            .then(|| path.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok().map(|byte| (hex, byte)));
        match escaped {
            Some((_, byte)) if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) => {
                normal.push(char::from(byte));
                at += 3;
            }
            Some((hex, _)) => {
                normal.push('%');
                normal.push_str(&hex.to_ascii_uppercase());
                at += 3;
            }
            None => {
                let next = path[at..].chars().next().expect("a char boundary");
                normal.push(next);
                at += next.len_utf8();
            }
        }
    }
    normal
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

    fn pinned(&self) -> Option<&'static super::credentials::PinnedAttribute> {
        None
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
                pinned: None,
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
        let addresses = self.addresses(&url).await?;
        let method = reqwest::Method::from_bytes(b"PROPFIND").expect("a valid method");
        let answer = self
            .pinned_client(&url, &addresses)?
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
        WebDav::new(Duration::from_secs(5), false)
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
            WebDav::new(Duration::from_secs(5), true)
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
        assert!(
            matches!(
                refused,
                Err(Error::EndpointNotAllowed {
                    field: BASE_URL_FIELD,
                    ..
                })
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn percent_encoded_unreserved_characters_name_the_same_collection() {
        let account = |url: &str| {
            strict()
                .parse(&fields(url, "alice", "pw"))
                .expect("valid")
                .identity
                .expect("named")
                .id
        };
        let plain = account("https://dav.example.com/dav/");
        for same in [
            "https://dav.example.com/%64av/",
            "https://dav.example.com/x/../dav",
            "https://dav.example.com/x/%2E%2E/dav/",
            "https://dav.example.com/./d%61v/",
        ] {
            assert_eq!(account(same), plain, "{same}");
        }
        // Reserved characters stay escaped (an escaped `/` is not a separator), in upper case.
        assert_eq!(
            account("https://dav.example.com/a%2fb/%c3%a9/"),
            "https://alice@dav.example.com/a%2Fb/%C3%A9/"
        );
        assert_ne!(
            account("https://dav.example.com/a%2Fb/"),
            account("https://dav.example.com/a/b/")
        );
    }

    #[tokio::test]
    async fn the_request_goes_to_the_checked_address_not_to_a_new_lookup() {
        // A name no resolver knows: the request can only arrive if the client is pinned.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let served = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let (mut stream, _) = listener.accept().await.expect("a connection");
            let mut request = vec![0; 4096];
            let read = stream.read(&mut request).await.expect("read");
            stream
                .write_all(b"HTTP/1.1 207 Multi-Status\r\ncontent-length: 0\r\n\r\n")
                .await
                .expect("write");
            String::from_utf8_lossy(&request[..read]).into_owned()
        });
        let url = reqwest::Url::parse(&format!(
            "http://dav.rebinding.invalid:{}/dav/",
            address.port()
        ))
        .expect("url");
        let answer = WebDav::new(Duration::from_secs(5), true)
            .pinned_client(&url, &[address])
            .expect("client")
            .get(url)
            .send()
            .await
            .expect("sent to the pinned address");
        assert_eq!(answer.status(), StatusCode::MULTI_STATUS);
        let request = served.await.expect("served");
        assert!(request.contains("host: dav.rebinding.invalid"), "{request}");
    }
}
