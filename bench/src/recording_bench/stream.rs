//! The recorded stream: the corpus clip encoded into one 10-second GOP, and a recording of that
//! GOP repeated to the length wanted, written through the viewer's `Writer` with the thread's
//! CPU time measured around `push` and `take_ciphertext` only.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rand_core::{OsRng, RngCore};
use sightline_core::identity::{PrivateIdentity, MIN_PEER_BITS};
use sightline_core::media_proof::CheckpointSigner;
use sightline_core::messages::{CursorShape, InputEvent, Message, VideoCodec};
use sightline_core::session_events::{EventCounter, SessionEvent, SignedEvent};
use sightline_media::encode::{Backend, EncoderSettings};
use sightline_media::{bgra_to_yuv420, EncodedPacket, Yuv420Frame};
use sightline_recording::age::x25519::Recipient;
use sightline_recording::{Meta, Record, Writer};

use crate::corpus::ClipReader;

/// Pictures per second of the stream.
pub const FPS: u64 = 30;
/// Pictures per GOP: a keyframe every 10 s.
pub const GOP: usize = 300;
/// A media checkpoint every this many pictures (5 s, as the agent signs them).
const CHECKPOINT_EVERY: u64 = 150;

/// One encoded GOP of a clip.
#[derive(Debug)]
pub struct Gop {
    pub packets: Vec<EncodedPacket>,
    pub width: u32,
    pub height: u32,
    pub encoder: String,
}

/// Encodes `clip` at `kbps` with the fastest encoder into one GOP of [`GOP`] pictures: the
/// clip's changed pictures, then again from its second one, in a loop.
pub fn encode_gop(clip: &Path, kbps: u32) -> Result<Gop> {
    let mut reader =
        ClipReader::open(clip).with_context(|| format!("opening {}", clip.display()))?;
    let (width, height) = (reader.width(), reader.height());
    let mut pictures: Vec<Yuv420Frame> = Vec::new();
    while let Some(f) = reader.next_frame()? {
        if f.changed || pictures.is_empty() {
            pictures.push(bgra_to_yuv420(&f.bgra).map_err(|e| anyhow!("convert: {e}"))?);
        }
    }
    if pictures.len() < 2 {
        return Err(anyhow!(
            "{} has fewer than two changed pictures",
            clip.display()
        ));
    }
    let backend = Backend::fastest();
    let mut enc = backend
        .encoder(EncoderSettings {
            bitrate_kbps: Some(kbps),
            ..EncoderSettings::new(width, height)
        })
        .map_err(|e| anyhow!("{backend}: {e}"))?;
    let n = pictures.len();
    let mut packets = Vec::new();
    let mut i = 0usize;
    // A rav1e-like encoder holds pictures back: re-submit the last one until they are out.
    while i < GOP || (enc.pending() > 0 && i < GOP + 16) {
        let pic = if i < n {
            &pictures[i]
        } else {
            &pictures[1 + (i - n) % (n - 1)]
        };
        let out = enc
            .encode(pic, i as u64, i == 0)
            .map_err(|e| anyhow!("encode: {e}"))?;
        packets.extend(out);
        i += 1;
    }
    packets.truncate(GOP);
    Ok(Gop {
        packets,
        width,
        height,
        encoder: backend.name().to_string(),
    })
}

/// What writing the recording took.
#[derive(Debug)]
pub struct Written {
    pub packets: u64,
    pub video_bytes: u64,
    pub file_bytes: u64,
    /// Thread CPU time inside `Writer::new`, `push`, `take_ciphertext` and `finish`.
    pub cpu: Duration,
    pub wall: Duration,
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Records `seconds` of `gop` repeated (seq, capture_us and at_us rewritten) with what the agent
/// sends beside the video (the media key event, a signed checkpoint every 5 s, the pointer
/// once), to `path`. `busy` adds a moving pointer (a Cursor record every picture) and the
/// operator's wheel (an Input record every third picture), the most a session records besides.
pub fn write(gop: &Gop, seconds: u64, to: &Recipient, path: &Path, busy: bool) -> Result<Written> {
    let started = Instant::now();
    let agent = PrivateIdentity::generate(&mut OsRng, MIN_PEER_BITS)?;
    let mut session_id = [0u8; 16];
    OsRng.fill_bytes(&mut session_id);
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let mut signer = CheckpointSigner::new(session_id, seed);
    let media_key = EventCounter::new(session_id).next(
        1,
        SessionEvent::MediaKey {
            key: signer.public_key(),
        },
    );
    let media_key = SignedEvent::sign(&agent, &mut OsRng, &media_key)?;
    let meta = Meta {
        session_id,
        operator: "bench".into(),
        display_name: "Benchmark".into(),
        organisation: "Sightline".into(),
        relay: "127.0.0.1:7615".into(),
        agent_key_spki: agent.public().spki_der().to_vec(),
        started_unix_us: 1_800_000_000_000_000,
        include_input: true,
        software: concat!("sightline-bench ", env!("CARGO_PKG_VERSION")).into(),
    };
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    let mut cpu = Duration::ZERO;
    let mut timed = |f: &mut dyn FnMut() -> Result<Vec<u8>>| -> Result<Vec<u8>> {
        let t = thread_cpu();
        let out = f();
        cpu += thread_cpu().saturating_sub(t);
        out
    };
    // The GOP as messages, built once; each picture only rewrites their numbers.
    let mut msgs: Vec<Message> = gop
        .packets
        .iter()
        .map(|p| Message::VideoPacket {
            seq: 0,
            capture_us: 0,
            keyframe: p.keyframe,
            data: p.data.clone(),
        })
        .collect();
    let mut w = None;
    let first = timed(&mut || {
        let mut wr = Writer::new(std::slice::from_ref(to), &meta)?;
        wr.push(0, Record::Agent(&Message::SessionEvent(media_key.clone())))?;
        let config = Message::VideoConfig {
            codec: VideoCodec::Av1,
            width: gop.width,
            height: gop.height,
        };
        wr.push(0, Record::Agent(&config))?;
        let out = wr.take_ciphertext();
        w = Some(wr);
        Ok(out)
    })?;
    let mut w = w.ok_or_else(|| anyhow!("no writer"))?;
    file.write_all(&first)?;
    let frames = seconds * FPS;
    let (mut packets, mut video_bytes) = (0u64, 0u64);
    for j in 0..frames {
        let at = j * 1_000_000 / FPS;
        let k = (j as usize) % msgs.len();
        if let Message::VideoPacket {
            seq,
            capture_us,
            data,
            ..
        } = &mut msgs[k]
        {
            (*seq, *capture_us) = (j, meta.started_unix_us + at);
            video_bytes += data.len() as u64;
        }
        let shape = (j == 0).then(|| CursorShape {
            width: 32,
            height: 32,
            hot_x: 0,
            hot_y: 0,
            rgba: vec![255; 32 * 32 * 4],
        });
        let cursor = Message::Cursor {
            x: 0.5,
            y: (j % 100) as f32 / 100.0,
            visible: true,
            shape,
        };
        let checkpoint = (j % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1)
            .then(|| signer.checkpoint(meta.started_unix_us + at, false))
            .transpose()?;
        let msg = &msgs[k];
        let out = timed(&mut || {
            w.push(at, Record::Agent(msg))?;
            if busy || j == 0 {
                w.push(at, Record::Agent(&cursor))?;
            }
            if busy && j % 3 == 0 {
                w.push(at, Record::Input(&InputEvent::Wheel { dx: 0.0, dy: 1.0 }))?;
            }
            if let Some(cp) = &checkpoint {
                w.push(at, Record::Agent(&Message::MediaCheckpoint(cp.clone())))?;
            }
            Ok(w.take_ciphertext())
        })?;
        file.write_all(&out)?;
        packets += 1;
    }
    let last = signer.checkpoint(meta.started_unix_us + frames * 1_000_000 / FPS, true)?;
    let mut w = Some(w);
    let rest = timed(&mut || {
        let mut wr = w.take().ok_or_else(|| anyhow!("no writer"))?;
        wr.push(
            frames * 1_000_000 / FPS,
            Record::Agent(&Message::MediaCheckpoint(last.clone())),
        )?;
        Ok(wr.finish("ended by operator")?)
    })?;
    file.write_all(&rest)?;
    file.flush()?;
    drop(file);
    Ok(Written {
        packets,
        video_bytes,
        file_bytes: std::fs::metadata(path)?.len(),
        cpu,
        wall: started.elapsed(),
    })
}
