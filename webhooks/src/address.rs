//! Where deliveries may go: public addresses only, so that an admin (or whoever takes an
//! admin's token) cannot aim the workers at loopback, the internal network or the cloud
//! metadata service (`169.254.169.254`) and read what answers there (SSRF). Checked
//! twice: at registration for hosts that need no lookup (IP literals, `localhost`), and
//! at connect time for every address a name resolves to (`workers/src/egress.rs`), so a
//! name that resolves, or later re-resolves, to an internal address is refused too.
//! `WEBHOOK_ALLOW_PRIVATE_NETWORKS=true` lifts both checks, for development and tests
//! whose receivers listen on `127.0.0.1`.

use runtime::{ConfigError, env_parse};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// The setting that lets deliveries reach internal addresses.
pub const ALLOW_PRIVATE_NETWORKS: &str = "WEBHOOK_ALLOW_PRIVATE_NETWORKS";

/// Which addresses webhook URLs may point at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NetworkPolicy {
    /// Public addresses only (the default).
    #[default]
    PublicOnly,
    /// Any address, loopback and private networks included.
    AllowPrivate,
}

/// Why a delivery was not made: its host is, or resolves only to, an internal address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "address not allowed: {host} is or resolves only to loopback, private, link-local or other \
     internal addresses (WEBHOOK_ALLOW_PRIVATE_NETWORKS is off)"
)]
pub struct NotAllowed {
    /// The host of the URL, as written there.
    pub host: String,
}

impl NetworkPolicy {
    /// `WEBHOOK_ALLOW_PRIVATE_NETWORKS` (default `false`).
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::allowing_private(env_parse(ALLOW_PRIVATE_NETWORKS, false)?))
    }

    /// [`NetworkPolicy::AllowPrivate`] when `allow`, else [`NetworkPolicy::PublicOnly`].
    pub fn allowing_private(allow: bool) -> Self {
        if allow {
            Self::AllowPrivate
        } else {
            Self::PublicOnly
        }
    }

    /// Whether a connection to `ip` may be made.
    pub fn allows(self, ip: IpAddr) -> bool {
        self == Self::AllowPrivate || !is_internal(ip)
    }

    /// Refuses a URL whose host is known to be internal without a lookup: an IP literal
    /// in an internal range, or `localhost` and names under it. Other names are checked
    /// when they are resolved.
    pub fn check_url(self, url: &Url) -> Result<(), NotAllowed> {
        if self == Self::AllowPrivate {
            return Ok(());
        }
        let refused = match url.host() {
            Some(Host::Ipv4(ip)) => is_internal(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => is_internal(IpAddr::V6(ip)),
            Some(Host::Domain(name)) => is_localhost(name),
            None => false,
        };
        match refused {
            true => Err(NotAllowed {
                host: url.host_str().unwrap_or_default().to_owned(),
            }),
            false => Ok(()),
        }
    }
}

/// `localhost`, or a name under it (RFC 6761 has them all resolve to loopback).
fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether `ip` is loopback, private (10/8, 172.16/12, 192.168/16), link-local
/// (169.254/16, fe80::/10), shared address space (CGNAT, 100.64/10), unique-local
/// (fc00::/7), site-local (fec0::/10, deprecated but still routed inside some
/// networks), multicast, unspecified, "this network" (0/8) or broadcast. An IPv4 address
/// carried in IPv6 (mapped, `::ffff:10.0.0.1`, or behind the NAT64 prefix
/// `64:ff9b::/96`) is judged as that IPv4 address.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_internal_v4(ip),
        IpAddr::V6(ip) => match embedded_v4(ip) {
            Some(v4) => is_internal_v4(v4),
            None => is_internal_v6(ip),
        },
    }
}

/// The IPv4 address an IPv4-mapped or NAT64 (well-known prefix) address stands for.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let octets = ip.octets();
    let nat64 = [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0];
    (octets[..12] == nat64).then(|| Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]))
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        // 0.0.0.0/8: "this network"; connecting to 0.0.0.0 reaches the host itself.
        || a == 0
        // 100.64.0.0/10: shared address space (carrier-grade NAT).
        || (a == 100 && (b & 0b1100_0000) == 64)
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fe80::/10: link-local.
        || (first & 0xffc0) == 0xfe80
        // fc00::/7: unique local.
        || (first & 0xfe00) == 0xfc00
        // fec0::/10: site-local.
        || (first & 0xffc0) == 0xfec0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an IP address")
    }

    #[test]
    fn internal_addresses_of_every_refused_range_are_recognised() {
        for internal in [
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "fec0::1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::10.0.0.1",
        ] {
            assert!(is_internal(ip(internal)), "{internal} is internal");
        }
    }

    #[test]
    fn public_addresses_next_to_the_refused_ranges_are_allowed() {
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.167.255.255",
            "192.169.0.1",
            "169.253.255.255",
            "169.255.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "fbff::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!is_internal(ip(public)), "{public} is public");
        }
    }

    #[test]
    fn allowing_private_networks_allows_every_address() {
        assert!(!NetworkPolicy::PublicOnly.allows(ip("127.0.0.1")));
        assert!(NetworkPolicy::PublicOnly.allows(ip("93.184.216.34")));
        assert!(NetworkPolicy::AllowPrivate.allows(ip("127.0.0.1")));
        assert!(NetworkPolicy::AllowPrivate.allows(ip("169.254.169.254")));
        assert_eq!(NetworkPolicy::default(), NetworkPolicy::PublicOnly);
        assert_eq!(NetworkPolicy::allowing_private(true), NetworkPolicy::AllowPrivate);
    }

    #[test]
    fn urls_naming_internal_hosts_are_refused_without_a_lookup() {
        let check = |raw: &str| NetworkPolicy::PublicOnly.check_url(&Url::parse(raw).expect("a URL"));
        for refused in [
            "http://127.0.0.1:9000/in",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://[fd00::1]:8080/",
            "http://10.1.2.3/",
            // WHATWG URL parsing turns these into 127.0.0.1.
            "http://2130706433/",
            "http://0x7f.1/",
            "http://localhost:8080/",
            "http://LOCALHOST./",
            "http://api.localhost/",
        ] {
            let error = check(refused).expect_err(refused);
            assert!(error.to_string().starts_with("address not allowed"), "{error}");
        }
        for allowed in [
            "https://example.com/hooks",
            "https://93.184.216.34/",
            "http://localhost.example.com/",
        ] {
            assert_eq!(check(allowed), Ok(()), "{allowed}");
        }
        let local = Url::parse("http://127.0.0.1:9000/").expect("a URL");
        assert_eq!(NetworkPolicy::AllowPrivate.check_url(&local), Ok(()));
    }
}
