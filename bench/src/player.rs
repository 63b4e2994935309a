//! Plays corpus clips on an X display, so that a real agent captures recorded desktop activity.
//!
//! [`Player`] draws frames on the root window with `PutImage` (ZPixmap, depth 24, BGRX): only
//! the pixels inside a frame's damage rectangle that differ from what it drew before, in row
//! chunks that fit the server's maximum request length, and by default waits for the server to
//! have drawn them before [`Player::show`] returns. The X server therefore sees the same
//! changes, of the same size, at the same moments as the recorded desktop did.
//! [`play_loop`] replays a clip in real time on its own thread, looping, until told to stop.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use sightline_media::BgraFrame;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xproto::{
    ConnectionExt, CreateGCAux, Gcontext, ImageFormat, ImageOrder, Window,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

use crate::corpus::{self, ClipReader, CorpusFrame, Rect};

/// Bytes of a `PutImage` request before its pixels (with the BIG-REQUESTS length field).
const PUT_IMAGE_HEADER: usize = 28;
/// Depth of the root window the player draws on.
const DEPTH: u8 = 24;
/// Longest sleep between checks of the stop flag.
const STOP_POLL: Duration = Duration::from_millis(20);
/// A frame shown later than this after its time counts as late in [`PlayStats`].
const LATE: Duration = Duration::from_millis(20);

/// Draws corpus frames on the root window of one X display.
pub struct Player {
    conn: RustConnection,
    root: Window,
    gc: Gcontext,
    width: u32,
    height: u32,
    /// The most bytes one request may carry: the server's limit, or less (see
    /// [`Player::limit_request_bytes`]).
    max_request: usize,
    /// Wait for the server after each frame.
    sync: bool,
    /// What the player last drew (the whole screen), to send only pixels that differ.
    screen: Option<BgraFrame>,
    /// Pixel bytes sent so far.
    sent_bytes: u64,
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Player({}x{}, root {:#x}, {} bytes sent)",
            self.width, self.height, self.root, self.sent_bytes
        )
    }
}

impl Player {
    /// Connects to X display `display` (such as `":123"`) and checks that its first screen
    /// takes 32-bit little-endian pixels at depth 24, the corpus's BGRX.
    pub fn connect(display: &str) -> Result<Player> {
        let (conn, screen_num) = RustConnection::connect(Some(display))
            .with_context(|| format!("cannot connect to X display {display}"))?;
        let setup = conn.setup();
        let screen = setup
            .roots
            .get(screen_num)
            .ok_or_else(|| anyhow!("X display {display} has no screen {screen_num}"))?;
        if screen.root_depth != DEPTH {
            bail!(
                "X display {display}: root depth {} (the player draws depth {DEPTH})",
                screen.root_depth
            );
        }
        let format = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == DEPTH)
            .ok_or_else(|| anyhow!("X display {display}: no pixmap format of depth {DEPTH}"))?;
        if format.bits_per_pixel != 32 || setup.image_byte_order != ImageOrder::LSB_FIRST {
            bail!(
                "X display {display}: depth {DEPTH} pixels are {} bits, {:?}; the player sends \
                 32-bit little-endian BGRX",
                format.bits_per_pixel,
                setup.image_byte_order
            );
        }
        let (root, width, height) = (
            screen.root,
            u32::from(screen.width_in_pixels),
            u32::from(screen.height_in_pixels),
        );
        let gc = conn.generate_id()?;
        conn.create_gc(gc, root, &CreateGCAux::new())?;
        // Asks for BIG-REQUESTS (a round trip) and learns the limit.
        let max_request = conn.maximum_request_bytes();
        Ok(Player {
            conn,
            root,
            gc,
            width,
            height,
            max_request,
            sync: true,
            screen: None,
            sent_bytes: 0,
        })
    }

    /// The screen's size in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Whether [`Player::show`] waits until the server has drawn the frame (default true).
    /// Without it, `show` returns once the requests are written.
    pub fn set_sync(&mut self, sync: bool) {
        self.sync = sync;
    }

    /// Sends requests of at most `bytes` (never more than the server allows), so that the
    /// row chunking is exercised on a server with BIG-REQUESTS too.
    pub fn limit_request_bytes(&mut self, bytes: usize) {
        self.max_request = self.max_request.min(bytes);
    }

    /// The most bytes one `PutImage` request carries.
    pub fn max_request_bytes(&self) -> usize {
        self.max_request
    }

    /// Pixel bytes sent to the server so far.
    pub fn sent_bytes(&self) -> u64 {
        self.sent_bytes
    }

    /// Draws `frame`: the pixels in its damage rectangle (the whole frame the first time)
    /// that differ from what this player drew before. With sync on (the default), the picture
    /// is on the screen when this returns; X errors caused by the drawing are reported here.
    pub fn show(&mut self, frame: &CorpusFrame) -> Result<()> {
        let picture = frame.bgra.as_ref();
        if (picture.width, picture.height) != (self.width, self.height) {
            bail!(
                "frame {} is {}x{}, the screen {}x{}",
                frame.index,
                picture.width,
                picture.height,
                self.width,
                self.height
            );
        }
        let row = picture.width as usize * 4;
        if picture.stride < row || picture.data.len() < picture.stride * picture.height as usize {
            bail!("frame {}: buffer does not match its geometry", frame.index);
        }
        let rect = match (&self.screen, frame.damage) {
            (None, _) => Some(Rect::full(self.width, self.height)),
            (Some(_), None) => None,
            (Some(screen), Some(damage)) => {
                clip(damage, self.width, self.height).and_then(|d| differing(screen, picture, d))
            }
        };
        if let Some(rect) = rect {
            self.put(picture, rect)?;
            self.remember(picture, rect);
        }
        self.conn.flush()?;
        if self.sync {
            self.conn.get_input_focus()?.reply()?;
            // Errors of the unchecked PutImage requests arrive as events.
            while let Some(event) = self.conn.poll_for_event()? {
                if let Event::Error(e) = event {
                    bail!("X error drawing frame {}: {e:?}", frame.index);
                }
            }
        }
        Ok(())
    }

    /// Sends `rect` of `picture` in chunks of whole rows.
    fn put(&mut self, picture: &BgraFrame, rect: Rect) -> Result<()> {
        let row_bytes = rect.width as usize * 4;
        let rows_per_request = (self.max_request.saturating_sub(PUT_IMAGE_HEADER) / row_bytes)
            .clamp(1, usize::from(u16::MAX));
        let width = u16::try_from(rect.width)?;
        let x = i16::try_from(rect.x)?;
        let mut chunk = Vec::with_capacity(row_bytes * rows_per_request.min(rect.height as usize));
        let end = rect.y + rect.height;
        let mut y = rect.y;
        while y < end {
            let rows = u32::try_from(rows_per_request)
                .unwrap_or(u32::MAX)
                .min(end - y);
            chunk.clear();
            for r in y..y + rows {
                let start = r as usize * picture.stride + rect.x as usize * 4;
                let line = picture
                    .data
                    .get(start..start + row_bytes)
                    .ok_or_else(|| anyhow!("row {r} is outside the picture"))?;
                chunk.extend_from_slice(line);
            }
            self.conn.put_image(
                ImageFormat::Z_PIXMAP,
                self.root,
                self.gc,
                width,
                u16::try_from(rows)?,
                x,
                i16::try_from(y)?,
                0,
                DEPTH,
                &chunk,
            )?;
            self.sent_bytes += chunk.len() as u64;
            y += rows;
        }
        Ok(())
    }

    /// Copies `rect` of `picture` into the player's idea of the screen.
    fn remember(&mut self, picture: &BgraFrame, rect: Rect) {
        let screen = self.screen.get_or_insert_with(|| BgraFrame {
            width: picture.width,
            height: picture.height,
            stride: picture.width as usize * 4,
            data: vec![0; picture.width as usize * 4 * picture.height as usize],
        });
        let (x0, n) = (rect.x as usize * 4, rect.width as usize * 4);
        for r in rect.y as usize..(rect.y + rect.height) as usize {
            let from = r * picture.stride + x0;
            let to = r * screen.stride + x0;
            if let (Some(dst), Some(src)) = (
                screen.data.get_mut(to..to + n),
                picture.data.get(from..from + n),
            ) {
                dst.copy_from_slice(src);
            }
        }
    }
}

/// `rect` cut to a `width` x `height` screen; `None` when nothing is left.
fn clip(rect: Rect, width: u32, height: u32) -> Option<Rect> {
    let right = rect.x.saturating_add(rect.width).min(width);
    let bottom = rect.y.saturating_add(rect.height).min(height);
    (rect.x < right && rect.y < bottom).then(|| Rect {
        x: rect.x,
        y: rect.y,
        width: right - rect.x,
        height: bottom - rect.y,
    })
}

/// The bounding rectangle of the pixels inside `within` that differ between `old` and `new`;
/// `None` when none do. Rows are compared whole first (a `memcmp`, fast in a debug build too);
/// in a row that differs only the pixels outside the bounds found so far are looked at.
fn differing(old: &BgraFrame, new: &BgraFrame, within: Rect) -> Option<Rect> {
    let (x0, x1) = (within.x as usize, (within.x + within.width) as usize);
    let mut bounds: Option<(usize, usize, u32, u32)> = None; // left, right (inclusive), top, bottom
    for y in within.y..within.y + within.height {
        let (o, n) = (y as usize * old.stride, y as usize * new.stride);
        let (Some(a), Some(b)) = (
            old.data.get(o + x0 * 4..o + x1 * 4),
            new.data.get(n + x0 * 4..n + x1 * 4),
        ) else {
            continue;
        };
        if a == b {
            continue;
        }
        let pixel =
            |x: usize| a[(x - x0) * 4..(x - x0) * 4 + 4] != b[(x - x0) * 4..(x - x0) * 4 + 4];
        let (left, right) = match bounds {
            None => {
                let l = (x0..x1).find(|&x| pixel(x)).unwrap_or(x0);
                (l, (l..x1).rev().find(|&x| pixel(x)).unwrap_or(l))
            }
            // Only pixels outside the bounds so far can widen them.
            Some((l, r, _, _)) => (
                (x0..l).find(|&x| pixel(x)).unwrap_or(l),
                (r + 1..x1).rev().find(|&x| pixel(x)).unwrap_or(r),
            ),
        };
        let top = bounds.map_or(y, |(_, _, top, _)| top);
        bounds = Some((left, right, top, y));
    }
    let (left, right, top, bottom) = bounds?;
    Some(Rect {
        x: u32::try_from(left).ok()?,
        y: top,
        width: u32::try_from(right - left + 1).ok()?,
        height: bottom - top + 1,
    })
}

/// What a [`play_loop`] did, returned when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PlayStats {
    /// Frames read from the clip and handed to [`Player::show`] (counting every loop).
    pub frames: u64,
    /// Times the clip started again from its first frame.
    pub loops: u64,
    /// Frames drawn more than 20 ms after their time (the player could not keep up).
    pub late_frames: u64,
    /// How late the latest frame was drawn, in milliseconds.
    pub max_lag_ms: f64,
    /// Pixel bytes sent to the X server.
    pub sent_bytes: u64,
}

/// Replays the clip at `clip_path` on X display `display` in real time (each frame at its
/// `at_ms` from the start of the loop), from the first frame again after the last, until
/// `stop` is set. A player that falls behind draws every frame as soon as it can rather than
/// skipping any, and reports it in [`PlayStats`].
pub fn play_loop(
    display: &str,
    clip_path: &Path,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Result<PlayStats>> {
    let display = display.to_string();
    let path: PathBuf = clip_path.to_path_buf();
    std::thread::spawn(move || play(&display, &path, &stop))
}

fn play(display: &str, path: &Path, stop: &AtomicBool) -> Result<PlayStats> {
    let period = Duration::from_millis(u64::from(corpus::probe(path)?.duration_ms.max(1)));
    let mut reader = ClipReader::open(path)?;
    let mut player = Player::connect(display)?;
    let mut stats = PlayStats::default();
    let mut loop_start = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let Some(frame) = reader.next_frame()? else {
            reader.rewind()?;
            loop_start += period;
            stats.loops += 1;
            continue;
        };
        let due = loop_start + Duration::from_millis(u64::from(frame.at_ms));
        if !sleep_until(due, stop) {
            break;
        }
        player.show(&frame)?;
        let lag = Instant::now().saturating_duration_since(due);
        stats.frames += 1;
        if lag > LATE {
            stats.late_frames += 1;
        }
        stats.max_lag_ms = stats.max_lag_ms.max(lag.as_secs_f64() * 1000.0);
        // A player more than a whole loop behind starts its timeline again from now.
        if lag > period {
            loop_start = Instant::now() - Duration::from_millis(u64::from(frame.at_ms));
        }
    }
    stats.sent_bytes = player.sent_bytes();
    Ok(stats)
}

/// Sleeps until `when`, waking to check `stop`; false when stopped.
fn sleep_until(when: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let Some(left) = when.checked_duration_since(Instant::now()) else {
            return true;
        };
        std::thread::sleep(left.min(STOP_POLL));
    }
}
