//! The routes to the relay end to end on loopback: fallback between routes, HTTP CONNECT
//! proxies, TLS with a test CA, WebSocket inside TLS inside a proxy's tunnel.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::{SinkExt, StreamExt};
use sightline_net::dial::{DialError, Dialed, Dialer};
use sightline_net::proxy::{ProxySettings, ProxyUrl};
use sightline_net::route::{Route, RouteList};
use sightline_net::stream::BoxIo;
use sightline_net::tls::TlsClient;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn routes(s: &str) -> Vec<Route> {
    let list: RouteList = s.parse().unwrap();
    list.routes().to_vec()
}

fn dialer(proxy: ProxySettings) -> Dialer {
    let mut d = Dialer::new(proxy);
    d.tls = test_tls();
    d
}

fn test_tls() -> TlsClient {
    let pem = std::fs::read(format!("{DATA}/ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    TlsClient::with_roots(roots)
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Accepts connections and never answers (a WebSocket upgrade there hangs).
async fn black_hole() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    port
}

/// Echoes plain TCP.
async fn echo() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

/// Echoes inside TLS (and inside a WebSocket when `ws`), with the test certificate.
async fn tls_echo(ws: bool) -> u16 {
    let certs: Vec<_> =
        rustls_pemfile::certs(&mut &std::fs::read(format!("{DATA}/relay.pem")).unwrap()[..])
            .map(|c| c.unwrap())
            .collect();
    let key =
        rustls_pemfile::private_key(&mut &std::fs::read(format!("{DATA}/relay.key")).unwrap()[..])
            .unwrap()
            .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(s).await else {
                    return;
                };
                if ws {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                        return;
                    };
                    while let Some(Ok(msg)) = ws.next().await {
                        if let Message::Binary(b) = msg {
                            let _ = ws.send(Message::Binary(b)).await;
                        }
                    }
                } else {
                    let (mut r, mut w) = tokio::io::split(tls);
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                }
            });
        }
    });
    port
}

/// A tiny HTTP proxy: reads the CONNECT head, checks `Proxy-Authorization` when `auth` is
/// given (407 otherwise), answers 200 and splices.
async fn proxy(auth: Option<&'static str>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                let mut head = Vec::new();
                loop {
                    let mut line = String::new();
                    if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push(line);
                }
                let target = head[0].split(' ').nth(1).unwrap().to_string();
                if let Some(token) = auth {
                    let want = format!("proxy-authorization: basic {token}\r\n");
                    if !head.iter().any(|h| h.eq_ignore_ascii_case(&want)) {
                        let _ = s.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\n\r\n").await;
                        return;
                    }
                }
                let Ok(mut upstream) = TcpStream::connect(&target).await else {
                    let _ = s.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut s, &mut upstream).await;
            });
        }
    });
    port
}

async fn round_trip(mut io: BoxIo) {
    io.write_all(b"ping through the route").await.unwrap();
    let mut back = [0u8; 22];
    tokio::time::timeout(Duration::from_secs(5), io.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"ping through the route");
}

async fn dial(d: &Dialer, list: &str) -> Result<(BoxIo, Dialed), DialError> {
    d.dial(&routes(list)).await
}

#[tokio::test]
async fn a_refused_route_lets_the_next_start_at_once() {
    let (closed, open) = (closed_port().await, echo().await);
    let d = dialer(ProxySettings::Never);
    let started = Instant::now();
    let (io, dialed) = dial(&d, &format!("127.0.0.1:{closed},tcp://127.0.0.1:{open}"))
        .await
        .unwrap();
    assert_eq!(dialed.to_string(), format!("tcp://127.0.0.1:{open}"));
    // Well before the 500 ms head start: the refusal started the next route.
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    round_trip(io).await;
}

#[tokio::test]
async fn a_black_hole_gives_the_next_route_its_turn_after_500_ms() {
    let (hole, open) = (black_hole().await, echo().await);
    let d = dialer(ProxySettings::Never);
    let started = Instant::now();
    let (io, dialed) = dial(&d, &format!("ws://127.0.0.1:{hole},127.0.0.1:{open}"))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(dialed.route.to_string(), format!("tcp://127.0.0.1:{open}"));
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    round_trip(io).await;
}

#[tokio::test]
async fn when_every_route_fails_the_error_lists_each() {
    let (closed, hole) = (closed_port().await, black_hole().await);
    let mut d = dialer(ProxySettings::Never);
    d.attempt_timeout = Duration::from_secs(1);
    let list = format!("tcp://127.0.0.1:{closed},wss://127.0.0.1:{hole}/x");
    let err = dial(&d, &list).await.err().unwrap().to_string();
    assert_eq!(
        err,
        format!(
            "cannot reach the relay: tcp://127.0.0.1:{closed}: connection refused; wss://127.0.0.1:{hole}/x: connection timed out"
        )
    );
}

#[tokio::test]
async fn tls_is_verified_against_the_trusted_roots() {
    let port = tls_echo(false).await;
    let d = dialer(ProxySettings::Never);
    let (io, dialed) = dial(&d, &format!("tls://localhost:{port}")).await.unwrap();
    assert_eq!(dialed.to_string(), format!("tls://localhost:{port}"));
    round_trip(io).await;
    // The IP address is in the certificate too.
    let (io, _) = dial(&d, &format!("tls://127.0.0.1:{port}")).await.unwrap();
    round_trip(io).await;
    // Not trusted: refused, closed.
    let mut untrusting = dialer(ProxySettings::Never);
    untrusting.tls = TlsClient::with_roots(rustls::RootCertStore::empty());
    let err = dial(&untrusting, &format!("tls://localhost:{port}"))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("TLS: "), "{err}");
}

#[tokio::test]
async fn wss_through_a_proxy_with_credentials() {
    let (relay, proxy) = (
        tls_echo(true).await,
        proxy(Some("YWxpY2U6cyBlY3JldA==")).await,
    );
    // alice / "s ecret", percent-encoded in the URL.
    let url: ProxyUrl = format!("http://alice:s%20ecret@127.0.0.1:{proxy}")
        .parse()
        .unwrap();
    let d = dialer(ProxySettings::Fixed(url));
    let (io, dialed) = dial(&d, &format!("wss://localhost:{relay}/sightline"))
        .await
        .unwrap();
    let shown = dialed.to_string();
    assert_eq!(
        shown,
        format!("wss://localhost:{relay}/sightline through proxy http://127.0.0.1:{proxy}")
    );
    round_trip(io).await;
}

#[tokio::test]
async fn plain_tcp_through_a_proxy_and_a_407_without_credentials() {
    let (relay, open_proxy, strict_proxy) =
        (echo().await, proxy(None).await, proxy(Some("eDp5")).await);
    let url: ProxyUrl = format!("http://127.0.0.1:{open_proxy}").parse().unwrap();
    let d = dialer(ProxySettings::Fixed(url));
    let (io, _) = dial(&d, &format!("127.0.0.1:{relay}")).await.unwrap();
    round_trip(io).await;
    let url: ProxyUrl = format!("http://127.0.0.1:{strict_proxy}").parse().unwrap();
    let d = dialer(ProxySettings::Fixed(url));
    let err = dial(&d, &format!("127.0.0.1:{relay}"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("the proxy needs a user name and password (407)"),
        "{err}"
    );
    assert!(
        err.contains(&format!("through proxy http://127.0.0.1:{strict_proxy}")),
        "{err}"
    );
}
