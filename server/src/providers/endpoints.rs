//! Customer-given endpoints (a WebDAV URL, an SFTP host) must not make this service a way into
//! its own network. Unless a deployment allows private endpoints (tests, or servers that sit on
//! a private network), such a host must resolve to public addresses only.
//!
//! The check and the connection use the same lookup: [`resolve`] returns the addresses it
//! checked and the caller connects to those, so a name that answers a public address to the
//! check and a private one a moment later (DNS rebinding) cannot slip through.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::Error;

/// Looks `host` up once and returns its addresses with `port`. Unless `allow_private`, refuses
/// ([`Error::EndpointNotAllowed`], naming the credential field `field`) a host with any address
/// of a private network: loopback, private, link-local, shared CGNAT, documentation,
/// unspecified, broadcast or multicast, also when it is embedded in an IPv6 translation
/// address. `host` is a name or an address without brackets.
pub async fn resolve(
    host: &str,
    port: u16,
    field: &'static str,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Error> {
    let unresolved = |why: String| Error::Unavailable {
        message: format!("cannot resolve `{host}`: {why}"),
        retry_after: Duration::from_secs(30),
    };
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|error| unresolved(error.to_string()))?
        .collect();
    if addresses.is_empty() {
        return Err(unresolved("no addresses".into()));
    }
    let private = addresses.iter().find(|address| !is_public(address.ip()));
    if let (false, Some(private)) = (allow_private, private) {
        return Err(Error::EndpointNotAllowed {
            field,
            rule: format!(
                "`{host}` resolves to {}, an address of a private network; this service connects only to public addresses (allow_private_endpoints is off)",
                private.ip()
            ),
        });
    }
    Ok(addresses)
}

/// Whether an address is on the public internet.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && v4.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
        || a == 0
        || a >= 240)
}

/// The IPv4 address an IPv6 address stands for, where it is a way of reaching IPv4:
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated but still
/// routed by some stacks), NAT64's well-known prefix (`64:ff9b::/96`, RFC 6052) and 6to4
/// (`2002:AABB:CCDD::/48`, RFC 3056). A NAT64 gateway or 6to4 relay would carry the packets
/// to that IPv4 address, so it is what must be public.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(mapped) = v6.to_ipv4_mapped() {
        return Some(mapped);
    }
    // `::` and `::1` are IPv6's own unspecified and loopback, handled as IPv6.
    if s[..6] == [0; 6] && !(v6.is_unspecified() || v6.is_loopback()) {
        return Some(low);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

fn is_public_v6(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    !(v6.is_loopback()
        || v6.is_unspecified()
        || v6.is_multicast()
        // Unique local (fc00::/7), link-local (fe80::/10), the old site-local (fec0::/10).
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        // Documentation (2001:db8::/32).
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        // Teredo (2001::/32): the IPv4 it reaches is obfuscated and picked by a relay.
        || (s[0] == 0x2001 && s[1] == 0)
        // NAT64 for local use (64:ff9b:1::/48, RFC 8215): a private network's own translator.
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        // Discard-only (100::/64).
        || s[..4] == [0x100, 0, 0, 0])
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
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn ipv6_translation_addresses_are_judged_by_the_ipv4_they_reach() {
        for private in [
            // NAT64, well-known prefix, to loopback, a private network and the metadata address.
            "64:ff9b::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            // NAT64 for local use: never public.
            "64:ff9b:1::1",
            "64:ff9b:1:ffff::5db8:d822",
            // 6to4 of 127.0.0.1, 192.168.0.1 and 10.0.0.1.
            "2002:7f00:1::",
            "2002:c0a8:1::1",
            "2002:a00:1:1::1",
            // IPv4-compatible.
            "::127.0.0.1",
            "::10.0.0.1",
            "::192.168.1.1",
            // Teredo.
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "64:ff9b::93.184.216.34",
            "2002:5db8:d822::1",
            "::93.184.216.34",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn a_loopback_name_is_refused_unless_private_endpoints_are_allowed() {
        let refused = resolve("localhost", 22, "host", false).await;
        assert!(
            matches!(
                refused,
                Err(Error::EndpointNotAllowed { field: "host", .. })
            ),
            "{refused:?}"
        );
        for loopback in ["::127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1"] {
            let refused = resolve(loopback, 22, "host", false).await;
            assert!(
                matches!(refused, Err(Error::EndpointNotAllowed { .. })),
                "{loopback}: {refused:?}"
            );
        }
        let allowed = resolve("127.0.0.1", 22, "host", true)
            .await
            .expect("allowed");
        assert_eq!(allowed, [SocketAddr::from(([127, 0, 0, 1], 22))]);
    }
}
