//! The relay channel's bytes over a WebSocket (ws:// and wss:// routes): the client upgrade,
//! and [`bridge`], which turns a WebSocket into a plain byte stream. Binary messages carry the
//! stream's bytes with no alignment to the Noise frames inside; either side may split them
//! into messages as it likes. The bridge is generic over the stream under the WebSocket, so
//! the relay's side can use it too.

use crate::route::Route;
use crate::stream::BoxIo;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The largest message or frame accepted (the peer's are at most a Noise frame or two).
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// How long the peer may take to close after this side has finished sending.
const CLOSE_WAIT: Duration = Duration::from_secs(10);
/// Room in the bridge between the WebSocket and the byte stream.
const BRIDGE_BUFFER: usize = 64 * 1024;

/// Why the WebSocket upgrade failed.
pub type WsError = tokio_tungstenite::tungstenite::Error;

/// The limits both sides use.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// The WebSocket upgrade for `route` over `io` (TCP, a proxy's tunnel, or TLS over either);
/// returns the byte stream inside it.
pub async fn connect<S>(io: S, route: &Route) -> Result<BoxIo, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let scheme = if route.transport().uses_tls() {
        "wss"
    } else {
        "ws"
    };
    let uri = format!("{scheme}://{}{}", route.authority(), route.path());
    let (ws, _answer) =
        tokio_tungstenite::client_async_with_config(uri, io, Some(config())).await?;
    Ok(bridge(ws))
}

/// A byte stream whose bytes travel as binary messages of `ws`. A task moves them both ways
/// (and answers pings); the peer's close, or an error, ends the stream's reading side, and
/// shutting down or dropping the stream closes the WebSocket.
pub fn bridge<S>(ws: WebSocketStream<S>) -> BoxIo
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(BRIDGE_BUFFER);
    tokio::spawn(pump(ws, theirs));
    Box::new(ours)
}

async fn pump<S>(ws: WebSocketStream<S>, side: tokio::io::DuplexStream)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut messages) = ws.split();
    let (mut from_us, mut to_us) = tokio::io::split(side);
    // WebSocket -> byte stream. Pings are answered by tungstenite as the stream is read.
    let inbound = async move {
        while let Some(msg) = messages.next().await {
            let bytes = match msg {
                Ok(Message::Binary(b)) => b,
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Ok(Message::Close(_)) => break,
                Ok(Message::Text(_)) => {
                    tracing::debug!("text message on the relay's WebSocket; closing");
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "WebSocket failed");
                    break;
                }
            };
            if to_us.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to_us.shutdown().await;
    };
    // Byte stream -> WebSocket, one binary message per read.
    let outbound = async move {
        let mut buf = vec![0u8; BRIDGE_BUFFER];
        loop {
            let n = match from_us.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = buf.get(..n).unwrap_or_default().to_vec();
            if sink.send(Message::binary(chunk)).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    };
    tokio::pin!(inbound);
    tokio::pin!(outbound);
    tokio::select! {
        // The peer is gone: nothing more can be sent.
        _ = &mut inbound => {}
        // This side is done sending: what the peer still sends is read until it closes.
        _ = &mut outbound => {
            let _ = tokio::time::timeout(CLOSE_WAIT, inbound).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::route::RouteList;
    use tokio::net::{TcpListener, TcpStream};

    #[tokio::test]
    async fn bytes_round_trip_through_a_real_websocket() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // The server echoes the bytes back in messages of its own sizes, and pings first.
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            ws.send(Message::Ping(vec![1, 2].into())).await.unwrap();
            let (mut total, mut pong) = (0, false);
            while let Some(msg) = ws.next().await {
                match msg.unwrap() {
                    Message::Binary(b) => {
                        total += b.len();
                        for piece in b.chunks(777) {
                            ws.send(Message::binary(piece.to_vec())).await.unwrap();
                        }
                    }
                    Message::Pong(p) => pong = p.as_ref() == [1, 2],
                    Message::Close(_) => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            (total, pong)
        });
        let list: RouteList = format!("ws://127.0.0.1:{port}/x").parse().unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let io = connect(tcp, &list.routes()[0]).await.unwrap();
        let (mut rd, mut wr) = tokio::io::split(io);
        let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let expected = sent.clone();
        let writer = tokio::spawn(async move {
            wr.write_all(&sent).await.unwrap();
            wr
        });
        let mut back = vec![0u8; expected.len()];
        rd.read_exact(&mut back).await.unwrap();
        assert_eq!(back, expected);
        let mut wr = writer.await.unwrap();
        // Closing ends the WebSocket both ways.
        wr.shutdown().await.unwrap();
        let mut rest = Vec::new();
        rd.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        let (total, pong) = server.await.unwrap();
        assert_eq!(total, expected.len());
        assert!(pong, "the ping was not answered");
    }
}
