//! The X screen's layout: monitors from RandR 1.5 (`GetMonitors`), or the whole root window as
//! one monitor when RandR has none (plain Xvfb), and the check that its pixels are BGRX.

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, ImageOrder, Screen};
use x11rb::rust_connection::RustConnection;

use crate::capture::{CaptureError, Monitor};

/// Whether the server speaks RandR 1.5 (monitors); asks once per connection.
pub(super) fn has_randr_monitors(conn: &RustConnection) -> Result<bool, CaptureError> {
    let present = conn
        .extension_information(randr::X11_EXTENSION_NAME)
        .map_err(|e| CaptureError::protocol("QueryExtension(RANDR)", e))?
        .is_some();
    if !present {
        return Ok(false);
    }
    let v = conn
        .randr_query_version(1, 5)
        .map_err(|e| CaptureError::protocol("RRQueryVersion", e))?
        .reply()
        .map_err(|e| CaptureError::protocol("RRQueryVersion", e))?;
    Ok(v.major_version > 1 || v.minor_version >= 5)
}

/// The monitors of `screen`, in the server's order, exactly one flagged primary.
pub(super) fn list(
    conn: &RustConnection,
    screen: &Screen,
    randr: bool,
) -> Result<Vec<Monitor>, CaptureError> {
    let mut out = Vec::new();
    if randr {
        let reply = conn
            .randr_get_monitors(screen.root, true)
            .map_err(|e| CaptureError::protocol("RRGetMonitors", e))?
            .reply()
            .map_err(|e| CaptureError::protocol("RRGetMonitors", e))?;
        for (index, m) in reply.monitors.iter().enumerate() {
            out.push(Monitor {
                index,
                name: atom_name(conn, m.name).unwrap_or_else(|| format!("monitor-{index}")),
                x: i32::from(m.x),
                y: i32::from(m.y),
                width: u32::from(m.width),
                height: u32::from(m.height),
                primary: m.primary,
            });
        }
    }
    if out.is_empty() {
        // The connection setup's root size goes stale after a RandR resize; ask for it.
        let root = conn
            .get_geometry(screen.root)
            .map_err(|e| CaptureError::protocol("GetGeometry", e))?
            .reply()
            .map_err(|e| CaptureError::protocol("GetGeometry", e))?;
        out.push(Monitor {
            index: 0,
            name: "screen".to_owned(),
            x: 0,
            y: 0,
            width: u32::from(root.width),
            height: u32::from(root.height),
            primary: true,
        });
    }
    // Exactly one primary: the server may flag none (or, in theory, several).
    let first_primary = out.iter().position(|m| m.primary).unwrap_or(0);
    for (i, m) in out.iter_mut().enumerate() {
        m.primary = i == first_primary;
    }
    Ok(out)
}

fn atom_name(conn: &RustConnection, atom: u32) -> Option<String> {
    let reply = conn.get_atom_name(atom).ok()?.reply().ok()?;
    Some(String::from_utf8_lossy(&reply.name).into_owned())
}

/// Checks that ZPixmap images of the root window are 32 bits per pixel, little-endian, with
/// red, green and blue in bytes 2, 1 and 0: BGRX in memory, which is what a `BgraFrame` holds.
pub(super) fn check_pixel_format(
    conn: &RustConnection,
    screen: &Screen,
) -> Result<(), CaptureError> {
    let setup = conn.setup();
    let depth = screen.root_depth;
    let bpp = setup
        .pixmap_formats
        .iter()
        .find(|f| f.depth == depth)
        .map(|f| f.bits_per_pixel)
        .unwrap_or(0);
    let visual = screen
        .allowed_depths
        .iter()
        .flat_map(|d| d.visuals.iter())
        .find(|v| v.visual_id == screen.root_visual);
    let masks = visual.map(|v| (v.red_mask, v.green_mask, v.blue_mask));
    let lsb = setup.image_byte_order == ImageOrder::LSB_FIRST;
    if (depth == 24 || depth == 32)
        && bpp == 32
        && lsb
        && masks == Some((0x00ff_0000, 0x0000_ff00, 0x0000_00ff))
    {
        Ok(())
    } else {
        Err(CaptureError::PixelFormat(format!(
            "depth {depth}, {bpp} bits per pixel, {} byte order, masks {masks:x?} (need 24/32-bit BGRX)",
            if lsb { "LSB-first" } else { "MSB-first" }
        )))
    }
}
