//! Which blocks of a picture changed since the previous one: the damaged regions an encoder can
//! be told about, so that it codes unchanged blocks as "skip" without searching them.

use crate::frame::Yuv420Frame;

/// A grid of `block`×`block` luma blocks (chroma follows at half size), one flag per block:
/// `true` when any pixel of the block (luma or chroma) differs between two pictures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMap {
    /// Block side in luma pixels.
    pub block: u32,
    /// Blocks per row (the last one may be partial).
    pub cols: u32,
    /// Block rows (the last one may be partial).
    pub rows: u32,
    /// `rows * cols` flags, row by row.
    pub changed: Vec<bool>,
}

impl BlockMap {
    /// How many blocks changed.
    pub fn changed_count(&self) -> usize {
        self.changed.iter().filter(|c| **c).count()
    }

    /// Whether every block changed.
    pub fn all_changed(&self) -> bool {
        self.changed.iter().all(|c| *c)
    }

    /// Whether nothing changed.
    pub fn none_changed(&self) -> bool {
        !self.changed.iter().any(|c| *c)
    }

    /// The bounding rectangle `(x, y, w, h)` of the changed blocks in luma pixels, clipped to
    /// `width`×`height`; `None` when nothing changed.
    pub fn bounds(&self, width: u32, height: u32) -> Option<(u32, u32, u32, u32)> {
        let cols = self.cols.max(1) as usize;
        let mut found: Option<(u32, u32, u32, u32)> = None;
        for (i, _) in self.changed.iter().enumerate().filter(|(_, c)| **c) {
            let (bx, by) = ((i % cols) as u32, (i / cols) as u32);
            found = Some(match found {
                None => (bx, by, bx, by),
                Some((x0, y0, x1, y1)) => (x0.min(bx), y0.min(by), x1.max(bx), y1.max(by)),
            });
        }
        found.map(|(x0, y0, x1, y1)| {
            let (x, y) = (x0 * self.block, y0 * self.block);
            let w = ((x1 + 1) * self.block).min(width).saturating_sub(x);
            let h = ((y1 + 1) * self.block).min(height).saturating_sub(y);
            (x, y, w, h)
        })
    }
}

/// Compares `prev` and `next` block by block. Returns `None` when the pictures differ in size
/// (everything changed) or a buffer is shorter than its geometry says.
pub fn changed_blocks(prev: &Yuv420Frame, next: &Yuv420Frame, block: u32) -> Option<BlockMap> {
    if prev.width != next.width
        || prev.height != next.height
        || block < 2
        || !block.is_multiple_of(2)
    {
        return None;
    }
    prev.check().ok()?;
    next.check().ok()?;
    let (w, h) = (next.width as usize, next.height as usize);
    let b = block as usize;
    let cols = w.div_ceil(b);
    let rows = h.div_ceil(b);
    let mut changed = vec![false; rows * cols];
    // (previous plane, its stride, next plane, its stride, width, height, block side)
    type PlanePair<'a> = (&'a [u8], usize, &'a [u8], usize, usize, usize, usize);
    let planes: [PlanePair<'_>; 3] = [
        (&prev.y, prev.y_stride, &next.y, next.y_stride, w, h, b),
        (
            &prev.u,
            prev.uv_stride,
            &next.u,
            next.uv_stride,
            w.div_ceil(2),
            h.div_ceil(2),
            b / 2,
        ),
        (
            &prev.v,
            prev.uv_stride,
            &next.v,
            next.uv_stride,
            w.div_ceil(2),
            h.div_ceil(2),
            b / 2,
        ),
    ];
    for (a, sa, n, sn, pw, ph, pb) in planes {
        for y in 0..ph {
            let (ra, rn) = match (a.get(y * sa..y * sa + pw), n.get(y * sn..y * sn + pw)) {
                (Some(ra), Some(rn)) => (ra, rn),
                _ => return None,
            };
            if ra == rn {
                continue;
            }
            let row = y / pb;
            for (col, (ca, cn)) in ra.chunks(pb).zip(rn.chunks(pb)).enumerate() {
                if ca != cn {
                    if let Some(flag) = changed.get_mut(row * cols + col) {
                        *flag = true;
                    }
                }
            }
        }
    }
    Some(BlockMap {
        block,
        cols: cols as u32,
        rows: rows as u32,
        changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(w: u32, h: u32) -> Yuv420Frame {
        let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
        Yuv420Frame {
            width: w,
            height: h,
            y: vec![100; (w * h) as usize],
            y_stride: w as usize,
            u: vec![128; cw * ch],
            v: vec![128; cw * ch],
            uv_stride: cw,
        }
    }

    #[test]
    fn finds_the_blocks_that_changed() {
        let a = grey(70, 40);
        let mut b = a.clone();
        // Luma pixel (35, 20) is in block (2, 1) of 16×16 blocks.
        b.y[20 * 70 + 35] = 0;
        // Chroma pixel (34, 19) covers luma (68, 38): block (4, 2), the partial corner.
        b.v[19 * 35 + 34] = 0;
        let map = changed_blocks(&a, &b, 16).unwrap();
        assert_eq!((map.cols, map.rows), (5, 3));
        assert_eq!(map.changed_count(), 2);
        assert!(map.changed[5 + 2]);
        assert!(map.changed[2 * 5 + 4]);
        assert_eq!(map.bounds(70, 40), Some((32, 16, 38, 24)));
    }

    #[test]
    fn identical_pictures_have_no_damage() {
        let a = grey(64, 64);
        let map = changed_blocks(&a, &a.clone(), 16).unwrap();
        assert!(map.none_changed());
        assert_eq!(map.bounds(64, 64), None);
    }

    #[test]
    fn other_sizes_and_short_buffers_are_refused() {
        let a = grey(64, 64);
        assert!(changed_blocks(&a, &grey(32, 64), 16).is_none());
        let mut short = a.clone();
        short.y.truncate(10);
        assert!(changed_blocks(&a, &short, 16).is_none());
        assert!(changed_blocks(&a, &a, 15).is_none());
    }
}
