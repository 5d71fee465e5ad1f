//! `allowed_hosts`: the addresses and CIDR ranges a client may connect
//! from, as in NRPE's `allowed_hosts`. Host names are refused when the
//! config is read: resolving them would make who gets in depend on DNS at
//! start-up time.
//!
//! Written here rather than taken from a crate: matching an address against
//! a prefix is a shift and a compare, less code than adapting a crate's
//! types would be.

use std::fmt;
use std::net::IpAddr;

/// One entry: an address, or a network written `ADDRESS/PREFIX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPattern {
    network: IpAddr,
    prefix: u8,
}

impl HostPattern {
    /// Parses `10.0.0.0/8`, `192.0.2.7`, `::1` or `fd00::/8`.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| {
            format!(
                "{text:?} is not an IP address or a CIDR range like \"10.0.0.0/8\" \
                 (host names are not resolved)"
            )
        })?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => match prefix.trim().parse::<u8>() {
                Ok(prefix) if prefix <= max => prefix,
                _ => return Err(format!("{text:?} has a prefix length that is not 0 to {max}")),
            },
        };
        Ok(HostPattern { network, prefix })
    }

    /// Whether `address` is this address or inside this network. An
    /// IPv4-mapped IPv6 address (a client reaching an `[::]` listener over
    /// IPv4) counts as the IPv4 address it carries.
    pub fn matches(&self, address: IpAddr) -> bool {
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                masked(u32::from(network).into(), 32, self.prefix)
                    == masked(u32::from(address).into(), 32, self.prefix)
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                masked(network.into(), 128, self.prefix) == masked(address.into(), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `width`-bit address.
fn masked(address: u128, width: u32, prefix: u8) -> u128 {
    let host_bits = width - u32::from(prefix);
    address.checked_shr(host_bits).unwrap_or(0)
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.network.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

/// Whether any of `allowed` lets `address` in.
pub fn allowed(allowed: &[HostPattern], address: IpAddr) -> bool {
    allowed.iter().any(|pattern| pattern.matches(address))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_and_ranges_match_like_nrpe() {
        let list: Vec<_> = ["127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8", "0.0.0.0/0"][..4]
            .iter()
            .map(|text| HostPattern::parse(text).unwrap())
            .collect();
        assert!(allowed(&list, ip("127.0.0.1")));
        assert!(!allowed(&list, ip("127.0.0.2")));
        assert!(allowed(&list, ip("10.200.3.4")));
        assert!(!allowed(&list, ip("11.0.0.1")));
        assert!(allowed(&list, ip("::1")));
        assert!(allowed(&list, ip("fd12::5")));
        assert!(!allowed(&list, ip("fe80::1")));
        assert!(allowed(&list, ip("::ffff:10.1.1.1")), "IPv4-mapped counts as IPv4");
        let everyone = HostPattern::parse("0.0.0.0/0").unwrap();
        assert!(everyone.matches(ip("203.0.113.9")));
        assert!(!everyone.matches(ip("2001:db8::1")));
    }

    #[test]
    fn names_and_bad_prefixes_are_refused_and_patterns_print_as_written() {
        assert!(HostPattern::parse("nagios.example.org").unwrap_err().contains("not resolved"));
        assert!(HostPattern::parse("10.0.0.0/33").unwrap_err().contains("0 to 32"));
        assert!(HostPattern::parse("::/129").unwrap_err().contains("0 to 128"));
        assert_eq!(HostPattern::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(HostPattern::parse("::1").unwrap().to_string(), "::1");
    }
}
