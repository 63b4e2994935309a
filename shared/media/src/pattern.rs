//! Deterministic synthetic "desktop" pictures for tests, benchmarks and demos: white background,
//! coloured panels and rows of thin dark glyph strokes, the content that a remote-support video
//! codec must keep sharp.

use crate::frame::BgraFrame;

/// Glyph cell size in pixels, roughly a small UI font.
const CELL_W: usize = 7;
const CELL_H: usize = 12;

/// Tiny deterministic generator so pictures are identical on every run and platform.
struct Lcg(u32);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        self.0 >> 8
    }
}

/// Draws a screen-like picture of `width` x `height` with rows `stride` bytes apart (raised to
/// `width * 4` if smaller). `seed` picks the text: pictures with different seeds share the layout
/// and differ in their glyphs, like a terminal whose text changed.
pub fn screen_like_bgra(width: u32, height: u32, stride: usize, seed: u32) -> BgraFrame {
    let (w, h) = (width as usize, height as usize);
    let stride = stride.max(w.saturating_mul(4));
    let mut data = vec![255u8; stride.saturating_mul(h)];
    let mut put = |x: usize, y: usize, bgr: [u8; 3]| {
        if x < w && y < h {
            let i = y * stride + x * 4;
            if let Some(px) = data.get_mut(i..i + 4) {
                px.copy_from_slice(&[bgr[0], bgr[1], bgr[2], 255]);
            }
        }
    };

    // Title bar and two coloured panels.
    let panels: [(usize, usize, usize, usize, [u8; 3]); 3] = [
        (0, 0, w, h / 12 + 1, [120, 70, 40]),
        (w * 2 / 3, h / 6, w / 4, h / 3, [60, 180, 240]),
        (w / 20, h * 3 / 4, w / 3, h / 6, [90, 200, 90]),
    ];
    for (x0, y0, pw, ph, bgr) in panels {
        for y in y0..y0 + ph {
            for x in x0..x0 + pw {
                put(x, y, bgr);
            }
        }
    }

    // Rows of glyphs: each glyph is a few 1-px horizontal, vertical and diagonal strokes.
    let mut rng = Lcg(seed.wrapping_mul(2_654_435_761).wrapping_add(1));
    let text_top = h / 12 + 4;
    let text_w = w * 2 / 3;
    let mut y0 = text_top;
    while y0 + CELL_H <= h * 3 / 4 {
        let mut x0 = 4;
        while x0 + CELL_W <= text_w {
            let r = rng.next();
            if !r.is_multiple_of(7) {
                draw_glyph(&mut put, x0, y0, r);
            }
            x0 += CELL_W;
        }
        y0 += CELL_H + 2;
    }
    BgraFrame {
        width,
        height,
        stride,
        data,
    }
}

fn draw_glyph(put: &mut impl FnMut(usize, usize, [u8; 3]), x0: usize, y0: usize, bits: u32) {
    let ink = [30, 30, 30];
    let (gw, gh) = (CELL_W - 2, CELL_H - 3);
    if bits & 1 != 0 {
        (0..gh).for_each(|dy| put(x0, y0 + 1 + dy, ink));
    }
    if bits & 2 != 0 {
        (0..gh).for_each(|dy| put(x0 + gw - 1, y0 + 1 + dy, ink));
    }
    if bits & 4 != 0 {
        (0..gw).for_each(|dx| put(x0 + dx, y0 + 1, ink));
    }
    if bits & 8 != 0 {
        (0..gw).for_each(|dx| put(x0 + dx, y0 + gh / 2 + 1, ink));
    }
    if bits & 16 != 0 {
        (0..gw).for_each(|dx| put(x0 + dx, y0 + gh, ink));
    }
    if bits & 32 != 0 {
        (0..gw).for_each(|d| put(x0 + d, y0 + 1 + d * gh / gw, ink));
    }
    if bits & 64 != 0 {
        (0..gh / 2).for_each(|dy| put(x0 + gw / 2, y0 + 1 + dy, ink));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_has_ink_panels_and_white() {
        let f = screen_like_bgra(160, 90, 0, 1);
        assert_eq!(f.check(), Ok(()));
        let px: Vec<&[u8]> = f.data.chunks_exact(4).collect();
        let dark = px.iter().filter(|p| p[0] == 30).count();
        let white = px.iter().filter(|p| p[..3] == [255, 255, 255]).count();
        assert!(dark > px.len() / 50, "{dark}");
        assert!(white > px.len() / 4, "{white}");
        assert_ne!(f, screen_like_bgra(160, 90, 0, 2));
        assert_eq!(f, screen_like_bgra(160, 90, 0, 1));
    }

    #[test]
    fn tiny_sizes_do_not_panic() {
        for (w, h) in [(1, 1), (2, 3), (7, 1), (0, 0)] {
            let f = screen_like_bgra(w, h, 0, 0);
            assert_eq!(f.data.len(), w as usize * h as usize * 4);
        }
    }
}
