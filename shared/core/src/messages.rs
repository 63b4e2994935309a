//! Application messages of the end-to-end session, after both identities are verified.
//!
//! The enum grows with later features (video, input, consent); postcard encodes the variant
//! index, so a message type this build does not know is a typed decode error, not a panic.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A pointer image, RGBA 8-bit, straight alpha.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorShape {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Hotspot column.
    pub hot_x: u16,
    /// Hotspot row.
    pub hot_y: u16,
    /// `width * height * 4` bytes.
    pub rgba: Vec<u8>,
}

/// Why a session ended, sent in [`Message::Close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseReason {
    /// The operator ended the session.
    EndedByOperator,
    /// The customer ended the session.
    EndedByCustomer,
    /// The peer broke the protocol.
    ProtocolError,
    /// A side is shutting down.
    Shutdown,
    /// The peer stopped answering.
    Timeout,
    /// The session reached the time limit in the operator's certificate.
    TimeLimit,
    /// The operator's certificate does not allow what the session needs (viewing).
    NotPermitted,
    /// The customer said no to sharing the screen.
    DeclinedByCustomer,
    /// The customer did not answer the request to share the screen in time.
    NoAnswerFromCustomer,
    /// The operator's certificate expired: a session never outlives the authority that
    /// allowed it.
    CertificateExpired,
    /// The help desk requires the session to be recorded, and the recording cannot go on.
    RecordingFailed,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::EndedByOperator => "ended by operator",
            CloseReason::EndedByCustomer => "ended by customer",
            CloseReason::ProtocolError => "protocol error",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Timeout => "timeout",
            CloseReason::TimeLimit => "session time limit reached",
            CloseReason::NotPermitted => "not permitted for this operator",
            CloseReason::DeclinedByCustomer => "declined by customer",
            CloseReason::NoAnswerFromCustomer => "customer did not answer",
            CloseReason::CertificateExpired => "operator certificate expired",
            CloseReason::RecordingFailed => "the required recording of the session failed",
        })
    }
}

/// Video codec of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VideoCodec {
    /// AV1, 8-bit 4:2:0.
    Av1,
}

/// A mouse button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MouseButton {
    /// Primary (left) button.
    Left,
    /// Middle button (wheel click).
    Middle,
    /// Secondary (right) button.
    Right,
    /// Back (side) button.
    Back,
    /// Forward (side) button.
    Forward,
}

/// One input event from the operator. Pointer positions are normalised to the remote
/// screen (0.0 = left/top edge, 1.0 = right/bottom edge) so they survive scaling and resizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InputEvent {
    /// Absolute pointer position.
    PointerMove {
        /// Horizontal position, 0..=1.
        x: f32,
        /// Vertical position, 0..=1.
        y: f32,
    },
    /// A button went down or up.
    Button {
        /// Which button.
        button: MouseButton,
        /// Down (true) or up (false).
        pressed: bool,
    },
    /// Wheel scroll in lines (positive: right / down).
    Wheel {
        /// Horizontal lines.
        dx: f32,
        /// Vertical lines.
        dy: f32,
    },
    /// A physical key went down or up. `key` is the W3C `KeyboardEvent.code` name of the
    /// physical key (`"KeyA"`, `"Enter"`, `"ShiftLeft"`), independent of layout.
    Key {
        /// Physical key name.
        key: String,
        /// Down (true) or up (false).
        pressed: bool,
    },
    /// Text typed (after the operator's layout and input method), for characters that have no
    /// matching physical key on the remote layout.
    Text {
        /// The characters.
        text: String,
    },
}

/// What the customer is asked to allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsentFor {
    /// Seeing the screen.
    Viewing,
    /// Keyboard and mouse.
    Control,
}

/// One application message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// Sent first by each side after identities verify: what this peer can do.
    Hello {
        /// Software name and version, for diagnostics.
        software: String,
        /// Feature names this peer supports.
        capabilities: Vec<String>,
    },
    /// Liveness and round-trip measurement.
    Ping {
        /// Echoed in the pong.
        id: u64,
        /// Arbitrary bytes echoed back (also used to exercise fragmentation).
        payload: Vec<u8>,
    },
    /// Answer to a ping.
    Pong {
        /// The ping's id.
        id: u64,
        /// The ping's payload.
        payload: Vec<u8>,
    },
    /// Agent → viewer: the stream's format; sent before the first packet and on every change
    /// (a resize is always followed by a keyframe).
    VideoConfig {
        /// Codec.
        codec: VideoCodec,
        /// Picture width in pixels.
        width: u32,
        /// Picture height in pixels.
        height: u32,
    },
    /// Agent → viewer: one encoded picture.
    VideoPacket {
        /// Increases by one per packet; a gap means a lost packet.
        seq: u64,
        /// When the picture was captured, microseconds since the Unix epoch (agent clock).
        capture_us: u64,
        /// Whether the packet can be decoded on its own.
        keyframe: bool,
        /// The encoded bytes (an AV1 temporal unit).
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Viewer → agent: the decoder needs a keyframe (start, error, lost packet).
    KeyframeRequest,
    /// Agent → viewer: pointer position (normalised) and, when it changed, its shape.
    Cursor {
        /// Horizontal position, 0..=1.
        x: f32,
        /// Vertical position, 0..=1.
        y: f32,
        /// Whether the pointer is on the shared screen.
        visible: bool,
        /// New shape, when it changed.
        shape: Option<CursorShape>,
    },
    /// Viewer → agent: operator input; only honoured while control is granted.
    Input(InputEvent),
    /// Agent → viewer: whether the operator may send input now. `false` after a grant means
    /// the customer took control back; `false` without one, that the request was declined.
    Control {
        /// Granted (true) or revoked (false).
        granted: bool,
    },
    /// Viewer → agent: the operator asks for control of keyboard and mouse. The agent asks the
    /// customer and answers with [`Message::Control`].
    ControlRequest,
    /// Agent → viewer: the customer is being asked to consent to `what`; nothing of it is
    /// shared until they say yes.
    ConsentPending {
        /// What is asked for.
        what: ConsentFor,
    },
    /// Viewer → agent: video packet `seq` (and every one before it) has arrived. Sent for
    /// every packet as it is received, before decoding; the agent's congestion control measures
    /// round trips and delivery from these.
    VideoAck {
        /// The packet's sequence number.
        seq: u64,
    },
    /// Agent → viewer: what the congestion control is doing, about once a second while video
    /// flows (for the viewer's overlay).
    SendRate {
        /// The bitrate the encoder aims at now, kbit/s.
        target_kbps: u32,
        /// What was sent over the last second, kbit/s.
        send_kbps: u32,
        /// Pictures sent over the last second.
        fps: u32,
        /// Round-trip time the agent measures, milliseconds.
        rtt_ms: u32,
        /// Part of it spent waiting in queues, milliseconds.
        queue_ms: u32,
    },
    /// Explicit end of the session; nothing follows it.
    Close {
        /// Why.
        reason: CloseReason,
    },
    /// Agent → viewer: sharing stopped for now (no pictures, no control) and why; it goes on
    /// after [`Message::SharingResumed`]. Control, if the operator had it, is withdrawn first
    /// ([`Message::ControlWithdrawn`], then [`Message::Control`] `{ granted: false }`).
    SharingPaused {
        /// Why.
        reason: PauseReason,
    },
    /// Agent → viewer: sharing goes on after a pause (a key frame follows); control must be
    /// asked for again.
    SharingResumed,
    /// Agent → viewer: why control is being taken away or refused, when it is not the
    /// customer's own choice; a [`Message::Control`] `{ granted: false }` follows.
    ControlWithdrawn {
        /// Why.
        reason: WithdrawReason,
    },
    /// Agent → viewer: something the customer decided, signed by the agent
    /// ([`crate::session_events`]), for the viewer to hand to the relay's audit log.
    SessionEvent(crate::session_events::SignedEvent),
    /// Agent → viewer: the running hash over the video sent so far, signed with the session's
    /// media key ([`crate::media_proof`]); a recording keeps it to prove what the agent sent.
    MediaCheckpoint(crate::media_proof::SignedCheckpoint),
    /// Viewer → agent: the operator ends the session and asks the agent to close it: the
    /// agent stops sharing, sends its final media checkpoint and last signed events, then
    /// [`Message::Close`] with [`CloseReason::EndedByOperator`]. A recorded session ends this
    /// way, so that the recording holds the agent's proof up to the very end; a viewer that
    /// hears nothing within a few seconds closes the session itself.
    EndRequest,
}

/// Why the agent paused sharing ([`Message::SharingPaused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PauseReason {
    /// The on-screen banner that tells the customer their screen is shared is gone (another
    /// program removed it, or its connection to the display broke); sharing waits until it is
    /// back.
    BannerGone,
}

impl fmt::Display for PauseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PauseReason::BannerGone => "the customer's on-screen banner is gone",
        })
    }
}

/// Why the agent took control away or refused it without the customer's say
/// ([`Message::ControlWithdrawn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WithdrawReason {
    /// The on-screen banner was removed or hidden: control ends (and sharing pauses until the
    /// banner is back).
    BannerGone,
    /// The customer's revoke hotkey (Ctrl+Alt+R) is not available (another program holds it):
    /// no control while the customer has no key to take it back.
    RevokeKeyUnavailable,
}

impl fmt::Display for WithdrawReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WithdrawReason::BannerGone => "the customer's on-screen banner was removed",
            WithdrawReason::RevokeKeyUnavailable => {
                "the customer's revoke hotkey is held by another program"
            }
        })
    }
}
