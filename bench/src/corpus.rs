//! The recorded desktop corpus: lossless clips of real desktop activity (see `assets/corpus`).
//!
//! A clip is one animated PNG (APNG, 8-bit RGB, not interlaced), so every browser and image
//! viewer plays it. Frame 0 is the whole screen (the `IDAT` image, part of the animation).
//! Every later frame stores only the bounding rectangle of the pixels that changed since the
//! frame before, placed with the `fcTL` offsets (`dispose_op` None, `blend_op` Source); a frame
//! in which nothing changed stores the 1x1 rectangle at (0, 0) with the pixel already there.
//! Each frame's delay (`delay_num`/`delay_den`, in milliseconds: den 1000) is the real time to
//! the next capture, so the sum of the delays before a frame is when it was captured.
//!
//! [`ClipWriter`] turns full BGRA pictures with timestamps into that form, computing the change
//! rectangles itself; [`ClipReader`] streams a clip back as full BGRA pictures while holding a
//! single canvas; [`list`] indexes [`corpus_dir`] from the chunk headers without decoding.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use png::{BitDepth, BlendOp, ColorType, Compression, DisposeOp};
use sightline_media::{BgraFrame, FrameError};

/// Delays are written in milliseconds: `delay_den` 1000.
const DELAY_DEN: u16 = 1000;
/// What the last frame of a one-frame clip is shown for (one frame at 30 fps).
const SINGLE_FRAME_MS: u16 = 33;
/// The eight bytes every PNG file starts with.
const PNG_SIGNATURE: [u8; 8] = [137, 80, 78, 71, 13, 10, 26, 10];

/// Why reading, writing or listing a clip failed.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The file system refused (open, read, write, rename).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The PNG decoder rejected the file (corrupt, truncated, bad checksum).
    #[error("{path}: not a readable PNG: {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's reason.
        #[source]
        source: png::DecodingError,
    },
    /// The PNG encoder failed.
    #[error("{path}: writing the PNG failed: {source}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoder's reason.
        #[source]
        source: png::EncodingError,
    },
    /// A valid PNG that is not a corpus clip (not animated, not 8-bit RGB, a frame disposal
    /// this format does not use, a chunk that runs past the end of the file).
    #[error("{path}: not a corpus clip: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A picture handed to [`ClipWriter::push`] has a different size than the clip.
    #[error("picture is {got_width}x{got_height}, the clip is {width}x{height}")]
    FrameSize {
        /// The clip's width.
        width: u32,
        /// The clip's height.
        height: u32,
        /// The picture's width.
        got_width: u32,
        /// The picture's height.
        got_height: u32,
    },
    /// A picture's buffer does not match its declared geometry.
    #[error("bad picture: {0}")]
    Frame(#[from] FrameError),
    /// Timestamps went backwards, or two frames are more than 65.535 s apart (the most one
    /// frame delay can say in milliseconds).
    #[error("frame at {at_ms} ms cannot follow the frame at {previous_ms} ms")]
    Time {
        /// The previous frame's time.
        previous_ms: u32,
        /// The rejected frame's time.
        at_ms: u32,
    },
}

/// Shorthand for this module's results.
pub type Result<T, E = CorpusError> = std::result::Result<T, E>;

/// A rectangle of the screen in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width (at least 1).
    pub width: u32,
    /// Height (at least 1).
    pub height: u32,
}

impl Rect {
    /// The whole of a `width` x `height` picture.
    pub fn full(width: u32, height: u32) -> Self {
        Rect {
            x: 0,
            y: 0,
            width,
            height,
        }
    }

    /// Number of pixels inside.
    pub fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// One frame of a clip, as a whole picture.
#[derive(Debug, Clone)]
pub struct CorpusFrame {
    /// Position in the clip, from 0.
    pub index: u32,
    /// When it was captured, in milliseconds since the clip's first frame.
    pub at_ms: u32,
    /// The whole screen: B, G, R, 255 per pixel, `stride` = `width * 4`. Shared with the
    /// reader's canvas: drop it before the next [`ClipReader::next_frame`] and the reader
    /// updates the canvas in place instead of copying it.
    pub bgra: Arc<BgraFrame>,
    /// Whether any pixel differs from the previous frame (always true for frame 0).
    pub changed: bool,
    /// The rectangle the file stores for this frame when it changed (the whole screen for
    /// frame 0); every changed pixel is inside it. `None` when nothing changed.
    pub damage: Option<Rect>,
}

/// A whole clip in memory. Every frame is a full picture, so this costs
/// `frames * width * height * 4` bytes (90 frames of 1080p: 750 MB); stream big clips with
/// [`ClipReader`] instead.
#[derive(Debug, Clone)]
pub struct Clip {
    /// The file name without `.png` (`scroll-1280x720`).
    pub name: String,
    /// Screen width in pixels.
    pub width: u32,
    /// Screen height in pixels.
    pub height: u32,
    /// The frames in capture order.
    pub frames: Vec<CorpusFrame>,
}

impl Clip {
    /// Reads every frame of the clip at `path` into memory.
    pub fn load(path: &Path) -> Result<Clip> {
        let mut reader = ClipReader::open(path)?;
        let mut frames = Vec::with_capacity(reader.frame_count() as usize);
        while let Some(frame) = reader.next_frame()? {
            frames.push(frame);
        }
        Ok(Clip {
            name: clip_name(path),
            width: reader.width(),
            height: reader.height(),
            frames,
        })
    }
}

/// What [`list`] and [`probe`] learn about a clip from its chunk headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipInfo {
    /// The file name without `.png` (`scroll-1280x720`).
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// Screen width in pixels.
    pub width: u32,
    /// Screen height in pixels.
    pub height: u32,
    /// Number of frames.
    pub frames: u32,
    /// Sum of all frame delays: from the first capture to the end of the last frame.
    pub duration_ms: u32,
    /// Size of the file in bytes.
    pub file_bytes: u64,
}

/// `assets/corpus` of this workspace, where the recorded clips live.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("assets")
        .join("corpus")
}

/// Every clip (`*.png`) in [`corpus_dir`], sorted by name.
pub fn list() -> Result<Vec<ClipInfo>> {
    list_in(&corpus_dir())
}

/// Every clip (`*.png`) in `dir`, sorted by name.
pub fn list_in(dir: &Path) -> Result<Vec<ClipInfo>> {
    let io = |source| CorpusError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "png") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    paths.iter().map(|p| probe(p)).collect()
}

/// Reads a clip's size, frame count and duration from its chunk headers, without decoding
/// pixels (checksums and image data are checked by [`ClipReader`]).
pub fn probe(path: &Path) -> Result<ClipInfo> {
    let bytes = fs::read(path).map_err(|source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: &str| CorpusError::Format {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut size = None;
    let mut declared = None;
    let mut frames = 0u32;
    let mut duration_us = 0u64;
    for Chunk { kind, data, .. } in chunks(&bytes).map_err(bad)? {
        match (&kind, data.len()) {
            (b"IHDR", 13) => size = Some((be32(data, 0), be32(data, 4))),
            (b"acTL", 8) => declared = Some(be32(data, 0)),
            (b"fcTL", 26) => {
                frames = frames.saturating_add(1);
                let num = u16::from_be_bytes([data[20], data[21]]);
                let den = u16::from_be_bytes([data[22], data[23]]);
                duration_us = duration_us.saturating_add(delay_us(num, den));
            }
            (b"IHDR" | b"acTL" | b"fcTL", _) => return Err(bad("a header chunk has a bad length")),
            _ => {}
        }
    }
    let (width, height) = size.ok_or_else(|| bad("no IHDR chunk"))?;
    let declared = declared.ok_or_else(|| bad("not animated (no acTL chunk)"))?;
    if declared != frames {
        return Err(bad(&format!(
            "acTL declares {declared} frames, the file has {frames}"
        )));
    }
    Ok(ClipInfo {
        name: clip_name(path),
        path: path.to_path_buf(),
        width,
        height,
        frames,
        duration_ms: u32::try_from(duration_us / 1000).unwrap_or(u32::MAX),
        file_bytes: bytes.len() as u64,
    })
}

/// Streams a clip as whole BGRA pictures, composing each stored rectangle onto one canvas.
pub struct ClipReader {
    path: PathBuf,
    reader: png::Reader<BufReader<File>>,
    width: u32,
    height: u32,
    frame_count: u32,
    next_index: u32,
    elapsed_us: u64,
    canvas: Arc<BgraFrame>,
    /// One decoded rectangle, RGB; sized for the whole screen as the decoder requires.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for ClipReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClipReader({}, {}x{}, frame {}/{})",
            self.path.display(),
            self.width,
            self.height,
            self.next_index,
            self.frame_count
        )
    }
}

impl ClipReader {
    /// Opens the clip at `path` and checks that it is one: animated 8-bit RGB, not interlaced,
    /// with the default image as frame 0.
    pub fn open(path: &Path) -> Result<ClipReader> {
        let (reader, width, height, frame_count) = open_png(path)?;
        let row = width as usize * 4;
        let canvas = BgraFrame {
            width,
            height,
            stride: row,
            data: vec![0; row * height as usize],
        };
        Ok(ClipReader {
            path: path.to_path_buf(),
            scratch: vec![0; width as usize * 3 * height as usize],
            reader,
            width,
            height,
            frame_count,
            next_index: 0,
            elapsed_us: 0,
            canvas: Arc::new(canvas),
        })
    }

    /// Screen width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Screen height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Number of frames in the clip.
    pub fn frame_count(&self) -> u32 {
        self.frame_count
    }

    /// The next frame, or `None` after the last one.
    pub fn next_frame(&mut self) -> Result<Option<CorpusFrame>> {
        if self.next_index >= self.frame_count {
            return Ok(None);
        }
        let path = &self.path;
        let output = self
            .reader
            .next_frame(&mut self.scratch)
            .map_err(|source| CorpusError::Decode {
                path: path.clone(),
                source,
            })?;
        let bad = |reason: String| CorpusError::Format {
            path: path.clone(),
            reason,
        };
        if (output.color_type, output.bit_depth) != (ColorType::Rgb, BitDepth::Eight) {
            return Err(bad(format!(
                "frame {} decodes as {:?} {:?}",
                self.next_index, output.color_type, output.bit_depth
            )));
        }
        let fctl = self
            .reader
            .info()
            .frame_control
            .ok_or_else(|| bad(format!("frame {} has no fcTL", self.next_index)))?;
        if fctl.dispose_op != DisposeOp::None {
            return Err(bad(format!(
                "frame {} uses dispose_op {:?}; clips use None",
                self.next_index, fctl.dispose_op
            )));
        }
        let rect = Rect {
            x: fctl.x_offset,
            y: fctl.y_offset,
            width: output.width,
            height: output.height,
        };
        let fits = rect
            .x
            .checked_add(rect.width)
            .is_some_and(|r| r <= self.width)
            && rect
                .y
                .checked_add(rect.height)
                .is_some_and(|b| b <= self.height);
        if !fits || (self.next_index == 0 && rect != Rect::full(self.width, self.height)) {
            return Err(bad(format!(
                "frame {} covers {rect:?}, outside the {}x{} screen or not all of it",
                self.next_index, self.width, self.height
            )));
        }
        // Blend ops Source and Over agree here: RGB pixels are opaque.
        let changed =
            compose(Arc::make_mut(&mut self.canvas), rect, &self.scratch) || self.next_index == 0;
        let frame = CorpusFrame {
            index: self.next_index,
            at_ms: u32::try_from(self.elapsed_us / 1000).unwrap_or(u32::MAX),
            bgra: Arc::clone(&self.canvas),
            changed,
            damage: changed.then_some(rect),
        };
        self.elapsed_us = self
            .elapsed_us
            .saturating_add(delay_us(fctl.delay_num, fctl.delay_den));
        self.next_index += 1;
        Ok(Some(frame))
    }

    /// Starts again from frame 0 (reopens the file; the canvas is reused).
    pub fn rewind(&mut self) -> Result<()> {
        let (reader, width, height, frame_count) = open_png(&self.path)?;
        if (width, height, frame_count) != (self.width, self.height, self.frame_count) {
            return Err(CorpusError::Format {
                path: self.path.clone(),
                reason: "the file changed while it was being read".to_string(),
            });
        }
        self.reader = reader;
        self.next_index = 0;
        self.elapsed_us = 0;
        Ok(())
    }
}

/// Opens `path` as a clip: the decoder, width, height and frame count.
fn open_png(path: &Path) -> Result<(png::Reader<BufReader<File>>, u32, u32, u32)> {
    let file = File::open(path).map_err(|source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // The APNG chunks are ancillary, and by default the decoder skips ancillary chunks with a
    // bad checksum: a damaged fdAT would silently drop a frame's pixels.
    let mut options = png::DecodeOptions::default();
    options.set_skip_ancillary_crc_failures(false);
    let reader = png::Decoder::new_with_options(BufReader::new(file), options)
        .read_info()
        .map_err(|source| CorpusError::Decode {
            path: path.to_path_buf(),
            source,
        })?;
    let bad = |reason: &str| CorpusError::Format {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let info = reader.info();
    if (info.color_type, info.bit_depth) != (ColorType::Rgb, BitDepth::Eight) {
        return Err(bad("not 8-bit RGB"));
    }
    if info.interlaced {
        return Err(bad("interlaced"));
    }
    let frames = info
        .animation_control
        .ok_or_else(|| bad("not animated (no acTL chunk)"))?
        .num_frames;
    if info.frame_control.is_none() {
        return Err(bad(
            "the default image is not frame 0 (no fcTL before IDAT)",
        ));
    }
    let (width, height) = (info.width, info.height);
    Ok((reader, width, height, frames))
}

/// Copies the RGB rectangle `rgb` onto `canvas` at `rect`; says whether any pixel changed.
fn compose(canvas: &mut BgraFrame, rect: Rect, rgb: &[u8]) -> bool {
    let mut changed = false;
    let (x, w) = (rect.x as usize, rect.width as usize);
    if w == 0 {
        return false;
    }
    for (row, src) in rgb
        .chunks_exact(w * 3)
        .take(rect.height as usize)
        .enumerate()
    {
        let start = (rect.y as usize + row) * canvas.stride + x * 4;
        let Some(dst) = canvas.data.get_mut(start..start + w * 4) else {
            break;
        };
        for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
            let px = [s[2], s[1], s[0], 255];
            if d != px {
                d.copy_from_slice(&px);
                changed = true;
            }
        }
    }
    changed
}

/// A frame waiting for its delay, which is known once the next frame arrives.
struct Pending {
    at_ms: u32,
    rect: Rect,
    rgb: Vec<u8>,
}

/// Writes a clip from whole BGRA pictures, storing only what changed between them.
///
/// The file appears under its name only when [`ClipWriter::finish`] succeeds; until then it is
/// `NAME.partial`, removed if the writer is dropped unfinished.
pub struct ClipWriter {
    path: PathBuf,
    partial: PathBuf,
    writer: Option<png::Writer<BufWriter<File>>>,
    width: u32,
    height: u32,
    first_ms: Option<u32>,
    /// The last picture pushed, tightly packed BGRX.
    previous: Vec<u8>,
    pending: Option<Pending>,
    last_delay: u16,
    written: u32,
}

impl std::fmt::Debug for ClipWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClipWriter({}, {}x{}, {} frames written)",
            self.path.display(),
            self.width,
            self.height,
            self.written
        )
    }
}

impl ClipWriter {
    /// Starts a `width` x `height` clip at `path`. `compression` trades time for size:
    /// [`Compression::Fast`] keeps up with capture, [`Compression::High`] is for the corpus.
    pub fn create(
        path: &Path,
        width: u32,
        height: u32,
        compression: Compression,
    ) -> Result<ClipWriter> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial).map_err(|source| CorpusError::Io {
            path: partial.clone(),
            source,
        })?;
        let encode = |source| CorpusError::Encode {
            path: partial.clone(),
            source,
        };
        let mut encoder = png::Encoder::new(BufWriter::new(file), width, height);
        encoder.set_color(ColorType::Rgb);
        encoder.set_depth(BitDepth::Eight);
        encoder.set_compression(compression);
        // The frame count is unknown until `finish`, which patches it into the acTL chunk.
        encoder.set_animated(u32::MAX, 0).map_err(encode)?;
        encoder.set_dispose_op(DisposeOp::None).map_err(encode)?;
        encoder.set_blend_op(BlendOp::Source).map_err(encode)?;
        let writer = encoder.write_header().map_err(encode)?;
        Ok(ClipWriter {
            path: path.to_path_buf(),
            partial,
            writer: Some(writer),
            width,
            height,
            first_ms: None,
            previous: Vec::new(),
            pending: None,
            last_delay: SINGLE_FRAME_MS,
            written: 0,
        })
    }

    /// Adds the picture captured at `at_ms` (any origin: times are stored relative to the
    /// first frame; they must not go backwards). The fourth byte of each pixel is ignored.
    /// Returns the rectangle that changed since the previous picture (all of it for the first),
    /// `None` when nothing did.
    pub fn push(&mut self, at_ms: u32, frame: &BgraFrame) -> Result<Option<Rect>> {
        frame.check()?;
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(CorpusError::FrameSize {
                width: self.width,
                height: self.height,
                got_width: frame.width,
                got_height: frame.height,
            });
        }
        let first = *self.first_ms.get_or_insert(at_ms);
        let at = at_ms.checked_sub(first).ok_or(CorpusError::Time {
            previous_ms: first,
            at_ms,
        })?;
        let damage = if self.pending.is_none() {
            Some(Rect::full(self.width, self.height))
        } else {
            changed_rect(&self.previous, frame)
        };
        let rect = damage.unwrap_or(Rect {
            x: 0,
            y: 0,
            width: 1,
            height: 1,
        });
        let delay = match &self.pending {
            None => None,
            Some(pending) => Some(
                at.checked_sub(pending.at_ms)
                    .and_then(|d| u16::try_from(d).ok())
                    .ok_or(CorpusError::Time {
                        previous_ms: pending.at_ms.saturating_add(first),
                        at_ms,
                    })?,
            ),
        };
        let next = Pending {
            at_ms: at,
            rect,
            rgb: crop_rgb(frame, rect),
        };
        if let (Some(pending), Some(delay)) = (self.pending.take(), delay) {
            self.write(&pending, delay)?;
            self.last_delay = delay;
        }
        self.pending = Some(next);
        store_tight(&mut self.previous, frame);
        Ok(damage)
    }

    /// Writes the last frame (shown as long as the interval before it) and the frame count,
    /// and moves the file to its name. Returns what [`probe`] would say about it.
    pub fn finish(mut self) -> Result<ClipInfo> {
        let pending = self.pending.take().ok_or_else(|| CorpusError::Format {
            path: self.path.clone(),
            reason: "a clip needs at least one frame".to_string(),
        })?;
        self.write(&pending, self.last_delay)?;
        if let Some(writer) = self.writer.take() {
            writer.finish().map_err(|source| CorpusError::Encode {
                path: self.partial.clone(),
                source,
            })?;
        }
        patch_frame_count(&self.partial, self.written)?;
        fs::rename(&self.partial, &self.path).map_err(|source| CorpusError::Io {
            path: self.partial.clone(),
            source,
        })?;
        probe(&self.path)
    }

    fn write(&mut self, frame: &Pending, delay_ms: u16) -> Result<()> {
        let partial = &self.partial;
        let encode = |source| CorpusError::Encode {
            path: partial.clone(),
            source,
        };
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        // Frame 0 is the IDAT image and keeps the full-screen fcTL `set_animated` made.
        if self.written > 0 {
            let r = frame.rect;
            writer.reset_frame_position().map_err(encode)?;
            writer
                .set_frame_dimension(r.width, r.height)
                .map_err(encode)?;
            writer.set_frame_position(r.x, r.y).map_err(encode)?;
        }
        writer
            .set_frame_delay(delay_ms, DELAY_DEN)
            .map_err(encode)?;
        writer.write_image_data(&frame.rgb).map_err(encode)?;
        self.written += 1;
        Ok(())
    }
}

impl Drop for ClipWriter {
    fn drop(&mut self) {
        if self.writer.is_some() || self.partial.exists() {
            // Unfinished (or failed): leave no half-written clip behind. Best effort.
            drop(self.writer.take());
            let _ = fs::remove_file(&self.partial);
        }
    }
}

/// The bounding rectangle of the pixels whose B, G or R differ between `previous` (tightly
/// packed) and `frame`; `None` when they are the same picture. A `previous` or `frame` too
/// short for the frame's geometry counts as a change of the whole picture.
pub fn changed_rect(previous: &[u8], frame: &BgraFrame) -> Option<Rect> {
    let row_bytes = frame.width as usize * 4;
    let full = Some(Rect::full(frame.width, frame.height));
    let (mut top, mut bottom) = (None, 0);
    let (mut left, mut right) = (usize::MAX, 0);
    for y in 0..frame.height as usize {
        let a = previous.get(y * row_bytes..(y + 1) * row_bytes);
        let b = frame
            .data
            .get(y * frame.stride..y * frame.stride + row_bytes);
        let (Some(a), Some(b)) = (a, b) else {
            return full;
        };
        if a == b {
            continue;
        }
        let differs = |x: &usize| a[x * 4..x * 4 + 3] != b[x * 4..x * 4 + 3];
        let pixels = frame.width as usize;
        let Some(l) = (0..pixels).find(differs) else {
            continue; // only the ignored fourth bytes differ
        };
        let r = (l..pixels).rev().find(differs).unwrap_or(l);
        top.get_or_insert(y);
        bottom = y;
        left = left.min(l);
        right = right.max(r);
    }
    let top = top?;
    Some(Rect {
        x: left as u32,
        y: top as u32,
        width: (right - left + 1) as u32,
        height: (bottom - top + 1) as u32,
    })
}

/// The pixels of `rect` as packed RGB rows.
fn crop_rgb(frame: &BgraFrame, rect: Rect) -> Vec<u8> {
    let (x, w) = (rect.x as usize, rect.width as usize);
    let mut rgb = Vec::with_capacity(w * 3 * rect.height as usize);
    for y in rect.y as usize..(rect.y + rect.height) as usize {
        let start = y * frame.stride + x * 4;
        for px in frame.data[start..start + w * 4].chunks_exact(4) {
            rgb.extend_from_slice(&[px[2], px[1], px[0]]);
        }
    }
    rgb
}

/// Keeps a tightly packed copy of `frame` in `into`.
fn store_tight(into: &mut Vec<u8>, frame: &BgraFrame) {
    let row_bytes = frame.width as usize * 4;
    into.clear();
    for row in frame.data.chunks(frame.stride).take(frame.height as usize) {
        into.extend_from_slice(&row[..row_bytes]);
    }
}

/// Writes the real frame count into the acTL chunk, whose count was a placeholder.
fn patch_frame_count(path: &Path, frames: u32) -> Result<()> {
    let io = |source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = fs::read(path).map_err(io)?;
    let bad = |reason: &str| CorpusError::Format {
        path: path.to_path_buf(),
        reason: format!("patching the frame count: {reason}"),
    };
    let offset = chunks(&bytes)
        .map_err(bad)?
        .iter()
        .find(|c| &c.kind == b"acTL" && c.data.len() == 8)
        .map(|c| c.offset)
        .ok_or_else(|| bad("the encoder wrote no acTL chunk"))?;
    // acTL data: num_frames, num_plays; then the CRC over type and data.
    let mut tail = [0u8; 12];
    tail[..4].copy_from_slice(&frames.to_be_bytes());
    tail[4..8].copy_from_slice(&bytes[offset + 4..offset + 8]);
    let crc = crc32(&[b"acTL".as_slice(), &tail[..8]]);
    tail[8..].copy_from_slice(&crc.to_be_bytes());
    let mut file = OpenOptions::new().write(true).open(path).map_err(io)?;
    file.seek(SeekFrom::Start(offset as u64)).map_err(io)?;
    file.write_all(&tail).map_err(io)?;
    file.sync_all().map_err(io)
}

/// One chunk of a PNG file.
struct Chunk<'a> {
    kind: [u8; 4],
    /// Where `data` starts in the file.
    offset: usize,
    data: &'a [u8],
}

/// The chunks of a PNG file after its signature, up to and including IEND (checksums are
/// not checked: the decoder does that).
fn chunks(bytes: &[u8]) -> Result<Vec<Chunk<'_>>, &'static str> {
    if !bytes.starts_with(&PNG_SIGNATURE) {
        return Err("no PNG signature");
    }
    let mut at = PNG_SIGNATURE.len();
    let mut out = Vec::new();
    loop {
        let header = bytes.get(at..at + 8).ok_or("truncated before IEND")?;
        let len = be32(header, 0) as usize;
        let kind = [header[4], header[5], header[6], header[7]];
        let offset = at + 8;
        let data = bytes
            .get(offset..offset + len)
            .ok_or("a chunk runs past the end of the file")?;
        at = offset + len + 4;
        if at > bytes.len() {
            return Err("truncated chunk checksum");
        }
        out.push(Chunk { kind, offset, data });
        if &kind == b"IEND" {
            return Ok(out);
        }
    }
}

fn be32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// An APNG frame delay in microseconds (denominator 0 means 100, as the spec says).
fn delay_us(num: u16, den: u16) -> u64 {
    let den = if den == 0 { 100 } else { u64::from(den) };
    u64::from(num) * 1_000_000 / den
}

fn clip_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// CRC-32 (ISO-HDLC, as PNG uses) over the concatenation of `parts`.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_png_iend() {
        // Every PNG ends with IEND's CRC, AE 42 60 82.
        assert_eq!(crc32(&[b"IEND"]), 0xAE42_6082);
    }

    #[test]
    fn changed_rect_ignores_the_fourth_byte() {
        let a = BgraFrame {
            width: 3,
            height: 2,
            stride: 16,
            data: vec![0; 32],
        };
        let mut prev = Vec::new();
        store_tight(&mut prev, &a);
        let mut b = a.clone();
        b.data[3] = 7;
        assert_eq!(changed_rect(&prev, &b), None);
        b.data[16 + 8] = 1; // row 1, pixel 2, blue
        b.data[4 + 1] = 1; // row 0, pixel 1, green
        assert_eq!(
            changed_rect(&prev, &b),
            Some(Rect {
                x: 1,
                y: 0,
                width: 2,
                height: 2
            })
        );
    }
}
