//! An established Noise transport: fragmentation of large messages, reassembly with a size
//! limit, rekeying at agreed points, and the rule that any decryption failure ends it.
//!
//! Both directions count their own Noise messages and bytes; after
//! [`ChannelConfig::rekey_after_messages`] messages or [`ChannelConfig::rekey_after_bytes`]
//! bytes the sender rekeys its outgoing key and the receiver, counting the same messages on an
//! ordered stream, rekeys the matching incoming key. No message is needed to agree on it.

use crate::codec;
use crate::error::{Error, Malformed, Result};
use crate::frame::{self, MAX_NOISE_MESSAGE};
use serde::{de::DeserializeOwned, Serialize};

/// AEAD tag length of AES-256-GCM.
const TAG_LEN: usize = 16;
/// One header byte per fragment.
const FRAGMENT_HEADER: usize = 1;
/// Largest application bytes carried by one Noise message.
pub const MAX_FRAGMENT_PAYLOAD: usize = MAX_NOISE_MESSAGE - TAG_LEN - FRAGMENT_HEADER;

const FLAG_FINAL: u8 = 0x01;
const FLAG_MORE: u8 = 0x00;

/// Limits and rekey points; both peers must use the same values (the defaults are part of the
/// protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Largest reassembled application message.
    pub max_message: usize,
    /// Rekey a direction after this many Noise messages.
    pub rekey_after_messages: u64,
    /// Rekey a direction after this many ciphertext bytes.
    pub rekey_after_bytes: u64,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            max_message: 16 * 1024 * 1024,
            rekey_after_messages: 1 << 16,
            rekey_after_bytes: 1 << 30,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counter {
    messages: u64,
    bytes: u64,
    rekeys: u64,
}

impl Counter {
    /// Records one message and reports whether the direction must rekey now.
    fn record(&mut self, bytes: usize, cfg: &ChannelConfig) -> bool {
        self.messages += 1;
        self.bytes += bytes as u64;
        if self.messages >= cfg.rekey_after_messages || self.bytes >= cfg.rekey_after_bytes {
            *self = Counter {
                messages: 0,
                bytes: 0,
                rekeys: self.rekeys + 1,
            };
            true
        } else {
            false
        }
    }
}

/// A Noise transport in both directions.
pub struct Channel {
    transport: snow::TransportState,
    /// The Noise handshake hash: the same on both ends, unique to this channel.
    handshake_hash: [u8; 32],
    cfg: ChannelConfig,
    sent: Counter,
    received: Counter,
    partial: Vec<u8>,
    dead: bool,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("cfg", &self.cfg)
            .field("sent", &self.sent)
            .field("received", &self.received)
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// The transport of a completed handshake, remembering its handshake hash.
    pub(crate) fn from_handshake(hs: snow::HandshakeState, cfg: ChannelConfig) -> Result<Self> {
        let handshake_hash: [u8; 32] = hs
            .get_handshake_hash()
            .try_into()
            .map_err(|_| Error::Local("unexpected handshake hash length".into()))?;
        Ok(Self {
            transport: hs.into_transport_mode()?,
            handshake_hash,
            cfg,
            sent: Counter::default(),
            received: Counter::default(),
            partial: Vec::new(),
            dead: false,
        })
    }

    /// The Noise handshake hash of this channel: identical on both ends, unique to the
    /// channel, known to nobody else. Binds a signature made inside the channel to it (a
    /// login's proof of possession, [`crate::login_proof`]).
    pub fn handshake_hash(&self) -> &[u8; 32] {
        &self.handshake_hash
    }

    /// Encrypts one application message into framed Noise messages, ready for the stream.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        if self.dead {
            return Err(Error::Closed);
        }
        if plaintext.len() > self.cfg.max_message {
            return Err(Malformed::Oversized {
                size: plaintext.len(),
                limit: self.cfg.max_message,
            }
            .into());
        }
        let mut out = Vec::with_capacity(plaintext.len() + 64);
        let mut chunks = plaintext.chunks(MAX_FRAGMENT_PAYLOAD).peekable();
        // An empty message still travels as one (empty) final fragment.
        let empty: &[u8] = &[];
        if chunks.peek().is_none() {
            self.seal_fragment(empty, true, &mut out)?;
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            self.seal_fragment(chunk, last, &mut out)?;
        }
        Ok(out)
    }

    fn seal_fragment(&mut self, chunk: &[u8], last: bool, out: &mut Vec<u8>) -> Result<()> {
        let mut plain = Vec::with_capacity(chunk.len() + FRAGMENT_HEADER);
        plain.push(if last { FLAG_FINAL } else { FLAG_MORE });
        plain.extend_from_slice(chunk);
        let mut msg = vec![0u8; plain.len() + TAG_LEN];
        let n = self.transport.write_message(&plain, &mut msg)?;
        out.extend_from_slice(&frame::encode(&msg[..n])?);
        if self.sent.record(n, &self.cfg) {
            self.transport.rekey_outgoing();
        }
        Ok(())
    }

    /// Decrypts one Noise message (without its length prefix). Returns the application
    /// message once its last fragment has arrived. Any failure kills the channel.
    pub fn open(&mut self, noise_message: &[u8]) -> Result<Option<Vec<u8>>> {
        if self.dead {
            return Err(Error::Closed);
        }
        let result = self.open_inner(noise_message);
        if result.is_err() {
            self.dead = true;
            self.partial = Vec::new();
        }
        result
    }

    fn open_inner(&mut self, noise_message: &[u8]) -> Result<Option<Vec<u8>>> {
        if noise_message.len() < TAG_LEN + FRAGMENT_HEADER {
            return Err(Malformed::TooShort.into());
        }
        let mut plain = vec![0u8; noise_message.len()];
        let n = self.transport.read_message(noise_message, &mut plain)?;
        if self.received.record(noise_message.len(), &self.cfg) {
            self.transport.rekey_incoming();
        }
        let (flags, body) = match plain[..n].split_first() {
            Some((f, b)) => (*f, b),
            None => return Err(Malformed::TooShort.into()),
        };
        let total = self.partial.len() + body.len();
        if total > self.cfg.max_message {
            return Err(Malformed::Oversized {
                size: total,
                limit: self.cfg.max_message,
            }
            .into());
        }
        match flags {
            FLAG_MORE => {
                self.partial.extend_from_slice(body);
                Ok(None)
            }
            FLAG_FINAL => {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(body);
                Ok(Some(whole))
            }
            _ => Err(Malformed::BadFragment.into()),
        }
    }

    /// Encodes and seals a typed message.
    pub fn send<T: Serialize>(&mut self, message: &T) -> Result<Vec<u8>> {
        let bytes = codec::encode(message)?;
        self.seal(&bytes)
    }

    /// Opens a Noise message and decodes a typed message when one is complete.
    pub fn receive<T: DeserializeOwned>(
        &mut self,
        noise_message: &[u8],
        what: &'static str,
    ) -> Result<Option<T>> {
        match self.open(noise_message)? {
            None => Ok(None),
            Some(bytes) => match codec::decode(&bytes, what) {
                Ok(v) => Ok(Some(v)),
                Err(e) => {
                    self.dead = true;
                    Err(e)
                }
            },
        }
    }

    /// True while a fragmented message is half received (end of stream now means truncation).
    pub fn mid_message(&self) -> bool {
        !self.partial.is_empty()
    }

    /// The limits and rekey points this channel was made with.
    pub fn config(&self) -> ChannelConfig {
        self.cfg
    }

    /// Rekeys done so far in each direction (sent, received); for tests and statistics.
    pub fn rekeys(&self) -> (u64, u64) {
        (self.sent.rekeys, self.received.rekeys)
    }

    /// Whether a failure has ended the channel.
    pub fn is_dead(&self) -> bool {
        self.dead
    }
}
