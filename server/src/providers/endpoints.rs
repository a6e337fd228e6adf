//! Customer-given endpoints (a WebDAV URL, an SFTP host) must not make this service a way into
//! its own network. Unless a deployment allows private endpoints (tests, or servers that sit on
//! a private network), such a host must resolve to public addresses only.

use std::net::IpAddr;
use std::time::Duration;

use super::Error;

/// Refuses (`Error::Refused`) a host that resolves to any address of a private network:
/// loopback, private, link-local, shared CGNAT, documentation, unspecified, broadcast or
/// multicast. `host` is a name or an address without brackets.
pub async fn ensure_public(host: &str, port: u16) -> Result<(), Error> {
    let addresses = tokio::net::lookup_host((host, port))
        .await
        .map_err(|error| Error::Unavailable {
            message: format!("cannot resolve `{host}`: {error}"),
            retry_after: Duration::from_secs(30),
        })?;
    for address in addresses {
        if !is_public(address.ip()) {
            return Err(Error::Refused(format!(
                "`{host}` resolves to {}, an address this service does not connect to",
                address.ip()
            )));
        }
    }
    Ok(())
}

/// Whether an address is on the public internet.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b))
                || a == 0)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn a_loopback_name_is_refused() {
        let refused = ensure_public("localhost", 22).await;
        assert!(matches!(refused, Err(Error::Refused(_))), "{refused:?}");
    }
}
