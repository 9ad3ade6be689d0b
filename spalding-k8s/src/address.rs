//! Which network addresses a partner endpoint may resolve to.
//!
//! Partner endpoints come from a VC spec that any user with write access to
//! it can set, and Spalding fetches them from inside the cluster: without a
//! policy, an endpoint could point Spalding at the cloud metadata service
//! (169.254.169.254), the API server or any internal service (server-side
//! request forgery). By default only public unicast addresses are allowed;
//! loopback, link-local, private (RFC 1918, unique local), shared (CGNAT),
//! unspecified, multicast and documentation ranges are refused unless the
//! operator allows private networks explicitly (as `spalding simulate` does
//! for loopback). The check runs on every DNS answer the HTTP client uses, so
//! a name that later resolves elsewhere (DNS rebinding) is caught too, and on
//! IP literals in URLs.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is a public unicast address a partner may live at.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64 (maps to IPv4, possibly private)
}

/// A DNS resolver for the partner transport that drops every non-public
/// address unless private networks are allowed.
#[derive(Debug, Clone, Copy)]
pub struct PolicyResolver {
    /// Allow loopback, link-local and private addresses.
    pub allow_private: bool,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                let shown: Vec<String> = resolved.iter().map(|a| a.ip().to_string()).collect();
                return Err(Box::new(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{host} resolves only to non-public addresses ({}); private partner addresses are not allowed",
                        shown.join(", ")
                    ),
                ))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn refuses_internal_ranges_and_accepts_public_ones() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            assert!(
                !is_public(internal.parse().unwrap()),
                "{internal} must be refused"
            );
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(
                is_public(public.parse().unwrap()),
                "{public} must be accepted"
            );
        }
    }

    #[tokio::test]
    async fn resolver_drops_loopback_unless_allowed() {
        let name = || "localhost".parse::<Name>().unwrap();
        let refused = PolicyResolver {
            allow_private: false,
        }
        .resolve(name())
        .await;
        let message = refused.err().unwrap().to_string();
        assert!(message.contains("non-public"), "{message}");
        let allowed = PolicyResolver {
            allow_private: true,
        }
        .resolve(name())
        .await
        .unwrap();
        assert!(allowed.into_iter().all(|a| a.ip().is_loopback()));
    }
}
