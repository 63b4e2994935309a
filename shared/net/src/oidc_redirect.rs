//! The viewer's end of a sign-in in the system browser (RFC 8252): a listener on the loopback
//! address, on a port the system picks, where the identity provider sends the browser back.
//! It takes the query of the one request to [`PATH`] and passes it to the relay unread (the
//! relay checks the state and redeems the code with a PKCE verifier only it holds); any other
//! request (a browser's `/favicon.ico`) gets 404 and the listener keeps waiting.
//!
//! Written on tokio with `httparse` rather than an HTTP server crate: one GET request, read
//! with a size and time limit, is all it serves.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The redirect's path (what the provider's client registration names, on
/// `http://127.0.0.1` with any port).
pub const PATH: &str = "/callback";

/// Largest request head read from the browser.
const MAX_HEAD: usize = 16 * 1024;
/// Longest one connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the browser sees once it is back: the relay has not checked the answer yet, so the
/// page says where the outcome is shown.
const DONE_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\">\
<title>Sightline sign-in</title></head><body style=\"font-family:sans-serif;margin:3em\">\
<h1>Sightline</h1><p>The identity provider's answer has reached the Sightline viewer. \
You can close this tab: the viewer shows whether the relay accepted the sign-in.</p>\
</body></html>";

/// A listening redirect.
#[derive(Debug)]
pub struct RedirectListener {
    listener: TcpListener,
    port: u16,
}

impl RedirectListener {
    /// Listens on 127.0.0.1, on a port the system picks.
    pub async fn bind() -> std::io::Result<RedirectListener> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let port = listener.local_addr()?.port();
        Ok(RedirectListener { listener, port })
    }

    /// `http://127.0.0.1:PORT/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{PATH}", self.port)
    }

    /// Waits for the browser's request to [`PATH`]; its query (empty when it has none).
    /// Requests that are not one are answered and the wait goes on.
    pub async fn wait(self) -> std::io::Result<String> {
        loop {
            let (stream, _) = self.listener.accept().await?;
            match tokio::time::timeout(READ_TIMEOUT, serve(stream)).await {
                Ok(Ok(Some(query))) => return Ok(query),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "a request to the sign-in redirect failed")
                }
                Err(_) => tracing::debug!("a request to the sign-in redirect timed out"),
            }
        }
    }
}

/// Reads one request; answers it; the query when it was the redirect.
async fn serve(mut stream: TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    let target = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
        match request_target(&head) {
            Ok(Some(t)) => break t,
            Ok(None) if head.len() < MAX_HEAD => {}
            _ => {
                respond(&mut stream, "400 Bad Request", "bad request").await?;
                return Ok(None);
            }
        }
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if path != PATH {
        respond(&mut stream, "404 Not Found", "not found").await?;
        return Ok(None);
    }
    respond(&mut stream, "200 OK", DONE_PAGE).await?;
    Ok(Some(query.to_owned()))
}

/// The target of a complete GET request head; `None` while incomplete.
fn request_target(head: &[u8]) -> Result<Option<String>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head)? {
        httparse::Status::Partial => Ok(None),
        httparse::Status::Complete(_) => match (req.method, req.path) {
            (Some("GET"), Some(path)) => Ok(Some(path.to_owned())),
            _ => Err(httparse::Error::Token),
        },
    }
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(port: u16, raw: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn the_redirects_query_is_taken_and_other_requests_are_answered() {
        let listener = RedirectListener::bind().await.unwrap();
        let uri = listener.redirect_uri();
        assert!(uri.starts_with("http://127.0.0.1:") && uri.ends_with("/callback"));
        let port = listener.port;
        let waiting = tokio::spawn(listener.wait());
        let favicon = get(port, "GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(favicon.starts_with("HTTP/1.1 404"), "{favicon}");
        let junk = get(port, "POST /callback HTTP/1.1\r\n\r\n").await;
        assert!(junk.starts_with("HTTP/1.1 400"), "{junk}");
        let page = get(
            port,
            "GET /callback?code=c&state=s HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await;
        assert!(page.starts_with("HTTP/1.1 200") && page.contains("close this tab"));
        assert_eq!(waiting.await.unwrap().unwrap(), "code=c&state=s");
    }

    #[test]
    fn an_endless_or_broken_head_is_refused() {
        assert_eq!(request_target(b"GET /callback HTTP/1.1\r\n").unwrap(), None);
        assert!(request_target(b"\x00\x01 nonsense\r\n\r\n").is_err());
    }
}
