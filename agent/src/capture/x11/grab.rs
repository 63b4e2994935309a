//! Reading a rectangle of the root window: `ShmGetImage` into a shared segment when MIT-SHM
//! works, plain `GetImage` (the pixels travel through the socket) otherwise.

use sightline_media::BgraFrame;
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, Window};
use x11rb::rust_connection::RustConnection;

use super::shm::ShmSegment;
use crate::capture::{CaptureError, Monitor};

/// How pixels come from the server.
#[derive(Debug)]
pub(super) enum Grabber {
    /// MIT-SHM; the segment is (re)created to fit on first use and after a resize.
    Shm(Option<ShmSegment>),
    /// `GetImage` through the socket (remote X, MIT-SHM off, or forced).
    GetImage,
}

impl Grabber {
    /// Captures `monitor`'s rectangle of `root` into `buf` (resized to fit) as a BGRX frame.
    pub(super) fn grab(
        &mut self,
        conn: &RustConnection,
        root: Window,
        monitor: &Monitor,
        mut buf: Vec<u8>,
    ) -> Result<BgraFrame, CaptureError> {
        let (x, y, w, h) = x11_rect(monitor)?;
        let stride = usize::from(w) * 4;
        let len = stride * usize::from(h);
        let plane_mask = u32::MAX;
        match self {
            Grabber::Shm(slot) => {
                let seg = match slot.take() {
                    Some(seg) if seg.len() == len => seg,
                    old => {
                        if let Some(old) = old {
                            old.detach(conn);
                        }
                        ShmSegment::create(conn, len)?
                    }
                };
                let seg = slot.insert(seg);
                let reply = conn
                    .shm_get_image(
                        root,
                        x,
                        y,
                        w,
                        h,
                        plane_mask,
                        ImageFormat::Z_PIXMAP.into(),
                        seg.seg(),
                        0,
                    )
                    .map_err(|e| CaptureError::protocol("ShmGetImage", e))?
                    .reply()
                    .map_err(|e| CaptureError::protocol("ShmGetImage", e))?;
                let bytes = seg.bytes();
                if reply.size as usize != len || bytes.len() < len {
                    return Err(wrong_size(reply.size as usize, len));
                }
                buf.clear();
                buf.extend_from_slice(&bytes[..len]);
            }
            Grabber::GetImage => {
                let reply = conn
                    .get_image(ImageFormat::Z_PIXMAP, root, x, y, w, h, plane_mask)
                    .map_err(|e| CaptureError::protocol("GetImage", e))?
                    .reply()
                    .map_err(|e| CaptureError::protocol("GetImage", e))?;
                if reply.data.len() != len {
                    return Err(wrong_size(reply.data.len(), len));
                }
                buf = reply.data;
            }
        }
        Ok(BgraFrame {
            width: u32::from(w),
            height: u32::from(h),
            stride,
            data: buf,
        })
    }

    /// Detaches the shared segment, if any.
    pub(super) fn release(&mut self, conn: &RustConnection) {
        if let Grabber::Shm(slot) = self {
            if let Some(seg) = slot.take() {
                seg.detach(conn);
            }
        }
    }
}

/// The monitor's rectangle in X11's 16-bit coordinates.
fn x11_rect(m: &Monitor) -> Result<(i16, i16, u16, u16), CaptureError> {
    let too_big = |_| CaptureError::Unsupported("monitor geometry outside X11's 16-bit range");
    let x = i16::try_from(m.x).map_err(too_big)?;
    let y = i16::try_from(m.y).map_err(too_big)?;
    let w = u16::try_from(m.width).map_err(too_big)?;
    let h = u16::try_from(m.height).map_err(too_big)?;
    if w == 0 || h == 0 {
        return Err(CaptureError::Unsupported("a monitor with no pixels"));
    }
    Ok((x, y, w, h))
}

fn wrong_size(got: usize, want: usize) -> CaptureError {
    CaptureError::PixelFormat(format!(
        "the server sent {got} bytes for an image of {want} (not 32 bits per pixel?)"
    ))
}
