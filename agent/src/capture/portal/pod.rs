//! The few SPA pods the portal stream needs, built and read by hand: the formats it accepts
//! (`EnumFormat`), the buffer memory it can read (`Buffers`), and the format the producer
//! chose (`Format`).
//!
//! libspa builds pods with C macros and inline functions, none of which a program that loads
//! `libpipewire-0.3.so.0` at run time can call, and no maintained pure-Rust crate writes them
//! (the `libspa` crate links the library). The encoding is small and stable: every pod is a
//! 32-bit body size, a 32-bit type and the body padded to 8 bytes (`spa/pod/pod.h`); the
//! constants below are those of `spa/utils/type.h`, `spa/param/format.h`, `spa/param/video/raw.h`
//! and `spa/param/buffers.h`, which are ABI.

// Pod types.
const TYPE_ID: u32 = 3;
const TYPE_INT: u32 = 4;
const TYPE_RECTANGLE: u32 = 10;
const TYPE_FRACTION: u32 = 11;
const TYPE_OBJECT: u32 = 15;
const TYPE_CHOICE: u32 = 19;
// Object types and parameter ids.
const OBJECT_FORMAT: u32 = 0x40003;
const OBJECT_PARAM_BUFFERS: u32 = 0x40004;
const PARAM_ENUM_FORMAT: u32 = 3;
const PARAM_FORMAT: u32 = 4;
const PARAM_BUFFERS: u32 = 5;
// Format keys.
const FORMAT_MEDIA_TYPE: u32 = 1;
const FORMAT_MEDIA_SUBTYPE: u32 = 2;
const FORMAT_VIDEO_FORMAT: u32 = 0x20001;
const FORMAT_VIDEO_MODIFIER: u32 = 0x20002;
const FORMAT_VIDEO_SIZE: u32 = 0x20003;
const FORMAT_VIDEO_FRAMERATE: u32 = 0x20004;
const MEDIA_TYPE_VIDEO: u32 = 2;
const MEDIA_SUBTYPE_RAW: u32 = 1;
const BUFFERS_DATA_TYPE: u32 = 6;
// Choice types.
const CHOICE_NONE: u32 = 0;
const CHOICE_RANGE: u32 = 1;
const CHOICE_ENUM: u32 = 3;
/// `SPA_DATA_MemPtr` and `SPA_DATA_MemFd`: memory the stream can map and read. DMA-BUF is not
/// asked for: it needs a GPU to read back, and without a modifier in the format producers
/// fall back to shared memory.
pub(crate) const DATA_TYPES_READABLE: u32 = (1 << 1) | (1 << 2);

/// 32-bit pixel layouts the stream accepts, as `spa_video_format` values, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PixelOrder {
    /// Bytes B, G, R, X in memory (`SPA_VIDEO_FORMAT_BGRx` and `BGRA`): what the encoder takes.
    Bgrx,
    /// Bytes R, G, B, X (`RGBx`, `RGBA`): red and blue swapped.
    Rgbx,
}

const VIDEO_FORMATS: [(u32, PixelOrder); 4] = [
    (8, PixelOrder::Bgrx),  // BGRx
    (12, PixelOrder::Bgrx), // BGRA
    (7, PixelOrder::Rgbx),  // RGBx
    (11, PixelOrder::Rgbx), // RGBA
];

/// The format the producer chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VideoFormat {
    pub order: PixelOrder,
    pub width: u32,
    pub height: u32,
}

/// Writes pods into a byte vector (native endianness, as PipeWire reads them in-process).
#[derive(Debug, Default)]
struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_ne_bytes());
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(8) {
            self.bytes.push(0);
        }
    }

    /// A pod of `kind` whose body `body` writes; the size is filled in afterwards.
    fn pod(&mut self, kind: u32, body: impl FnOnce(&mut Writer)) {
        let at = self.bytes.len();
        self.u32(0);
        self.u32(kind);
        body(self);
        let size = u32::try_from(self.bytes.len() - at - 8).unwrap_or(u32::MAX);
        self.bytes[at..at + 4].copy_from_slice(&size.to_ne_bytes());
        self.pad();
    }

    fn object(&mut self, kind: u32, id: u32, props: impl FnOnce(&mut Writer)) {
        self.pod(TYPE_OBJECT, |w| {
            w.u32(kind);
            w.u32(id);
            props(w);
        });
    }

    /// A property: key, flags 0, then its value pod.
    fn prop(&mut self, key: u32, value: impl FnOnce(&mut Writer)) {
        self.u32(key);
        self.u32(0);
        value(self);
    }

    fn id(&mut self, v: u32) {
        self.pod(TYPE_ID, |w| w.u32(v));
    }

    fn int(&mut self, v: u32) {
        self.pod(TYPE_INT, |w| w.u32(v));
    }

    /// A choice of `choice` kind over values of `child` type, each `child_size` bytes.
    fn choice(&mut self, choice: u32, child: u32, child_size: u32, values: &[&[u32]]) {
        self.pod(TYPE_CHOICE, |w| {
            w.u32(choice);
            w.u32(0);
            w.u32(child_size);
            w.u32(child);
            for value in values {
                for part in *value {
                    w.u32(*part);
                }
            }
        });
    }
}

/// The `EnumFormat` parameter: raw video in one of [`VIDEO_FORMATS`], any size, any rate up to
/// 1000/1 (the caller's loop takes the newest frame, so the rate only bounds copying).
pub(crate) fn enum_format() -> Vec<u8> {
    let mut w = Writer::default();
    w.object(OBJECT_FORMAT, PARAM_ENUM_FORMAT, |w| {
        w.prop(FORMAT_MEDIA_TYPE, |w| w.id(MEDIA_TYPE_VIDEO));
        w.prop(FORMAT_MEDIA_SUBTYPE, |w| w.id(MEDIA_SUBTYPE_RAW));
        w.prop(FORMAT_VIDEO_FORMAT, |w| {
            let first = [VIDEO_FORMATS[0].0];
            let ids: Vec<[u32; 1]> = VIDEO_FORMATS.iter().map(|(id, _)| [*id]).collect();
            let mut values: Vec<&[u32]> = vec![&first];
            values.extend(ids.iter().map(|v| v.as_slice()));
            w.choice(CHOICE_ENUM, TYPE_ID, 4, &values);
        });
        w.prop(FORMAT_VIDEO_SIZE, |w| {
            w.choice(
                CHOICE_RANGE,
                TYPE_RECTANGLE,
                8,
                &[&[1920, 1080], &[1, 1], &[16384, 16384]],
            );
        });
        w.prop(FORMAT_VIDEO_FRAMERATE, |w| {
            w.choice(
                CHOICE_RANGE,
                TYPE_FRACTION,
                8,
                &[&[30, 1], &[0, 1], &[1000, 1]],
            );
        });
    });
    w.bytes
}

/// The `Buffers` parameter: only memory the agent can map ([`DATA_TYPES_READABLE`]).
pub(crate) fn buffers() -> Vec<u8> {
    let mut w = Writer::default();
    w.object(OBJECT_PARAM_BUFFERS, PARAM_BUFFERS, |w| {
        w.prop(BUFFERS_DATA_TYPE, |w| w.int(DATA_TYPES_READABLE));
    });
    w.bytes
}

/// Reads pods from bytes, never past the end.
#[derive(Debug, Clone, Copy)]
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u32_at(&self, at: usize) -> Option<u32> {
        let b = self.bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_ne_bytes(b.try_into().ok()?))
    }

    /// The pod at `at`: its type, its body, and where the next pod starts.
    fn pod_at(&self, at: usize) -> Option<(u32, &'a [u8], usize)> {
        let size = usize::try_from(self.u32_at(at)?).ok()?;
        let kind = self.u32_at(at + 4)?;
        let start = at.checked_add(8)?;
        let body = self.bytes.get(start..start.checked_add(size)?)?;
        let next = (start + size).checked_next_multiple_of(8)?;
        Some((kind, body, next))
    }
}

/// The value of a property: a plain pod, or the default of a choice (a fixated format may still
/// wrap its values in a `None` choice).
fn value(kind: u32, body: &[u8]) -> Option<(u32, &[u8])> {
    if kind != TYPE_CHOICE {
        return Some((kind, body));
    }
    let r = Reader { bytes: body };
    let choice = r.u32_at(0)?;
    let child_size = usize::try_from(r.u32_at(8)?).ok()?;
    let child = r.u32_at(12)?;
    if choice != CHOICE_NONE && choice != CHOICE_ENUM && choice != CHOICE_RANGE {
        return None;
    }
    Some((child, body.get(16..16usize.checked_add(child_size)?)?))
}

/// Reads the `Format` parameter the producer chose. `None` when it is not raw video of a
/// 32-bit layout the agent knows, or when it carries a DMA-BUF modifier.
pub(crate) fn parse_format(pod: &[u8]) -> Option<VideoFormat> {
    let top = Reader { bytes: pod };
    let (kind, body, _) = top.pod_at(0)?;
    let r = Reader { bytes: body };
    if kind != TYPE_OBJECT || r.u32_at(0)? != OBJECT_FORMAT || r.u32_at(4)? != PARAM_FORMAT {
        return None;
    }
    let (mut media, mut sub, mut order, mut size) = (None, None, None, None);
    let mut at = 8;
    while at < body.len() {
        let key = r.u32_at(at)?;
        let (kind, raw, next) = r.pod_at(at + 8)?;
        let (kind, v) = value(kind, raw)?;
        let first = Reader { bytes: v }.u32_at(0);
        match (key, kind) {
            (FORMAT_MEDIA_TYPE, TYPE_ID) => media = first,
            (FORMAT_MEDIA_SUBTYPE, TYPE_ID) => sub = first,
            (FORMAT_VIDEO_FORMAT, TYPE_ID) => {
                order = VIDEO_FORMATS
                    .iter()
                    .find(|(id, _)| Some(*id) == first)
                    .map(|(_, o)| *o);
            }
            (FORMAT_VIDEO_SIZE, TYPE_RECTANGLE) => {
                size = Some((first?, Reader { bytes: v }.u32_at(4)?));
            }
            (FORMAT_VIDEO_MODIFIER, _) => return None,
            _ => {}
        }
        at = next;
    }
    let (width, height) = size.filter(|&(w, h)| w > 0 && h > 0)?;
    (media == Some(MEDIA_TYPE_VIDEO) && sub == Some(MEDIA_SUBTYPE_RAW)).then_some(VideoFormat {
        order: order?,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Format` pod as a producer sends it, with `size` as given.
    fn format(video: u32, size: (u32, u32), modifier: bool) -> Vec<u8> {
        let mut w = Writer::default();
        w.object(OBJECT_FORMAT, PARAM_FORMAT, |w| {
            w.prop(FORMAT_MEDIA_TYPE, |w| w.id(MEDIA_TYPE_VIDEO));
            w.prop(FORMAT_MEDIA_SUBTYPE, |w| w.id(MEDIA_SUBTYPE_RAW));
            w.prop(FORMAT_VIDEO_FORMAT, |w| w.id(video));
            if modifier {
                w.prop(FORMAT_VIDEO_MODIFIER, |w| w.int(0));
            }
            w.prop(FORMAT_VIDEO_SIZE, |w| {
                w.pod(TYPE_RECTANGLE, |w| {
                    w.u32(size.0);
                    w.u32(size.1);
                });
            });
            w.prop(FORMAT_VIDEO_FRAMERATE, |w| {
                w.choice(CHOICE_NONE, TYPE_FRACTION, 8, &[&[0, 1]]);
            });
        });
        w.bytes
    }

    #[test]
    fn enum_format_is_well_formed() {
        let pod = enum_format();
        assert_eq!(pod.len() % 8, 0);
        let r = Reader { bytes: &pod };
        let (kind, body, next) = r.pod_at(0).unwrap();
        assert_eq!((kind, next), (TYPE_OBJECT, pod.len()));
        assert_eq!(r.u32_at(8), Some(OBJECT_FORMAT));
        assert_eq!(r.u32_at(12), Some(PARAM_ENUM_FORMAT));
        // The first property: media type video, as spa_pod_builder writes it.
        assert_eq!(
            &body[8..32],
            [1u32, 0, 4, TYPE_ID, MEDIA_TYPE_VIDEO, 0]
                .iter()
                .flat_map(|v| v.to_ne_bytes())
                .collect::<Vec<_>>()
        );
        // The format choice: enum of ids, default BGRx, then the four alternatives.
        let choice = body
            .windows(8)
            .position(|w| w == [0x01, 0x00, 0x02, 0x00, 0, 0, 0, 0])
            .unwrap();
        let (kind, raw, _) = Reader { bytes: body }.pod_at(choice + 8).unwrap();
        assert_eq!(kind, TYPE_CHOICE);
        assert_eq!(raw.len(), 16 + 5 * 4);
        let buffers = buffers();
        assert_eq!(buffers.len(), 8 + 8 + 8 + 16);
    }

    #[test]
    fn reads_the_chosen_format() {
        let f = parse_format(&format(8, (800, 600), false)).unwrap();
        assert_eq!((f.order, f.width, f.height), (PixelOrder::Bgrx, 800, 600));
        let f = parse_format(&format(11, (3, 2), false)).unwrap();
        assert_eq!(f.order, PixelOrder::Rgbx);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        // I420, a DMA-BUF modifier, a zero size.
        assert!(parse_format(&format(2, (800, 600), false)).is_none());
        assert!(parse_format(&format(8, (800, 600), true)).is_none());
        assert!(parse_format(&format(8, (0, 600), false)).is_none());
        // Every cut of a good pod, and garbage, is refused without panicking.
        let good = format(8, (800, 600), false);
        for cut in 0..good.len() {
            assert!(parse_format(&good[..cut]).is_none(), "cut at {cut}");
        }
        for flip in 0..good.len() {
            let mut bad = good.clone();
            bad[flip] ^= 0xff;
            let _ = parse_format(&bad);
        }
        assert!(parse_format(&enum_format()).is_none());
    }
}
