//! The video decoding thread: AV1 packets in (bounded queue), the newest decoded picture out
//! (a single slot, so the UI never draws a stale frame and never queues them), plus a small
//! event per decoded frame for statistics. A decoder error or a gap in sequence numbers asks
//! the agent for a keyframe and drops packets until one arrives; the picture never freezes
//! silently.
//!
//! Sequence numbers come from the agent and may be anything: they wrap instead of overflowing.
//! A decoded picture whose size differs from the size the agent announced (and the viewer
//! accepted, [`PictureSize`]) is dropped, never shown.

use crate::limits::PictureSize;
use sightline_media::decode::Av1Decoder;
use sightline_media::Yuv420Frame;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

/// A decoded picture and when it was captured and decoded.
#[derive(Debug, Clone)]
pub struct DecodedFrame {
    /// Packet sequence number.
    pub seq: u64,
    /// Capture time on the agent, microseconds since the Unix epoch.
    pub capture_us: u64,
    /// Decode completion time on this machine, microseconds since the Unix epoch.
    pub decoded_us: u64,
    /// The picture.
    pub picture: Arc<Yuv420Frame>,
}

/// The newest decoded picture; taking it leaves the slot empty.
#[derive(Debug, Default)]
pub struct LatestFrame {
    slot: Mutex<Option<DecodedFrame>>,
    last: Mutex<Option<DecodedFrame>>,
}

impl LatestFrame {
    fn put(&self, f: DecodedFrame) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some(f.clone());
        }
        if let Ok(mut s) = self.slot.lock() {
            *s = Some(f);
        }
    }

    /// Takes the newest picture not yet taken.
    pub fn take(&self) -> Option<DecodedFrame> {
        self.slot.lock().ok().and_then(|mut s| s.take())
    }

    /// The last picture decoded (whether taken or not), e.g. to save it.
    pub fn last(&self) -> Option<DecodedFrame> {
        self.last.lock().ok().and_then(|s| s.clone())
    }
}

/// One packet for the decoder.
#[derive(Debug)]
pub enum DecoderInput {
    /// The stream (re)starts with pictures of this size, as announced and checked: start over
    /// (a keyframe follows).
    Reset(PictureSize),
    /// An encoded picture.
    Packet {
        /// Sequence number.
        seq: u64,
        /// Capture time.
        capture_us: u64,
        /// Whether it is a keyframe.
        keyframe: bool,
        /// AV1 data.
        data: Vec<u8>,
    },
}

/// What the decoder reports to the session driver.
#[derive(Debug, Clone)]
pub enum DecoderReport {
    /// A picture was decoded.
    Decoded {
        /// Sequence number.
        seq: u64,
        /// Encoded size in bytes.
        bytes: usize,
        /// Whether it was a keyframe.
        keyframe: bool,
        /// Picture size.
        width: u32,
        /// Picture size.
        height: u32,
        /// Capture time (agent clock).
        capture_us: u64,
        /// Decode time (local clock).
        decoded_us: u64,
    },
    /// The decoder needs a keyframe.
    NeedKeyframe(String),
}

/// Handle of the decoding thread. Dropping it closes the input queue; the thread then ends on
/// its own (drop never blocks).
#[derive(Debug)]
pub struct DecoderThread {
    input: tokio::sync::mpsc::Sender<DecoderInput>,
    _thread: JoinHandle<()>,
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl DecoderThread {
    /// Starts the thread. `notify` is called after each decoded picture (the GUI asks for a
    /// repaint there); `reports` receives per-frame reports.
    pub fn spawn(
        latest: Arc<LatestFrame>,
        reports: tokio::sync::mpsc::UnboundedSender<DecoderReport>,
        notify: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Self> {
        let (input, rx) = tokio::sync::mpsc::channel::<DecoderInput>(16);
        let thread = std::thread::Builder::new()
            .name("av1-decoder".into())
            .spawn(move || decode_loop(rx, &latest, &reports, &*notify))?;
        Ok(Self {
            input,
            _thread: thread,
        })
    }

    /// Queues input; waits while the queue is full (backpressure on the network).
    /// Returns false when the thread has ended.
    pub async fn send(&self, msg: DecoderInput) -> bool {
        self.input.send(msg).await.is_ok()
    }

    /// Another handle on the input queue (the thread runs until every handle is dropped).
    pub fn input(&self) -> tokio::sync::mpsc::Sender<DecoderInput> {
        self.input.clone()
    }
}

/// Which packets reach the decoder: after a start, a gap or an error, nothing until a
/// keyframe.
#[derive(Debug)]
struct Sequence {
    /// The sequence number the next packet should have (wrapping).
    expected: Option<u64>,
    waiting_for_key: bool,
}

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PacketStep {
    /// The packet expected instead of this one, when one is missing.
    lost: Option<u64>,
    /// Whether to decode it.
    decode: bool,
    /// Whether to flush the decoder first (a keyframe after waiting for one).
    flush: bool,
}

impl Sequence {
    fn new() -> Self {
        Self {
            expected: None,
            waiting_for_key: true,
        }
    }

    /// The stream starts over.
    fn reset(&mut self) {
        *self = Self::new();
    }

    /// The decoder failed: wait for a keyframe.
    fn failed(&mut self) {
        self.waiting_for_key = true;
    }

    fn packet(&mut self, seq: u64, keyframe: bool) -> PacketStep {
        let lost = self.expected.filter(|&e| seq != e && !keyframe);
        if lost.is_some() {
            self.waiting_for_key = true;
        }
        // Numbers come from the agent: `u64::MAX` is followed by 0, never an overflow.
        self.expected = Some(seq.wrapping_add(1));
        let flush = self.waiting_for_key && keyframe;
        let decode = !self.waiting_for_key || keyframe;
        if flush {
            self.waiting_for_key = false;
        }
        PacketStep {
            lost,
            decode,
            flush,
        }
    }
}

fn decode_loop(
    mut rx: tokio::sync::mpsc::Receiver<DecoderInput>,
    latest: &LatestFrame,
    reports: &tokio::sync::mpsc::UnboundedSender<DecoderReport>,
    notify: &(dyn Fn() + Send + Sync),
) {
    let mut decoder = match Av1Decoder::new(2) {
        Ok(d) => d,
        Err(e) => {
            let _ = reports.send(DecoderReport::NeedKeyframe(format!(
                "cannot start the decoder: {e}"
            )));
            return;
        }
    };
    let mut sequence = Sequence::new();
    let mut size: Option<PictureSize> = None;
    // The last picture size refused, so the warning is logged once per size.
    let mut refused: Option<(u32, u32)> = None;
    while let Some(input) = rx.blocking_recv() {
        let (seq, capture_us, keyframe, data) = match input {
            DecoderInput::Reset(announced) => {
                decoder.flush();
                sequence.reset();
                size = Some(announced);
                refused = None;
                continue;
            }
            DecoderInput::Packet {
                seq,
                capture_us,
                keyframe,
                data,
            } => (seq, capture_us, keyframe, data),
        };
        let step = sequence.packet(seq, keyframe);
        if let Some(e) = step.lost {
            let _ = reports.send(DecoderReport::NeedKeyframe(format!("packet {e} lost")));
        }
        if !step.decode {
            continue;
        }
        if step.flush {
            decoder.flush();
        }
        match decoder.decode(&data) {
            Ok(Some(picture)) => {
                let (width, height) = (picture.width, picture.height);
                if !size.is_some_and(|s| s.matches(width, height)) {
                    // The agent announced another size: this picture is not what the viewer
                    // checked and prepared for.
                    if refused != Some((width, height)) {
                        tracing::warn!(
                            width,
                            height,
                            announced = ?size,
                            "dropping decoded pictures of a size the agent did not announce"
                        );
                        refused = Some((width, height));
                    }
                    continue;
                }
                let decoded_us = now_us();
                latest.put(DecodedFrame {
                    seq,
                    capture_us,
                    decoded_us,
                    picture: Arc::new(picture),
                });
                notify();
                let _ = reports.send(DecoderReport::Decoded {
                    seq,
                    bytes: data.len(),
                    keyframe,
                    width,
                    height,
                    capture_us,
                    decoded_us,
                });
            }
            Ok(None) => {}
            Err(e) => {
                sequence.failed();
                let _ = reports.send(DecoderReport::NeedKeyframe(format!("decoder error: {e}")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_media::pattern::screen_like_bgra;
    use sightline_media::{bgra_to_yuv420, rav1e_encoder, EncoderSettings};

    #[test]
    fn sequence_numbers_wrap_instead_of_overflowing() {
        let mut s = Sequence::new();
        // Nothing is decoded before a keyframe.
        assert_eq!(
            s.packet(7, false),
            PacketStep {
                lost: None,
                decode: false,
                flush: false
            }
        );
        let key = s.packet(u64::MAX, true);
        assert!(key.decode && key.flush, "{key:?}");
        // u64::MAX is followed by 0: in order, not a gap and not a panic.
        assert_eq!(
            s.packet(0, false),
            PacketStep {
                lost: None,
                decode: true,
                flush: false
            }
        );
        assert_eq!(s.packet(1, false).lost, None);
        // A gap: the packet expected is reported and nothing is decoded until a keyframe.
        let gap = s.packet(u64::MAX - 1, false);
        assert_eq!(gap.lost, Some(2));
        assert!(!gap.decode);
        assert!(
            !s.packet(u64::MAX, false).decode,
            "still waiting for a keyframe"
        );
        assert!(
            s.packet(9, true).decode,
            "a keyframe restarts, whatever its number"
        );
        assert!(s.packet(10, false).decode);
        s.failed();
        assert!(!s.packet(11, false).decode);
        s.reset();
        assert_eq!(s.packet(500, false).lost, None, "no gap across a reset");
    }

    /// One AV1 keyframe of a `width` x `height` picture.
    fn keyframe(width: u32, height: u32) -> Vec<u8> {
        let mut enc = rav1e_encoder(EncoderSettings {
            threads: 1,
            ..EncoderSettings::new(width, height)
        })
        .expect("encoder");
        let bgra = screen_like_bgra(width, height, width as usize * 4, 3);
        let pic = bgra_to_yuv420(&bgra).expect("yuv");
        // rav1e holds a few pictures back: submit the picture again until it comes out.
        let mut force = true;
        for t in 0..16 {
            let packets = enc.encode(&pic, t, force).expect("encode");
            force = false;
            if let Some(p) = packets.into_iter().find(|p| p.capture_us == 0) {
                assert!(p.keyframe);
                return p.data;
            }
        }
        panic!("no packet came out");
    }

    /// Runs the decoding thread over `inputs` until it has taken them all; returns its reports
    /// and the newest picture. Panics if the thread panicked.
    fn decode_all(inputs: Vec<DecoderInput>) -> (Vec<DecoderReport>, Option<DecodedFrame>) {
        let latest = Arc::new(LatestFrame::default());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let DecoderThread { input, _thread } =
            DecoderThread::spawn(latest.clone(), tx, Arc::new(|| {})).expect("thread");
        for i in inputs {
            input.blocking_send(i).expect("decoder running");
        }
        drop(input);
        assert!(_thread.join().is_ok(), "the decoding thread panicked");
        let mut reports = Vec::new();
        while let Ok(r) = rx.try_recv() {
            reports.push(r);
        }
        (reports, latest.take())
    }

    fn packet(seq: u64, keyframe: bool, data: &[u8]) -> DecoderInput {
        DecoderInput::Packet {
            seq,
            capture_us: u64::MAX,
            keyframe,
            data: data.to_vec(),
        }
    }

    fn size(width: u32, height: u32) -> PictureSize {
        PictureSize::new(width, height).expect("size")
    }

    fn decoded(reports: &[DecoderReport]) -> Vec<u64> {
        reports
            .iter()
            .filter_map(|r| match r {
                DecoderReport::Decoded { seq, .. } => Some(*seq),
                DecoderReport::NeedKeyframe(_) => None,
            })
            .collect()
    }

    #[test]
    fn hostile_packets_do_not_stop_the_decoder() {
        let key = keyframe(64, 48);
        let garbage: Vec<u8> = (0..4000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let (reports, last) = decode_all(vec![
            DecoderInput::Reset(size(64, 48)),
            packet(u64::MAX, true, &key),
            packet(0, true, &key),
            // Garbage flagged as a keyframe, then as the next packet, then empty.
            packet(1, true, &garbage),
            packet(2, false, &garbage),
            packet(3, true, &[]),
            // A gap far away.
            packet(u64::MAX - 5, false, &garbage),
            // And the stream recovers with the next keyframe.
            packet(77, true, &key),
        ]);
        assert_eq!(decoded(&reports), vec![u64::MAX, 0, 77], "{reports:?}");
        let decoder_error = |r: &DecoderReport| match r {
            DecoderReport::NeedKeyframe(why) => why.starts_with("decoder error"),
            DecoderReport::Decoded { .. } => false,
        };
        assert!(reports.iter().any(decoder_error), "{reports:?}");
        let last = last.expect("a picture");
        assert_eq!(
            (last.seq, last.picture.width, last.picture.height),
            (77, 64, 48)
        );
    }

    #[test]
    fn pictures_of_an_unannounced_size_are_dropped() {
        let key = keyframe(64, 48);
        let (reports, last) = decode_all(vec![
            DecoderInput::Reset(size(640, 480)),
            packet(0, true, &key),
            packet(1, true, &key),
        ]);
        assert!(decoded(&reports).is_empty(), "{reports:?}");
        assert!(last.is_none());
        // Nothing before a configuration either: the client sends packets only after one,
        // and the decoder does not show a picture without one.
        let (reports, last) = decode_all(vec![packet(0, true, &key)]);
        assert!(decoded(&reports).is_empty(), "{reports:?}");
        assert!(last.is_none());
        // The announced size is shown.
        let (reports, _) = decode_all(vec![
            DecoderInput::Reset(size(640, 480)),
            packet(0, true, &key),
            DecoderInput::Reset(size(64, 48)),
            packet(1, true, &key),
        ]);
        assert_eq!(decoded(&reports), vec![1]);
    }
}
