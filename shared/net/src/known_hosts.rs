//! The text format of the viewer's known-hosts file (the LAN-only agents it knows and their
//! key fingerprints): one `ADDRESS FINGERPRINT` per line, blank lines and `#` comments kept.
//! Reading and writing the file, and deciding about a presented key, are the viewer's
//! (`viewer/src/known_hosts.rs`); the format lives here, beside the address parser it uses, so
//! that it can be fuzzed without the viewer's window stack.

use crate::address::HostPort;
use sightline_core::identity::Fingerprint;
use std::net::IpAddr;

/// The first lines of a new file.
const HEADER: &str =
    "# Sightline viewer: keys of LAN-only agents, one `ADDRESS FINGERPRINT` per line.\n\
# Remove an agent's line to forget its key (then the next connection asks again).\n";

/// The key under which an address is stored: `host:port` with host names in lower case and
/// IP addresses in their canonical form, so that one agent has one entry however it is typed.
pub fn address_key(address: &HostPort) -> String {
    let host = address.host();
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", address.port()),
        Ok(IpAddr::V4(ip)) => format!("{ip}:{}", address.port()),
        Err(_) => format!("{}:{}", host.to_ascii_lowercase(), address.port()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Entry {
        address: String,
        fingerprint: Fingerprint,
    },
    /// A blank line or a comment, kept as it was.
    Other(String),
}

/// The known agents, as read from the file (comments included, in order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    lines: Vec<Line>,
}

impl KnownHosts {
    /// Parses the file's text; the error names the first bad line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                // A stray carriage return at the end would not survive a write and a read
                // (found by fuzzing): comments are kept without it.
                lines.push(Line::Other(raw.trim_end_matches('\r').to_string()));
                continue;
            }
            let mut fields = trimmed.split_whitespace();
            let (Some(address), Some(fp), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(format!("line {n}: expected `ADDRESS FINGERPRINT`"));
            };
            let parsed: HostPort = address
                .parse()
                .map_err(|e| format!("line {n}: bad address: {e}"))?;
            let address = address_key(&parsed);
            let fingerprint = fp.parse::<Fingerprint>().map_err(|_| {
                format!("line {n}: {fp:?} is not a key fingerprint (64 hex digits)")
            })?;
            if !seen.insert(address.clone()) {
                return Err(format!("line {n}: a second entry for {address}"));
            }
            lines.push(Line::Entry {
                address,
                fingerprint,
            });
        }
        Ok(Self { lines })
    }

    /// The fingerprint stored for `address`.
    pub fn get(&self, address: &HostPort) -> Option<Fingerprint> {
        let key = address_key(address);
        self.lines.iter().find_map(|l| match l {
            Line::Entry {
                address,
                fingerprint,
            } if *address == key => Some(*fingerprint),
            _ => None,
        })
    }

    /// Stores `fingerprint` for `address`: in place of its line when there is one, else at
    /// the end.
    pub fn set(&mut self, address: &HostPort, fingerprint: Fingerprint) {
        let key = address_key(address);
        for line in &mut self.lines {
            if let Line::Entry {
                address,
                fingerprint: fp,
            } = line
            {
                if *address == key {
                    *fp = fingerprint;
                    return;
                }
            }
        }
        if self.lines.is_empty() {
            self.lines
                .extend(HEADER.lines().map(|l| Line::Other(l.to_string())));
        }
        self.lines.push(Line::Entry {
            address: key,
            fingerprint,
        });
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Entry {
                    address,
                    fingerprint,
                } => out.push_str(&format!("{address} {fingerprint}\n")),
                Line::Other(text) => {
                    out.push_str(text);
                    out.push('\n');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_text_round_trips_and_duplicates_are_refused() {
        let fp = "ab".repeat(32);
        let text = format!("# kiosks\n\nKiosk.LAN:7615 {fp}\n[fd00::0020]:7615 {fp}\n");
        let hosts = KnownHosts::parse(&text).unwrap();
        let addr: HostPort = "kiosk.lan".parse().unwrap();
        assert_eq!(hosts.get(&addr).map(|f| f.to_string()), Some(fp.clone()));
        let again = KnownHosts::parse(&hosts.to_text()).unwrap();
        assert_eq!(again, hosts);
        // A comment ending in a lone carriage return (the fuzzer's find) reads back the same.
        let cr = KnownHosts::parse("# a comment\r").unwrap();
        assert_eq!(KnownHosts::parse(&cr.to_text()).unwrap(), cr);
        let dup = format!("kiosk.lan {fp}\nKIOSK.lan:7615 {fp}\n");
        assert!(KnownHosts::parse(&dup).unwrap_err().contains("line 2"));
    }
}
