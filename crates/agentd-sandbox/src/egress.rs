//! Egress policy: which host names a run may reach through its proxy (`Egress`, per run)
//! and which addresses no run may reach whatever its host list says (the deny list, with
//! the operator's exemptions in `EgressSettings`). The proxy itself is `egress_proxy.rs`;
//! the bridge that carries TCP from inside the run to it is `loopback_bridge.rs`.
//!
//! Two checks, both on the host side: the requested name must be on the run's list, and
//! every address it resolves to must be outside the denied ranges (loopback, private,
//! link-local and metadata, CGNAT, multicast, reserved, and the IPv6 forms that embed or
//! map to them). A name that resolves to one bad address among good ones is refused: the
//! proxy connects only to addresses it vetted, so a DNS answer cannot steer it inward.

use std::net::IpAddr;

pub(crate) use agentd_core::net::is_denied;
pub use agentd_core::net::{InvalidNetwork, IpNetwork};

/// Network access of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Egress {
    /// Loopback only (the default).
    #[default]
    Denied,
    /// HTTP(S) through the run's proxy to these host names (case-insensitive; `*.example.com`
    /// matches every subdomain of `example.com`, not `example.com` itself; an IP literal
    /// matches only itself). The run still has no interface but loopback.
    AllowHosts(Vec<String>),
}

/// Operator settings of the egress proxy, shared by every run of a `Sandbox`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressSettings {
    /// Networks exempted from the deny list, e.g. an internal package mirror at
    /// `10.1.2.3/32`. Empty by default: private, loopback and link-local stay unreachable.
    pub allowed_networks: Vec<IpNetwork>,
    /// Fixed answers used instead of DNS for these names (like curl's `--resolve`), for
    /// split-horizon setups and tests. The deny list still applies to them.
    pub resolve: Vec<(String, IpAddr)>,
}

/// Whether `host` (lowercase, no trailing dot) is on the run's list.
pub(crate) fn host_allowed(host: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|entry| {
        let entry = entry.trim_end_matches('.').to_ascii_lowercase();
        match entry.strip_prefix("*.") {
            Some(domain) => host.len() > domain.len() + 1 && host.ends_with(&format!(".{domain}")),
            None => host == entry,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(ip: &str) -> bool {
        is_denied(ip.parse().unwrap(), &[])
    }

    #[test]
    fn internal_addresses_are_denied_and_public_ones_are_not() {
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::10.0.0.1",
            "2002:c0a8:0101::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(denied(ip), "{ip} should be denied");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!denied(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn exempted_networks_lift_the_deny_list_for_their_addresses_only() {
        let exempt = ["127.0.0.2/32".parse().unwrap(), "10.1.0.0/16".parse().unwrap()];
        assert!(!is_denied("127.0.0.2".parse().unwrap(), &exempt));
        assert!(!is_denied("::ffff:127.0.0.2".parse().unwrap(), &exempt));
        assert!(!is_denied("10.1.200.3".parse().unwrap(), &exempt));
        assert!(is_denied("127.0.0.1".parse().unwrap(), &exempt));
        assert!(is_denied("10.2.0.1".parse().unwrap(), &exempt));
    }

    #[test]
    fn networks_parse_from_cidr_or_bare_addresses() {
        let net: IpNetwork = "10.1.2.3/16".parse().unwrap();
        assert_eq!(net.to_string(), "10.1.0.0/16");
        assert_eq!("127.0.0.2".parse::<IpNetwork>().unwrap().to_string(), "127.0.0.2/32");
        assert_eq!("fd00::/8".parse::<IpNetwork>().unwrap().to_string(), "fd00::/8");
        assert!("0.0.0.0/0".parse::<IpNetwork>().unwrap().contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "example.com", "10.0.0.0/", "10.0.0.0/+8"] {
            assert!(bad.parse::<IpNetwork>().is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_match_exactly_or_as_subdomains_of_a_wildcard() {
        let allowed = ["api.example.com".to_owned(), "*.Files.example.org".to_owned()];
        assert!(host_allowed("api.example.com", &allowed));
        assert!(host_allowed("a.files.example.org", &allowed));
        assert!(host_allowed("a.b.files.example.org", &allowed));
        assert!(!host_allowed("files.example.org", &allowed));
        assert!(!host_allowed("evilfiles.example.org", &allowed));
        assert!(!host_allowed("example.com", &allowed));
        assert!(!host_allowed("api.example.com.evil.net", &allowed));
    }
}
