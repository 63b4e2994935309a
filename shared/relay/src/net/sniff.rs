//! What a connection's first bytes say it is, decided without I/O: a PROXY protocol header
//! (v1 text or v2 binary), a TLS ClientHello, a WebSocket upgrade (an HTTP `GET`), or else the
//! relay's own Noise frames. Decided as soon as the bytes allow, so a client that sends only a
//! few bytes first is not kept waiting.

/// The PROXY protocol v1 prefix.
pub const PROXY_V1: &[u8] = b"PROXY ";
/// The PROXY protocol v2 signature.
pub const PROXY_V2: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
/// A TLS handshake record starts with this content type.
pub const TLS_HANDSHAKE: u8 = 0x16;
/// An HTTP upgrade request starts so.
pub const HTTP_GET: &[u8] = b"GET ";

/// What the first bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// Not enough bytes to tell.
    NeedMore,
    /// A PROXY protocol header.
    Proxy,
    /// A TLS ClientHello.
    Tls,
    /// An HTTP request (a WebSocket upgrade).
    Http,
    /// Anything else: Noise frames.
    Raw,
}

/// Whether `bytes` start with `prefix`, `Some(false)` when they cannot, `None` when too few
/// bytes came to tell.
fn starts(bytes: &[u8], prefix: &[u8]) -> Option<bool> {
    let n = bytes.len().min(prefix.len());
    if bytes[..n] != prefix[..n] {
        Some(false)
    } else if n == prefix.len() {
        Some(true)
    } else {
        None
    }
}

/// Classifies the first bytes of a connection (`proxy`: whether a PROXY header may still come).
pub fn sniff(bytes: &[u8], proxy: bool) -> Sniffed {
    let Some(&first) = bytes.first() else {
        return Sniffed::NeedMore;
    };
    if first == TLS_HANDSHAKE {
        return Sniffed::Tls;
    }
    let mut candidates: Vec<(&[u8], Sniffed)> = vec![(HTTP_GET, Sniffed::Http)];
    if proxy {
        candidates.push((PROXY_V1, Sniffed::Proxy));
        candidates.push((PROXY_V2, Sniffed::Proxy));
    }
    let mut undecided = false;
    for (prefix, kind) in candidates {
        match starts(bytes, prefix) {
            Some(true) => return kind,
            None => undecided = true,
            Some(false) => {}
        }
    }
    if undecided {
        Sniffed::NeedMore
    } else {
        Sniffed::Raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_decide_as_early_as_they_can() {
        assert_eq!(sniff(b"", true), Sniffed::NeedMore);
        assert_eq!(sniff(&[0x16, 3, 1], true), Sniffed::Tls);
        assert_eq!(sniff(b"GE", true), Sniffed::NeedMore);
        assert_eq!(sniff(b"GET /", true), Sniffed::Http);
        assert_eq!(sniff(b"GEX", true), Sniffed::Raw);
        assert_eq!(sniff(b"PROX", true), Sniffed::NeedMore);
        assert_eq!(sniff(b"PROXY TCP4", true), Sniffed::Proxy);
        assert_eq!(sniff(PROXY_V2, true), Sniffed::Proxy);
        assert_eq!(sniff(&PROXY_V2[..5], true), Sniffed::NeedMore);
        assert_eq!(sniff(&[0, 42, 1], true), Sniffed::Raw);
        // Inside TLS or after a header, PROXY is no longer a candidate.
        assert_eq!(sniff(b"PROXY ", false), Sniffed::Raw);
    }
}
