//! The HTTP CONNECT tunnel through a proxy (RFC 9110 §9.3.6): ask for `host:port`, read the
//! answer's head (at most 16 KiB), then the connection is a byte stream to the relay.
//!
//! Written by hand rather than with an HTTP client library: the workspace has none (hyper is
//! not a dependency), and CONNECT is one request and the head of one answer. `httparse`
//! parses the answer. The answer's head is read through a `BufReader` that stays in the
//! stream, so bytes the proxy sent after the head are not lost.

use super::{Credentials, ProxyUrl};
use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The most an answer's head may take.
pub const MAX_HEAD: usize = 16 * 1024;

/// Why a tunnel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The proxy could not be reached.
    #[error("cannot reach the proxy: {0}")]
    Reach(std::io::Error),
    /// The connection to the proxy failed while asking.
    #[error("connection to the proxy failed: {0}")]
    Io(#[from] std::io::Error),
    /// The proxy closed the connection before its answer was complete.
    #[error("the proxy closed the connection without answering")]
    Closed,
    /// The answer's head is over [`MAX_HEAD`].
    #[error("the proxy's answer is over {MAX_HEAD} bytes")]
    TooLong,
    /// The answer is not an HTTP response.
    #[error("the proxy's answer is not HTTP")]
    NotHttp,
    /// 407 without credentials.
    #[error("the proxy needs a user name and password (407); give them in the proxy URL, http://USER:PASSWORD@HOST:PORT")]
    NeedsCredentials,
    /// 407 with credentials.
    #[error("the proxy did not accept the user name and password (407)")]
    BadCredentials,
    /// Any other answer than 2xx.
    #[error("the proxy refused CONNECT to {target}: {status}")]
    Refused {
        /// `host:port` asked for.
        target: String,
        /// Status code and reason, `403 Forbidden`.
        status: String,
    },
}

/// Connects to `proxy` and opens a tunnel to `target` (`host:port`, IPv6 in brackets).
pub async fn connect(proxy: &ProxyUrl, target: &str) -> Result<BufReader<TcpStream>, ProxyError> {
    let tcp = TcpStream::connect((proxy.host(), proxy.port()))
        .await
        .map_err(ProxyError::Reach)?;
    let _ = tcp.set_nodelay(true);
    tunnel(tcp, proxy.credentials(), target).await
}

/// Asks for a tunnel to `target` over `io`, a connection to the proxy. The returned reader
/// holds any bytes that came after the answer's head; it writes straight through.
pub async fn tunnel<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    credentials: Option<&Credentials>,
    target: &str,
) -> Result<BufReader<S>, ProxyError> {
    io.write_all(request(target, credentials).as_bytes())
        .await?;
    io.flush().await?;
    let mut reader = BufReader::new(io);
    let head = read_head(&mut reader).await?;
    let (code, reason) = status(&head)?;
    match code {
        200..=299 => Ok(reader),
        407 if credentials.is_some() => Err(ProxyError::BadCredentials),
        407 => Err(ProxyError::NeedsCredentials),
        _ => Err(ProxyError::Refused {
            target: target.to_string(),
            status: format!("{code} {reason}").trim_end().to_string(),
        }),
    }
}

/// The CONNECT request.
fn request(target: &str, credentials: Option<&Credentials>) -> String {
    let mut r = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(c) = credentials {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.user, c.password));
        r.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    r.push_str("\r\n");
    r
}

/// Reads up to and including the empty line that ends the head, and no further.
async fn read_head<S: AsyncRead + Unpin>(reader: &mut BufReader<S>) -> Result<Vec<u8>, ProxyError> {
    let mut head = Vec::new();
    loop {
        let room = (MAX_HEAD - head.len()) as u64;
        let before = head.len();
        let n = (&mut *reader)
            .take(room)
            .read_until(b'\n', &mut head)
            .await?;
        if n == 0 {
            return Err(if head.len() >= MAX_HEAD {
                ProxyError::TooLong
            } else {
                ProxyError::Closed
            });
        }
        let line = &head[before..];
        if !line.ends_with(b"\n") {
            // The cap cut the line, or the stream ended inside it.
            return Err(if head.len() >= MAX_HEAD {
                ProxyError::TooLong
            } else {
                ProxyError::Closed
            });
        }
        if line == b"\r\n" || line == b"\n" {
            return Ok(head);
        }
    }
}

/// The status code and reason of a complete head.
fn status(head: &[u8]) -> Result<(u16, String), ProxyError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        // Too many headers for the array: the status line is still good.
        Err(httparse::Error::TooManyHeaders) => return status_line(head),
        _ => return Err(ProxyError::NotHttp),
    }
    let code = response.code.ok_or(ProxyError::NotHttp)?;
    let reason = response.reason.unwrap_or_default().to_string();
    Ok((code, reason))
}

/// The status line alone: `HTTP/1.x CODE REASON`.
fn status_line(head: &[u8]) -> Result<(u16, String), ProxyError> {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::NotHttp)?;
    let mut parts = line.trim_end().splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(ProxyError::NotHttp);
    }
    let code = parts
        .next()
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or(ProxyError::NotHttp)?;
    Ok((code, parts.next().unwrap_or_default().to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use tokio::io::duplex;

    async fn answer(
        proxy_says: &[u8],
        creds: Option<&Credentials>,
    ) -> (Result<Vec<u8>, String>, Vec<u8>) {
        let (ours, mut theirs) = duplex(64 * 1024);
        let says = proxy_says.to_vec();
        let proxy = tokio::spawn(async move {
            let mut asked = vec![0u8; 4096];
            let n = theirs.read(&mut asked).await.unwrap();
            asked.truncate(n);
            theirs.write_all(&says).await.unwrap();
            drop(theirs);
            asked
        });
        let result = match tunnel(ours, creds, "relay.example:443").await {
            Ok(mut r) => {
                let mut rest = Vec::new();
                r.read_to_end(&mut rest).await.unwrap();
                Ok(rest)
            }
            Err(e) => Err(e.to_string()),
        };
        (result, proxy.await.unwrap())
    }

    #[tokio::test]
    async fn bytes_after_the_head_are_kept() {
        let (r, asked) = answer(
            b"HTTP/1.1 200 Connection established\r\nX: y\r\n\r\nHELLO",
            None,
        )
        .await;
        assert_eq!(r.unwrap(), b"HELLO");
        assert_eq!(
            asked,
            b"CONNECT relay.example:443 HTTP/1.1\r\nHost: relay.example:443\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn credentials_go_as_basic() {
        let c = Credentials {
            user: "alice".into(),
            password: "p:ss".into(),
        };
        let (r, asked) = answer(b"HTTP/1.0 200 OK\r\n\r\n", Some(&c)).await;
        assert_eq!(r.unwrap(), b"");
        let asked = String::from_utf8(asked).unwrap();
        // base64("alice:p:ss")
        assert!(
            asked.contains("Proxy-Authorization: Basic YWxpY2U6cDpzcw==\r\n"),
            "{asked}"
        );
    }

    #[tokio::test]
    async fn refusals_say_why() {
        let (r, _) = answer(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", None).await;
        assert!(r
            .unwrap_err()
            .contains("needs a user name and password (407)"));
        let c = Credentials {
            user: "a".into(),
            password: "b".into(),
        };
        let (r, _) = answer(b"HTTP/1.1 407 Nope\r\n\r\n", Some(&c)).await;
        assert!(r.unwrap_err().contains("did not accept"));
        let (r, _) = answer(b"HTTP/1.1 403 Forbidden\r\n\r\n", None).await;
        assert_eq!(
            r.unwrap_err(),
            "the proxy refused CONNECT to relay.example:443: 403 Forbidden"
        );
        let (r, _) = answer(b"SSH-2.0-OpenSSH\r\n\r\n", None).await;
        assert_eq!(r.unwrap_err(), "the proxy's answer is not HTTP");
        let (r, _) = answer(b"HTTP/1.1 200 OK\r\n", None).await;
        assert!(r.unwrap_err().contains("without answering"));
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 20 * 1024));
        let (r, _) = answer(&long, None).await;
        assert!(r.unwrap_err().contains("over 16384 bytes"));
    }
}
