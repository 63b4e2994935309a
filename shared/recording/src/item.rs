//! What a recording holds, one [`Item`] per record, and the payload encoding of each kind
//! (both directions, so that the writer and the readers cannot disagree).

use serde::{Deserialize, Serialize};
use sightline_core::media_proof::SignedCheckpoint;
use sightline_core::messages::{CursorShape, InputEvent};
use sightline_core::session_events::SignedEvent;

use crate::error::RecordingError;
use crate::format::{kind, Bytes};
use crate::meta::{self, MetaInfo};

/// One record of a recording, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// The session's metadata (the first record).
    Meta(MetaInfo),
    /// The picture format from here on (AV1).
    Config {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// One AV1 temporal unit, as the agent sent it.
    Packet {
        /// The agent's packet number.
        seq: u64,
        /// Capture time, microseconds since the Unix epoch (agent clock).
        capture_us: u64,
        /// Whether decoding can start here.
        keyframe: bool,
        /// The temporal unit.
        data: Vec<u8>,
    },
    /// Pointer position (normalised) and, when it changed, its shape.
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
    /// The operator's input.
    Input(InputEvent),
    /// An event the agent signed.
    Event(SignedEvent),
    /// A media checkpoint the agent signed.
    Checkpoint(SignedCheckpoint),
    /// Control, consent or pause state changed.
    State(StateChange),
    /// The recording ended, and why.
    End(String),
}

/// A change of the session's state as the agent announced it (State record, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateChange {
    /// Control granted (`true`) or revoked / declined (`false`).
    Control {
        /// Granted or not.
        granted: bool,
    },
    /// The customer is being asked about `what` ("viewing" or "control").
    ConsentPending {
        /// What is asked for.
        what: String,
    },
    /// Sharing paused.
    Paused {
        /// Why.
        reason: String,
    },
    /// Sharing resumed.
    Resumed,
    /// Control withdrawn by the agent (not the customer's choice).
    ControlWithdrawn {
        /// Why.
        reason: String,
    },
    /// The agent closed the session.
    Closed {
        /// Why.
        reason: String,
    },
    /// A state this build does not know (written by a newer one), as its JSON text.
    #[serde(skip)]
    Other(String),
}

#[derive(Serialize, Deserialize)]
struct EndJson {
    reason: String,
}

/// Bytes before a video packet's data: seq, capture_us, keyframe.
pub(crate) const PACKET_HEADER_LEN: usize = 17;

/// Video packet payload header: seq, capture_us, keyframe.
pub(crate) fn packet_header(seq: u64, capture_us: u64, keyframe: bool) -> [u8; PACKET_HEADER_LEN] {
    let mut h = [0u8; PACKET_HEADER_LEN];
    h[..8].copy_from_slice(&seq.to_le_bytes());
    h[8..16].copy_from_slice(&capture_us.to_le_bytes());
    h[16] = u8::from(keyframe);
    h
}

/// Picture format payload.
pub(crate) fn config(width: u32, height: u32) -> [u8; 8] {
    let mut p = [0u8; 8];
    p[..4].copy_from_slice(&width.to_le_bytes());
    p[4..].copy_from_slice(&height.to_le_bytes());
    p
}

/// Cursor payload.
pub(crate) fn cursor(x: f32, y: f32, visible: bool, shape: Option<&CursorShape>) -> Vec<u8> {
    let mut p = Vec::with_capacity(18 + shape.map_or(0, |s| s.rgba.len()));
    p.extend_from_slice(&x.to_le_bytes());
    p.extend_from_slice(&y.to_le_bytes());
    p.push(u8::from(visible));
    match shape {
        None => p.push(0),
        Some(s) => {
            p.push(1);
            for v in [s.width, s.height, s.hot_x, s.hot_y] {
                p.extend_from_slice(&v.to_le_bytes());
            }
            p.extend_from_slice(&s.rgba);
        }
    }
    p
}

fn encode_err(what: &'static str) -> impl FnOnce(String) -> RecordingError {
    move |why| RecordingError::Encode { what, why }
}

/// Input payload (JSON).
pub(crate) fn input(ev: &InputEvent) -> Result<Vec<u8>, RecordingError> {
    serde_json::to_vec(ev).map_err(|e| encode_err("an input event")(e.to_string()))
}

/// Session event payload (postcard).
pub(crate) fn event(ev: &SignedEvent) -> Result<Vec<u8>, RecordingError> {
    postcard::to_allocvec(ev).map_err(|e| encode_err("a session event")(e.to_string()))
}

/// Checkpoint payload (postcard).
pub(crate) fn checkpoint(cp: &SignedCheckpoint) -> Result<Vec<u8>, RecordingError> {
    postcard::to_allocvec(cp).map_err(|e| encode_err("a checkpoint")(e.to_string()))
}

/// State payload (JSON).
pub(crate) fn state(s: &StateChange) -> Result<Vec<u8>, RecordingError> {
    serde_json::to_vec(s).map_err(|e| encode_err("a state change")(e.to_string()))
}

/// End payload (JSON).
pub(crate) fn end(reason: &str) -> Result<Vec<u8>, RecordingError> {
    serde_json::to_vec(&EndJson {
        reason: reason.to_string(),
    })
    .map_err(|e| encode_err("the end record")(e.to_string()))
}

/// Decodes the payload of a record of `kind` at plaintext `offset`; `None` for kinds that are
/// not items (Index, Padding, kinds this build does not know).
pub(crate) fn decode(
    kind: u8,
    payload: Vec<u8>,
    offset: u64,
) -> Result<Option<Item>, RecordingError> {
    let mut b = Bytes::new(&payload, offset);
    let item = match kind {
        kind::META => Item::Meta(meta::decode(&payload, offset)?),
        kind::VIDEO_CONFIG => {
            let (width, height) = (b.u32()?, b.u32()?);
            b.end()?;
            Item::Config { width, height }
        }
        kind::VIDEO_PACKET => {
            let (seq, capture_us, keyframe) = (b.u64()?, b.u64()?, b.flag()?);
            // The data is the rest of the payload: moved down in place, not copied anew.
            let mut data = payload;
            data.drain(..PACKET_HEADER_LEN);
            Item::Packet {
                seq,
                capture_us,
                keyframe,
                data,
            }
        }
        kind::CURSOR => decode_cursor(&mut b)?,
        kind::INPUT => Item::Input(
            serde_json::from_slice(&payload).map_err(|e| b.bad(format!("input event: {e}")))?,
        ),
        kind::SESSION_EVENT => Item::Event(
            postcard::from_bytes(&payload).map_err(|e| b.bad(format!("session event: {e}")))?,
        ),
        kind::CHECKPOINT => Item::Checkpoint(
            postcard::from_bytes(&payload).map_err(|e| b.bad(format!("checkpoint: {e}")))?,
        ),
        kind::STATE => Item::State(decode_state(&payload, &b)?),
        kind::END => {
            let j: EndJson =
                serde_json::from_slice(&payload).map_err(|e| b.bad(format!("end: {e}")))?;
            Item::End(j.reason)
        }
        _ => return Ok(None),
    };
    Ok(Some(item))
}

fn decode_cursor(b: &mut Bytes<'_>) -> Result<Item, RecordingError> {
    let (x, y, visible) = (b.f32()?, b.f32()?, b.flag()?);
    let shape = if b.flag()? {
        let (width, height, hot_x, hot_y) = (b.u16()?, b.u16()?, b.u16()?, b.u16()?);
        let want = usize::from(width) * usize::from(height) * 4;
        if b.remaining() != want {
            return Err(b.bad(format!(
                "cursor shape {width}x{height} needs {want} bytes of RGBA, the record has {}",
                b.remaining()
            )));
        }
        Some(CursorShape {
            width,
            height,
            hot_x,
            hot_y,
            rgba: b.rest().to_vec(),
        })
    } else {
        b.end()?;
        None
    };
    Ok(Item::Cursor {
        x,
        y,
        visible,
        shape,
    })
}

/// A state this build knows, or [`StateChange::Other`] for valid JSON it does not know (a newer
/// writer's), so that old readers keep going.
fn decode_state(payload: &[u8], b: &Bytes<'_>) -> Result<StateChange, RecordingError> {
    match serde_json::from_slice::<StateChange>(payload) {
        Ok(s) => Ok(s),
        Err(e) => match serde_json::from_slice::<serde_json::Value>(payload) {
            Ok(v) => Ok(StateChange::Other(v.to_string())),
            Err(_) => Err(b.bad(format!("state: {e}"))),
        },
    }
}
