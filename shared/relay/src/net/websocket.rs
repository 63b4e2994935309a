//! The WebSocket transport: the server side of the upgrade, and a bridge that turns binary
//! messages into a byte stream ([`bridge`]) so the Noise frames run over it as over TCP. A
//! message may hold any number of bytes, not aligned to frames. Pings are answered, a close
//! from either side ends the other, text messages are refused.

use futures_util::{SinkExt, StreamExt};
use sightline_net::stream::BoxIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Buffer between the WebSocket and the byte stream, each way.
pub const BRIDGE_BUFFER: usize = 64 * 1024;
/// Largest WebSocket message accepted: a generous multiple of the bridge buffer.
const MAX_MESSAGE: usize = 1024 * 1024;

pub use tokio_tungstenite::tungstenite::Error as WsError;

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// Completes the server side of the upgrade on `io` (any path) and bridges it.
pub async fn accept(io: BoxIo) -> Result<BoxIo, WsError> {
    let any_path = |_: &Request, response: Response| Ok(response);
    let ws = tokio_tungstenite::accept_hdr_async_with_config(io, any_path, Some(config())).await?;
    Ok(bridge(ws))
}

/// A byte stream whose writes leave as binary messages on `ws` and whose reads are the
/// binary messages that arrive; served by a task that ends when either side closes.
pub fn bridge<S>(ws: WebSocketStream<S>) -> BoxIo
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(BRIDGE_BUFFER);
    tokio::spawn(pump(ws, ours));
    Box::new(theirs)
}

async fn pump<S>(mut ws: WebSocketStream<S>, mut bytes: tokio::io::DuplexStream)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BRIDGE_BUFFER];
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    if bytes.write_all(&data).await.is_err() {
                        break;
                    }
                }
                // Answered by the library on the next read or write; flush it now.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                    if ws.flush().await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Text(_))) => {
                    tracing::debug!("text WebSocket message; closing");
                    break;
                }
                Some(Ok(Message::Close(_))) | None => {
                    let _ = bytes.shutdown().await;
                    return;
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "WebSocket failed");
                    return;
                }
            },
            n = bytes.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let data = buf.get(..n).unwrap_or_default().to_vec();
                    if ws.send(Message::Binary(data.into())).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
    // Our side ended: say so, and wait briefly for the peer's close.
    let _ = ws.close(None).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_cross_in_both_directions_in_any_chunking() {
        let (client_end, server_end) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move { accept(Box::new(server_end)).await.unwrap() });
        let (client_ws, _) = tokio_tungstenite::client_async("ws://relay/any/path", client_end)
            .await
            .unwrap();
        let mut client = bridge(client_ws);
        let mut server = server.await.unwrap();
        client.write_all(b"hel").await.unwrap();
        client.write_all(b"lo").await.unwrap();
        let mut got = [0u8; 5];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        let big = vec![7u8; 200_000];
        server.write_all(&big).await.unwrap();
        let mut back = vec![0u8; big.len()];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(back, big);
        // Closing one side ends the other's reads.
        drop(client);
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
}
