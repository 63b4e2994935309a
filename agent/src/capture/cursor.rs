//! Pointer helpers shared by the backends: desktop pixels to a monitor-relative position, and
//! premultiplied ARGB pointer images to the straight RGBA the protocol carries.

use sightline_core::messages::CursorShape;

use super::Monitor;

/// The pointer at desktop pixel (`x`, `y`) as a position on `monitor`: the centre of the pixel,
/// 0..=1, clamped to the edges, and whether it is on the monitor at all.
pub(crate) fn normalise(monitor: &Monitor, x: i32, y: i32) -> (f32, f32, bool) {
    let axis = |pos: i32, origin: i32, len: u32| -> (f32, bool) {
        let rel = i64::from(pos) - i64::from(origin);
        let inside = rel >= 0 && rel < i64::from(len);
        if len == 0 {
            return (0.0, false);
        }
        let v = (rel as f64 + 0.5) / f64::from(len);
        (v.clamp(0.0, 1.0) as f32, inside)
    };
    let (nx, in_x) = axis(x, monitor.x, monitor.width);
    let (ny, in_y) = axis(y, monitor.y, monitor.height);
    (nx, ny, in_x && in_y)
}

/// Builds a [`CursorShape`] from premultiplied ARGB pixels (one `u32` each, alpha in the top
/// byte, as XFixes sends them). `None` when the sizes do not fit the protocol or the pixel count
/// is wrong.
pub(crate) fn shape_from_premultiplied_argb(
    width: u16,
    height: u16,
    hot_x: u16,
    hot_y: u16,
    argb: &[u32],
) -> Option<CursorShape> {
    if argb.len() != usize::from(width) * usize::from(height) {
        return None;
    }
    let mut rgba = Vec::with_capacity(argb.len() * 4);
    for &p in argb {
        let [a, r, g, b] = p.to_be_bytes();
        let unpremultiply = |c: u8| -> u8 {
            match a {
                0 => 0,
                255 => c,
                _ => ((u32::from(c) * 255 + u32::from(a) / 2) / u32::from(a)).min(255) as u8,
            }
        };
        rgba.extend_from_slice(&[unpremultiply(r), unpremultiply(g), unpremultiply(b), a]);
    }
    Some(CursorShape {
        width,
        height,
        hot_x: hot_x.min(width.saturating_sub(1)),
        hot_y: hot_y.min(height.saturating_sub(1)),
        rgba,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor() -> Monitor {
        Monitor {
            index: 1,
            name: "B".into(),
            x: 1024,
            y: 0,
            width: 1024,
            height: 768,
            primary: false,
        }
    }

    #[test]
    fn position_is_relative_to_the_monitor() {
        let (x, y, visible) = normalise(&monitor(), 1024 + 512, 384);
        assert!(visible);
        assert!((x - 512.5 / 1024.0).abs() < 1e-6);
        assert!((y - 384.5 / 768.0).abs() < 1e-6);
        let (x, _, visible) = normalise(&monitor(), 10, 10);
        assert!(!visible);
        assert_eq!(x, 0.0);
        let (x, y, visible) = normalise(&monitor(), 5000, 767);
        assert!(!visible);
        assert_eq!(x, 1.0);
        assert!(y < 1.0);
    }

    #[test]
    fn premultiplied_argb_becomes_straight_rgba() {
        let pixels = [
            0xff_10_20_30, // opaque
            0x80_40_00_80, // half transparent: colour doubles back
            0x00_00_00_00, // transparent
        ];
        let s = shape_from_premultiplied_argb(3, 1, 5, 0, &pixels).unwrap();
        assert_eq!(
            s.rgba,
            [0x10, 0x20, 0x30, 0xff, 0x80, 0x00, 0xff, 0x80, 0, 0, 0, 0]
        );
        assert_eq!((s.hot_x, s.hot_y), (2, 0), "hotspot clamped into the image");
        assert!(shape_from_premultiplied_argb(2, 2, 0, 0, &pixels).is_none());
    }
}
