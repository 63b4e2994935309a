//! PROXY protocol v1 and v2 headers (a load balancer's word on who the client is), parsed
//! with the `ppp` crate, without I/O: [`parse`] says whether the bytes so far hold a whole
//! header, how long it is, and which source address it names.

use ppp::v1;
use ppp::v2;
use ppp::{HeaderResult, PartialResult};
use std::net::SocketAddr;

/// Longest header accepted: a v2 header with a few TLVs, or any v1 header (at most 107 bytes).
pub const MAX_HEADER: usize = 4096;

/// A header that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad PROXY header: {0}")]
pub struct ProxyError(pub String);

/// A complete header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// Its length in bytes; the connection's own bytes follow.
    pub len: usize,
    /// The client's address, when the header names one (not for `LOCAL` or `UNKNOWN`, health
    /// checks of the balancer itself).
    pub source: Option<SocketAddr>,
}

fn v1_source(addresses: &v1::Addresses) -> Option<SocketAddr> {
    match addresses {
        v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v1::Addresses::Unknown => None,
    }
}

fn v2_source(header: &v2::Header<'_>) -> Option<SocketAddr> {
    if header.command == v2::Command::Local {
        return None;
    }
    match header.addresses {
        v2::Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v2::Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    }
}

/// Parses a header at the start of `bytes`: `Ok(None)` while more bytes are needed.
pub fn parse(bytes: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    let result = HeaderResult::parse(bytes);
    if result.is_incomplete() {
        if bytes.len() >= MAX_HEADER {
            return Err(ProxyError(format!("longer than {MAX_HEADER} bytes")));
        }
        return Ok(None);
    }
    match result {
        HeaderResult::V1(Ok(h)) => Ok(Some(ProxyHeader {
            len: h.header.len(),
            source: v1_source(&h.addresses),
        })),
        HeaderResult::V2(Ok(h)) => Ok(Some(ProxyHeader {
            len: h.len(),
            source: v2_source(&h),
        })),
        HeaderResult::V1(Err(e)) => Err(ProxyError(e.to_string())),
        HeaderResult::V2(Err(e)) => Err(ProxyError(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_names_the_source_and_its_length() {
        let text = b"PROXY TCP4 192.0.2.7 198.51.100.1 5555 443\r\nrest";
        let h = parse(text).unwrap().unwrap();
        assert_eq!(h.len, text.len() - 4);
        assert_eq!(h.source, Some("192.0.2.7:5555".parse().unwrap()));
        assert_eq!(parse(b"PROXY TCP4 192.0.2.7 198"), Ok(None));
        assert!(parse(b"PROXY BOGUS\r\n").is_err());
    }

    #[test]
    fn v2_names_the_source_and_local_names_none() {
        let src: SocketAddr = "[2001:db8::7]:4000".parse().unwrap();
        let dst: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        let mut bytes = v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Proxy,
            v2::Protocol::Stream,
            (src, dst),
        )
        .build()
        .unwrap();
        let len = bytes.len();
        assert_eq!(parse(&bytes[..len - 1]), Ok(None));
        bytes.extend_from_slice(b"noise");
        let h = parse(&bytes).unwrap().unwrap();
        assert_eq!((h.len, h.source), (len, Some(src)));
        let local = v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Local,
            v2::Protocol::Stream,
            (src, dst),
        )
        .build()
        .unwrap();
        assert_eq!(parse(&local).unwrap().unwrap().source, None);
    }
}
