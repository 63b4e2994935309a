//! The video encoder interface the agent's encode thread drives, its settings and errors, and the
//! constructors of the available backends: libaom's realtime mode (`aom`, the default where it is
//! built in) and rav1e (pure Rust, always there).

#[cfg(feature = "aom")]
mod aom_backend;
mod rav1e_backend;

use crate::frame::{FrameError, Yuv420Frame};

#[cfg(feature = "aom")]
pub use aom_backend::aom_encoder;
pub use rav1e_backend::rav1e_encoder;

/// An encoder backend this build can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// libaom in realtime mode: no lookahead, screen-content tools, damaged-block skipping, and
    /// a bitrate that can change while it runs.
    #[cfg(feature = "aom")]
    Aom,
    /// rav1e: pure Rust, holds about four pictures back, constant quality.
    Rav1e,
}

impl Backend {
    /// Every backend built in, fastest first (the first is the default).
    pub const ALL: &'static [Backend] = &[
        #[cfg(feature = "aom")]
        Backend::Aom,
        Backend::Rav1e,
    ];

    /// The default: the fastest backend built in.
    pub fn fastest() -> Backend {
        Self::ALL.first().copied().unwrap_or(Backend::Rav1e)
    }

    /// The name used on command lines and in statistics.
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "aom")]
            Backend::Aom => "aom",
            Backend::Rav1e => "rav1e",
        }
    }

    /// The backend called `name`, if this build has it.
    pub fn from_name(name: &str) -> Result<Backend, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|b| b.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|b| b.name()).collect();
                if name == "aom" {
                    format!("this build has no libaom encoder (built without the `aom` feature); available: {}", known.join(", "))
                } else {
                    format!("unknown encoder {name:?}; available: {}", known.join(", "))
                }
            })
    }

    /// Builds an encoder of this backend.
    pub fn encoder(self, settings: EncoderSettings) -> Result<Box<dyn VideoEncoder>, EncodeError> {
        match self {
            #[cfg(feature = "aom")]
            Backend::Aom => aom_encoder(settings),
            Backend::Rav1e => rav1e_encoder(settings),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One compressed picture (a temporal unit of AV1 OBUs), ready to send.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedPacket {
    /// The compressed bytes, fed as-is to the decoder.
    pub data: Vec<u8>,
    /// Whether the decoder can start from this packet (an AV1 key frame with its sequence
    /// header).
    pub keyframe: bool,
    /// The `capture_us` passed with the picture this packet encodes.
    pub capture_us: u64,
}

impl std::fmt::Debug for EncodedPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EncodedPacket({} bytes, keyframe {}, capture_us {})",
            self.data.len(),
            self.keyframe,
            self.capture_us
        )
    }
}

/// How to configure an encoder. The size is fixed for the encoder's lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderSettings {
    /// Picture width in pixels (at least 16 for rav1e).
    pub width: u32,
    /// Picture height in pixels (at least 16 for rav1e).
    pub height: u32,
    /// Target frame rate, used for rate control and the key frame interval.
    pub fps: u32,
    /// Target bitrate; `None` encodes at constant quality, tuned for sharp text.
    pub bitrate_kbps: Option<u32>,
    /// Encoder threads; 0 uses every core.
    pub threads: usize,
}

impl EncoderSettings {
    /// Frame rate used when none is given.
    pub const DEFAULT_FPS: u32 = 30;

    /// Constant-quality settings for a `width` x `height` picture at 30 fps on every core.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            fps: Self::DEFAULT_FPS,
            bitrate_kbps: None,
            threads: 0,
        }
    }

    /// Smallest and largest picture side any backend accepts (AV1's limit is 65,536; 16 keeps
    /// rav1e's minimum for both backends).
    pub const MIN_SIDE: u32 = 16;
    /// See [`EncoderSettings::MIN_SIDE`].
    pub const MAX_SIDE: u32 = u16::MAX as u32;

    /// Checks what every backend needs: a size within
    /// [`EncoderSettings::MIN_SIDE`]..=[`EncoderSettings::MAX_SIDE`] and a non-zero frame rate.
    pub fn check(&self) -> Result<(), EncodeError> {
        let (lo, hi) = (Self::MIN_SIDE, Self::MAX_SIDE);
        let side_ok = |s: u32| (lo..=hi).contains(&s);
        if !side_ok(self.width) || !side_ok(self.height) {
            return Err(EncodeError::InvalidSettings(format!(
                "size {}x{} outside {lo}..={hi}",
                self.width, self.height
            )));
        }
        if self.fps == 0 {
            return Err(EncodeError::InvalidSettings("frame rate 0".into()));
        }
        Ok(())
    }

    /// The thread count to use: `threads`, or every core when it is 0.
    pub fn effective_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// Why an encoder could not be built or could not encode.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The settings are out of range (size too small or too large, zero frame rate, ...).
    #[error("invalid encoder settings: {0}")]
    InvalidSettings(String),
    /// The picture's buffers do not match its declared geometry.
    #[error("bad picture: {0}")]
    Frame(#[from] FrameError),
    /// The picture's size differs from the encoder's; build a new encoder for the new size.
    #[error("picture is {got_w}x{got_h}, encoder was built for {want_w}x{want_h}")]
    SizeMismatch {
        /// Picture width.
        got_w: u32,
        /// Picture height.
        got_h: u32,
        /// Encoder width.
        want_w: u32,
        /// Encoder height.
        want_h: u32,
    },
    /// The backend failed; the encoder should be dropped and rebuilt.
    #[error("{backend} encoder failed: {detail}")]
    Backend {
        /// Backend name.
        backend: &'static str,
        /// What the backend reported.
        detail: String,
    },
}

/// A video encoder for one picture size. Implementations are driven from one encode thread.
///
/// # Latency and the repeat-until-emitted pattern
///
/// An encoder may hold pictures back before their packets come out: rav1e 0.8, even in its
/// low-latency mode with the smallest lookahead, emits a picture's packet only after about four
/// more pictures have been submitted (the first packet comes out on the fifth picture). A screen
/// that changes once and then stays still would leave its change stuck inside the encoder.
///
/// So the caller remembers the `capture_us` of the last picture that changed. While
/// [`VideoEncoder::pending`] is non-zero and no packet with that `capture_us` has come out, and
/// nothing new was captured, it re-submits the same picture with a new `capture_us` (cheap: an
/// unchanged picture encodes to a few dozen bytes) until the change has been emitted. Each
/// re-submission is itself held back, so `pending()` does not drop to zero this way; it says
/// that something is still inside, not how many repeats are left.
///
/// # Size changes
///
/// The size is fixed when the encoder is built. When the captured size changes, the caller drops
/// this encoder and builds a new one (its first packet is a key frame); [`VideoEncoder::encode`]
/// refuses pictures of another size with [`EncodeError::SizeMismatch`].
pub trait VideoEncoder: Send {
    /// Backend name, for logs and statistics.
    fn name(&self) -> &'static str;

    /// Submits one picture; returns the packets that became ready (possibly for earlier pictures).
    ///
    /// `capture_us` is carried to the packet that encodes this picture. `force_keyframe` makes
    /// this picture a key frame (for a new viewer or after loss).
    fn encode(
        &mut self,
        frame: &Yuv420Frame,
        capture_us: u64,
        force_keyframe: bool,
    ) -> Result<Vec<EncodedPacket>, EncodeError>;

    /// Pictures submitted whose packets have not come out yet (see the trait docs for how to
    /// flush a change out while the screen is still).
    fn pending(&self) -> usize;

    /// The settings this encoder was built with.
    fn settings(&self) -> &EncoderSettings;

    /// Changes the target bitrate from the next picture on, without a key frame. Returns `false`
    /// when this backend cannot (rav1e fixes its rate control when it is built); the caller then
    /// adapts by frame rate alone.
    fn set_bitrate(&mut self, kbps: u32) -> bool {
        let _ = kbps;
        false
    }

    /// The current target bitrate, for backends that have one.
    fn bitrate_kbps(&self) -> Option<u32> {
        None
    }
}
