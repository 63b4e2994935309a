//! Where the remote picture goes on screen and how local pointer positions map onto it.
//! Pure functions, so the mapping that decides where a click lands remotely is unit-tested.

use eframe::egui::{pos2, vec2, Pos2, Rect, Vec2};

/// The largest rectangle with the picture's aspect ratio that fits in `available`, centred.
/// An empty picture or area gives an empty rectangle at the centre.
pub fn fit(available: Rect, picture: (u32, u32)) -> Rect {
    let (w, h) = (picture.0 as f32, picture.1 as f32);
    if w <= 0.0 || h <= 0.0 || available.width() <= 0.0 || available.height() <= 0.0 {
        return Rect::from_center_size(available.center(), Vec2::ZERO);
    }
    let scale = (available.width() / w).min(available.height() / h);
    Rect::from_center_size(available.center(), vec2(w * scale, h * scale))
}

/// The size in points that shows one remote pixel per physical screen pixel.
pub fn one_to_one(picture: (u32, u32), pixels_per_point: f32) -> Vec2 {
    let ppp = if pixels_per_point > 0.0 {
        pixels_per_point
    } else {
        1.0
    };
    vec2(picture.0 as f32 / ppp, picture.1 as f32 / ppp)
}

/// A position as a fraction of the picture, each axis clamped to `0..=1`, as the wire wants.
/// A degenerate picture maps everything to its top-left corner.
pub fn normalise(pos: Pos2, picture: Rect) -> (f32, f32) {
    let axis = |p: f32, min: f32, len: f32| {
        if len > 0.0 && p.is_finite() {
            ((p - min) / len).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    (
        axis(pos.x, picture.min.x, picture.width()),
        axis(pos.y, picture.min.y, picture.height()),
    )
}

/// The inverse of [`normalise`]: where a remote position lies on screen.
pub fn denormalise(x: f32, y: f32, picture: Rect) -> Pos2 {
    pos2(
        picture.min.x + x.clamp(0.0, 1.0) * picture.width(),
        picture.min.y + y.clamp(0.0, 1.0) * picture.height(),
    )
}

/// The part of the picture inside `clip`, and the same part in texture coordinates
/// (`[u_min, v_min, u_max, v_max]`). The GPU viewport is clamped to the window, so a picture
/// scrolled partly out of view is drawn as its visible part with matching coordinates rather
/// than squeezed into the visible area. `None` when nothing is visible.
pub fn visible_part(picture: Rect, clip: Rect) -> Option<(Rect, [f32; 4])> {
    let visible = picture.intersect(clip);
    if !visible.is_positive() || !picture.is_positive() {
        return None;
    }
    let (u0, v0) = normalise(visible.min, picture);
    let (u1, v1) = normalise(visible.max, picture);
    Some((visible, [u0, v0, u1, v1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Rect {
        Rect::from_min_max(pos2(x0, y0), pos2(x1, y1))
    }

    #[test]
    fn fit_keeps_aspect_and_centres() {
        // A 16:9 picture in a square area is letterboxed top and bottom.
        let r = fit(rect(0.0, 0.0, 1600.0, 1600.0), (1920, 1080));
        assert!((r.width() - 1600.0).abs() < 1e-3);
        assert!((r.height() - 900.0).abs() < 1e-3);
        assert!((r.min.y - 350.0).abs() < 1e-3);
        // A tall picture in a wide area is pillarboxed.
        let r = fit(rect(10.0, 20.0, 1010.0, 520.0), (500, 1000));
        assert!((r.height() - 500.0).abs() < 1e-3);
        assert!((r.width() - 250.0).abs() < 1e-3);
        assert!((r.center().x - 510.0).abs() < 1e-3);
    }

    #[test]
    fn fit_of_nothing_is_empty() {
        assert_eq!(fit(rect(0.0, 0.0, 100.0, 100.0), (0, 10)).area(), 0.0);
        assert_eq!(fit(rect(0.0, 0.0, 0.0, 100.0), (10, 10)).area(), 0.0);
    }

    #[test]
    fn one_to_one_uses_physical_pixels() {
        assert_eq!(one_to_one((1920, 1080), 2.0), vec2(960.0, 540.0));
        assert_eq!(one_to_one((800, 600), 0.0), vec2(800.0, 600.0));
    }

    #[test]
    fn normalise_maps_corners_and_centre() {
        let pic = rect(100.0, 50.0, 300.0, 150.0);
        assert_eq!(normalise(pos2(100.0, 50.0), pic), (0.0, 0.0));
        assert_eq!(normalise(pos2(300.0, 150.0), pic), (1.0, 1.0));
        assert_eq!(normalise(pos2(200.0, 100.0), pic), (0.5, 0.5));
        assert_eq!(normalise(pos2(150.0, 125.0), pic), (0.25, 0.75));
    }

    #[test]
    fn normalise_clamps_outside_points() {
        let pic = rect(100.0, 50.0, 300.0, 150.0);
        assert_eq!(normalise(pos2(0.0, 1000.0), pic), (0.0, 1.0));
        assert_eq!(normalise(pos2(1e9, -1e9), pic), (1.0, 0.0));
        assert_eq!(normalise(pos2(f32::NAN, 100.0), pic), (0.0, 0.5));
        assert_eq!(
            normalise(pos2(5.0, 5.0), rect(0.0, 0.0, 0.0, 0.0)),
            (0.0, 0.0)
        );
    }

    #[test]
    fn denormalise_inverts_normalise() {
        let pic = rect(100.0, 50.0, 300.0, 150.0);
        let p = pos2(175.0, 60.0);
        let (x, y) = normalise(p, pic);
        let back = denormalise(x, y, pic);
        assert!((back - p).length() < 1e-3);
    }

    #[test]
    fn visible_part_crops_texture_coordinates() {
        let pic = rect(-100.0, 0.0, 300.0, 200.0);
        let (vis, uv) = visible_part(pic, rect(0.0, 0.0, 200.0, 100.0)).expect("overlaps");
        assert_eq!(vis, rect(0.0, 0.0, 200.0, 100.0));
        assert_eq!(uv, [0.25, 0.0, 0.75, 0.5]);
        assert!(visible_part(pic, rect(400.0, 0.0, 500.0, 100.0)).is_none());
    }
}
