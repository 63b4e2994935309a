//! One MIT-SHM segment shared with the X server: the server creates it (`ShmCreateSegment`,
//! MIT-SHM 1.2) and passes its file descriptor; we map it read-only and read each `ShmGetImage`
//! out of it. The mapping is the only `unsafe` in the agent's capture code.

use std::fs::File;

use memmap2::{Mmap, MmapOptions};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;

use crate::capture::CaptureError;

/// Whether the server offers MIT-SHM 1.2 or later (server-created segments passed as fds).
pub(super) fn available(conn: &RustConnection) -> bool {
    let present = matches!(
        conn.extension_information(shm::X11_EXTENSION_NAME),
        Ok(Some(_))
    );
    if !present {
        return false;
    }
    match conn.shm_query_version().map(|c| c.reply()) {
        Ok(Ok(v)) => v.major_version > 1 || (v.major_version == 1 && v.minor_version >= 2),
        _ => false,
    }
}

/// A segment of `len` bytes attached on the server as `seg`, mapped here.
#[derive(Debug)]
pub(super) struct ShmSegment {
    seg: shm::Seg,
    map: Mmap,
}

impl ShmSegment {
    /// Asks the server for a new segment of `len` bytes and maps it.
    pub(super) fn create(conn: &RustConnection, len: usize) -> Result<Self, CaptureError> {
        let size = u32::try_from(len).map_err(|_| {
            CaptureError::Unsupported("a monitor too large for one MIT-SHM segment")
        })?;
        let seg = conn
            .generate_id()
            .map_err(|e| CaptureError::protocol("ShmCreateSegment", e))?;
        let reply = conn
            .shm_create_segment(seg, size, false)
            .map_err(|e| CaptureError::protocol("ShmCreateSegment", e))?
            .reply()
            .map_err(|e| CaptureError::protocol("ShmCreateSegment", e))?;
        let file = File::from(reply.shm_fd);
        let mapped = file
            .metadata()
            .map_err(|e| CaptureError::protocol("ShmCreateSegment (fstat)", e))
            .and_then(|meta| {
                // A shorter file would fault (SIGBUS) when read past its end.
                if meta.len() < len as u64 {
                    return Err(CaptureError::Backend(format!(
                        "the X server's shared memory segment has {} bytes, not {len}",
                        meta.len()
                    )));
                }
                map_read_only(&file, len)
                    .map_err(|e| CaptureError::protocol("mmap of the MIT-SHM segment", e))
            });
        match mapped {
            Ok(map) => Ok(ShmSegment { seg, map }),
            Err(e) => {
                let _ = conn.shm_detach(seg);
                Err(e)
            }
        }
    }

    /// The server-side segment id, for `ShmGetImage`.
    pub(super) fn seg(&self) -> shm::Seg {
        self.seg
    }

    /// Size in bytes.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// The segment's bytes. Read them only after the reply to the `ShmGetImage` that filled them
    /// arrived, and before sending the next one (the borrow of `self` enforces the latter: every
    /// request that writes the segment goes through `&mut` on the owner).
    pub(super) fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Detaches the segment on the server; the mapping goes when `self` drops.
    pub(super) fn detach(self, conn: &RustConnection) {
        // Best effort: a broken connection frees the segment anyway.
        let _ = conn.shm_detach(self.seg);
    }
}

/// Maps `len` bytes of `file` read-only and shared.
#[allow(unsafe_code)]
fn map_read_only(file: &File, len: usize) -> std::io::Result<Mmap> {
    // SAFETY: memmap2 requires that the file is not truncated or modified while the map exists.
    // The file is a shared-memory segment created by the X server for this connection alone; the
    // server never truncates it (its size is fixed at creation, checked by the caller to be at
    // least `len`) and writes to it only while executing a `ShmGetImage` this capturer sent. The
    // capturer reads the bytes only after that request's reply arrived and before it sends the
    // next one, so no read overlaps a write.
    unsafe { MmapOptions::new().len(len).map(file) }
}
