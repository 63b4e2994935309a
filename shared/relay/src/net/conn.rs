//! A client connection after the channel handshake: the framed byte stream (TCP, TLS or a
//! WebSocket), the Noise channel over it, the peer's real address and the roles its listener
//! serves. Sends relay messages and receives client messages.

use crate::config::Roles;
use crate::net::admission::Slot;
use sightline_core::channel::{Channel, ChannelConfig};
use sightline_core::identity::PublicIdentity;
use sightline_core::relay_proto::{ClientMessage, RelayMessage};
use sightline_net::stream::{BoxIo, FramedStream, StreamError};
use std::net::SocketAddr;

/// Largest control message the relay accepts. Control messages are small (a login is under
/// 1 KiB); the core's default allows 16 MiB, which unauthenticated clients should not get
/// to make the relay buffer. Rekeying, which both sides must agree on, keeps its defaults.
pub const CONTROL_MAX_MESSAGE: usize = 64 * 1024;

/// Channel settings of the relay side.
pub fn channel_config() -> ChannelConfig {
    ChannelConfig {
        max_message: CONTROL_MAX_MESSAGE,
        ..ChannelConfig::default()
    }
}

/// Errors on an established connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The socket failed or carried bad framing.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// Decryption or decoding failed; the channel is dead.
    #[error(transparent)]
    Protocol(#[from] sightline_core::Error),
}

/// An established client connection.
pub struct Conn {
    /// The framed stream.
    pub stream: FramedStream<BoxIo>,
    /// The channel's Noise state.
    pub channel: Channel,
    /// Where the client connects from.
    pub peer: SocketAddr,
    /// This connection's places under the connection caps ([`crate::net::admission`]); travels
    /// with the connection (a joined agent's connection moves to the operator's task) and is
    /// given back when it is dropped.
    pub slot: Slot,
    /// The identity key this connection proved, if any: an agent's at join
    /// ([`sightline_core::session_proofs::JoinTranscript`]).
    pub identity: Option<PublicIdentity>,
    /// The roles the listener it came in on serves.
    pub roles: Roles,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("peer", &self.peer)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Sends one message.
    pub async fn send(&mut self, msg: &RelayMessage) -> Result<(), ConnError> {
        let bytes = self.channel.send(msg)?;
        self.stream.write_all(&bytes).await?;
        Ok(())
    }

    /// Receives the next message; `None` when the client closed the connection.
    /// Cancel-safe: a partly read frame stays buffered in the stream.
    pub async fn receive(&mut self) -> Result<Option<ClientMessage>, ConnError> {
        loop {
            let Some(frame) = self.stream.read_message().await? else {
                return Ok(None);
            };
            if let Some(msg) = self
                .channel
                .receive::<ClientMessage>(&frame, "client message")?
            {
                return Ok(Some(msg));
            }
        }
    }

    /// Sends a last message (best effort) and closes the connection.
    pub async fn close_with(mut self, msg: &RelayMessage) {
        if let Err(e) = self.send(msg).await {
            tracing::debug!(peer = %self.peer, error = %e, "could not send the final answer");
        }
        let _ = self.stream.shutdown().await;
    }
}
