//! The video decoding thread: AV1 packets in (bounded queue), the newest decoded picture out
//! (a single slot, so the UI never draws a stale frame and never queues them), plus a small
//! event per decoded frame for statistics. A decoder error or a gap in sequence numbers asks
//! the agent for a keyframe and drops packets until one arrives; the picture never freezes
//! silently.

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
    /// The stream changed size: start over (a keyframe follows).
    Reset,
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
    let mut expected: Option<u64> = None;
    let mut waiting_for_key = true;
    while let Some(input) = rx.blocking_recv() {
        let (seq, capture_us, keyframe, data) = match input {
            DecoderInput::Reset => {
                decoder.flush();
                waiting_for_key = true;
                expected = None;
                continue;
            }
            DecoderInput::Packet {
                seq,
                capture_us,
                keyframe,
                data,
            } => (seq, capture_us, keyframe, data),
        };
        if let Some(e) = expected {
            if seq != e && !keyframe {
                waiting_for_key = true;
                let _ = reports.send(DecoderReport::NeedKeyframe(format!("packet {e} lost")));
            }
        }
        expected = Some(seq + 1);
        if waiting_for_key {
            if !keyframe {
                continue;
            }
            decoder.flush();
            waiting_for_key = false;
        }
        match decoder.decode(&data) {
            Ok(Some(picture)) => {
                let decoded_us = now_us();
                let (width, height) = (picture.width, picture.height);
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
                waiting_for_key = true;
                let _ = reports.send(DecoderReport::NeedKeyframe(format!("decoder error: {e}")));
            }
        }
    }
}
