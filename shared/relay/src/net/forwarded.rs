//! The client's address as a trusted proxy reports it on a WebSocket upgrade, without I/O:
//! `X-Forwarded-For` (each proxy appends the address it saw, so the right-most entry that is
//! not itself a trusted proxy is the client) or else RFC 7239 `Forwarded: for=`. The caller
//! asks only when the connection comes from a trusted proxy; from anyone else these headers
//! are whatever the client wrote.

use crate::net::rules;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The most header bytes of an upgrade request read before answering.
pub const MAX_HEAD: usize = 16 * 1024;

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, optionally in quotes.
fn address(entry: &str) -> Option<SocketAddr> {
    let entry = entry.trim().trim_matches('"');
    if let Ok(sa) = entry.parse::<SocketAddr>() {
        return Some(sa);
    }
    let bare = entry.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0))
}

/// The right-most entry not in `trusted`; `None` if an entry on the way does not parse (the
/// chain cannot be followed past it) or every entry is trusted.
fn rightmost_untrusted<'a>(
    entries: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> Option<SocketAddr> {
    for entry in entries.rev() {
        let addr = address(entry)?;
        if !rules::contains(trusted, addr.ip()) {
            return Some(addr);
        }
    }
    None
}

/// The `for=` values of `Forwarded` headers, in order.
fn forwarded_for(values: &[&str]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.trim().to_string())
            })
        })
        .collect()
}

/// The client's address from the `X-Forwarded-For` values `xff` or, without them, the
/// `Forwarded` values `forwarded`; `None` when neither names one.
pub fn client(xff: &[&str], forwarded: &[&str], trusted: &[IpNet]) -> Option<SocketAddr> {
    if !xff.is_empty() {
        let entries = xff.iter().flat_map(|v| v.split(','));
        let entries: Vec<&str> = entries.collect();
        return rightmost_untrusted(entries.into_iter(), trusted);
    }
    let fors = forwarded_for(forwarded);
    rightmost_untrusted(fors.iter().map(String::as_str), trusted)
}

/// A complete request head: its length, target, whether it asks for a WebSocket, and its
/// forwarding headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// Bytes up to and including the blank line.
    pub len: usize,
    /// The request target (`/sightline`, `/agent`, ...).
    pub path: String,
    /// Whether it asks to upgrade to WebSocket; a plain request is for the support page.
    pub upgrade: bool,
    /// `X-Forwarded-For` values, in order.
    pub xff: Vec<String>,
    /// `Forwarded` values, in order.
    pub forwarded: Vec<String>,
}

/// An upgrade request that is not HTTP, or too long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad upgrade request: {0}")]
pub struct HeadError(pub String);

/// Parses an HTTP request head at the start of `bytes`; `Ok(None)` while more are needed.
pub fn head(bytes: &[u8]) -> Result<Option<Head>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => {
            let mut h = Head {
                len,
                path: req.path.unwrap_or_default().to_owned(),
                ..Head::default()
            };
            for header in req.headers.iter() {
                let value = String::from_utf8_lossy(header.value).into_owned();
                if header.name.eq_ignore_ascii_case("upgrade") {
                    h.upgrade |= value.to_ascii_lowercase().contains("websocket");
                } else if header.name.eq_ignore_ascii_case("x-forwarded-for") {
                    h.xff.push(value);
                } else if header.name.eq_ignore_ascii_case("forwarded") {
                    h.forwarded.push(value);
                }
            }
            Ok(Some(h))
        }
        Ok(httparse::Status::Partial) if bytes.len() >= MAX_HEAD => {
            Err(HeadError(format!("head longer than {MAX_HEAD} bytes")))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(HeadError(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn rightmost_untrusted_entry_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        let c = client(&["203.0.113.9, 198.51.100.4, 10.1.1.1"], &[], &trusted);
        assert_eq!(c, Some("198.51.100.4:0".parse().unwrap()));
        // A header split over two lines is one list.
        let c = client(&["203.0.113.9", "10.1.1.1"], &[], &trusted);
        assert_eq!(c, Some("203.0.113.9:0".parse().unwrap()));
        assert_eq!(client(&["10.1.1.1"], &[], &trusted), None);
        assert_eq!(client(&["garbage, 10.1.1.1"], &[], &trusted), None);
        assert_eq!(client(&[], &[], &trusted), None);
    }

    #[test]
    fn forwarded_for_is_read_when_xff_is_absent() {
        let trusted = nets(&["10.0.0.0/8"]);
        let v = [r#"for=192.0.2.43;proto=https, for="[2001:db8:cafe::17]:4711";by=10.0.0.1"#];
        let c = client(&[], &v, &trusted);
        assert_eq!(c, Some("[2001:db8:cafe::17]:4711".parse().unwrap()));
        let c = client(&["198.51.100.4"], &v, &trusted);
        assert_eq!(c, Some("198.51.100.4:0".parse().unwrap()));
    }

    #[test]
    fn head_is_parsed_once_complete() {
        let req = b"GET /relay HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.1\r\n\r\nrest";
        assert_eq!(head(&req[..20]), Ok(None));
        let h = head(req).unwrap().unwrap();
        assert_eq!(h.len, req.len() - 4);
        assert_eq!(h.xff, vec!["192.0.2.1".to_string()]);
        assert!(head(b"\x00\x01 nonsense\r\n\r\n").is_err());
    }
}
