//! Media pieces shared by the agent and the viewer, with no networking:
//! - [`frame`]: picture types (BGRA as captured, planar YUV 4:2:0 as encoded and decoded);
//! - [`convert`]: BGRA → YUV 4:2:0 for the encoder and YUV → RGBA for saving pictures (SIMD);
//! - [`png_file`]: PNG screenshots in and out, as RGBA;
//! - [`encode`]: the encoder trait and its backends (libaom realtime, rav1e);
//! - [`damage`]: which blocks changed between two pictures (for the encoder's active map);
//! - `decode` (feature `decode`, on by default): AV1 decoding with dav1d;
//! - [`quality`]: PSNR, for tests and benchmarks;
//! - [`pattern`]: synthetic screen-like pictures for tests, benchmarks and demos.

pub mod convert;
pub mod damage;
#[cfg(feature = "decode")]
pub mod decode;
pub mod encode;
pub mod frame;
pub mod pattern;
pub mod png_file;
pub mod quality;

pub use convert::{bgra_to_yuv420, bgra_to_yuv420_into, yuv420_to_rgba, ConvertError};
#[cfg(feature = "decode")]
pub use decode::{Av1Decoder, DecodeError};
pub use encode::{
    rav1e_encoder, Backend, EncodeError, EncodedPacket, EncoderSettings, VideoEncoder,
};
pub use frame::{BgraFrame, FrameError, Yuv420Frame};
pub use png_file::{load_png_rgba, save_png, PngError};
pub use quality::{luma_from_rgba, psnr};
