//! Provider endpoints from configuration: absolute URLs, and `https` unless the endpoint is on
//! this machine (an emulator) or the operator allowed plain http, since account keys, client
//! secrets and tokens cross them.

use super::{Section, SectionError, Shared};

/// The URL at `key`, or `default`; refused when it would carry secrets in the clear. A
/// template's `{account}` is checked as if it were an account name.
pub(super) fn url(
    section: &Section,
    key: &str,
    default: &str,
    shared: &Shared<'_>,
) -> Result<String, SectionError> {
    let endpoint = section.string(key)?.unwrap_or_else(|| default.to_owned());
    check(section, key, &endpoint, shared)?;
    Ok(endpoint)
}

/// The optional URL at `key`, checked as [`url`] does.
pub(super) fn optional_url(
    section: &Section,
    key: &str,
    shared: &Shared<'_>,
) -> Result<Option<String>, SectionError> {
    let Some(endpoint) = section.string(key)? else {
        return Ok(None);
    };
    check(section, key, &endpoint, shared)?;
    Ok(Some(endpoint))
}

fn check(
    section: &Section,
    key: &str,
    endpoint: &str,
    shared: &Shared<'_>,
) -> Result<(), SectionError> {
    let origin = section.origin(key);
    let parsed = url::Url::parse(&endpoint.replace("{account}", "account"))
        .ok()
        .filter(|url| url.host().is_some())
        .ok_or_else(|| SectionError(format!("{origin} `{endpoint}` is not an absolute URL")))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if shared.allow_insecure_endpoints || is_loopback(&parsed) => Ok(()),
        "http" => Err(SectionError(format!(
            "{origin} `{endpoint}` is plain http: secrets would cross the network unencrypted; \
             use https (or set allow_insecure_endpoints for an emulator)"
        ))),
        other => Err(SectionError(format!(
            "{origin} `{endpoint}` has unsupported scheme `{other}`"
        ))),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_endpoints_must_be_https_except_on_loopback() {
        let http = reqwest::Client::new();
        let mut shared = Shared {
            http: &http,
            provider_timeout: std::time::Duration::from_secs(1),
            allow_insecure_endpoints: false,
            allow_private_endpoints: false,
        };
        let mut section = Section::new("example");
        let mut with = |url: &str| {
            section.set("url", toml::Value::String(url.into()), "example_url".into());
            section.clone()
        };
        for local in [
            "http://127.0.0.1:10000/{account}",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            assert!(
                url(&with(local), "url", "", &shared).is_ok(),
                "an emulator on this machine"
            );
        }
        let remote = with("http://azurite:10000/{account}");
        let refused = url(&remote, "url", "", &shared).expect_err("plain http over a network");
        assert!(
            refused.0.starts_with("example_url `http://azurite"),
            "{refused}"
        );
        assert!(refused.0.contains("plain http"), "{refused}");
        assert!(
            url(
                &Section::new("example"),
                "url",
                "https://example.com",
                &shared
            )
            .is_ok()
        );
        assert!(url(&with("ftp://example.com"), "url", "", &shared).is_err());
        assert!(url(&with("/relative"), "url", "", &shared).is_err());
        shared.allow_insecure_endpoints = true;
        assert!(
            url(&remote, "url", "", &shared).is_ok(),
            "explicitly allowed"
        );
    }
}
