//! Shared by the recording tests: auditor keys (made by the real `age-keygen`), an agent with
//! an RSA identity and a media checkpoint signer, real AV1 packets (libaom, 640x360 synthetic
//! screens), a recorded session, and tools to take a recording apart (decrypt, parse the
//! plaintext independently of the crate, edit, re-encrypt) and to tamper with its ciphertext.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sightline_core::identity::{PrivateIdentity, MIN_PEER_BITS};
use sightline_core::media_proof::CheckpointSigner;
use sightline_core::messages::{CursorShape, InputEvent, Message, VideoCodec};
use sightline_core::session_events::{EventCounter, SessionEvent, SignedEvent};
use sightline_media::encode::Backend;
use sightline_media::pattern::screen_like_bgra;
use sightline_media::{bgra_to_yuv420, EncodedPacket, EncoderSettings};
use sightline_recording::age::x25519::{Identity, Recipient};
use sightline_recording::{Item, Meta, Record, StateChange, Writer};

pub const W: u32 = 640;
pub const H: u32 = 360;
pub const SESSION: [u8; 16] = [7; 16];
/// Microseconds between pictures (30 fps).
pub const FRAME_US: u64 = 33_333;
/// The payload chunk age encrypts, with its tag.
pub const CHUNK: usize = 64 * 1024 + 16;

/// The agent's identity key, generated once per test binary.
pub fn agent() -> &'static PrivateIdentity {
    static KEY: OnceLock<PrivateIdentity> = OnceLock::new();
    KEY.get_or_init(|| {
        PrivateIdentity::generate(&mut ChaCha20Rng::seed_from_u64(17), MIN_PEER_BITS).unwrap()
    })
}

/// 40 real AV1 packets (keyframes at 0 and 20), encoded once per test binary.
pub fn packets() -> &'static [EncodedPacket] {
    static P: OnceLock<Vec<EncodedPacket>> = OnceLock::new();
    P.get_or_init(|| {
        let mut enc = Backend::fastest()
            .encoder(EncoderSettings {
                threads: 2,
                ..EncoderSettings::new(W, H)
            })
            .unwrap();
        let mut out = Vec::new();
        for i in 0..40u32 {
            let pic = bgra_to_yuv420(&screen_like_bgra(W, H, W as usize * 4, i)).unwrap();
            out.extend(enc.encode(&pic, u64::from(i), i % 20 == 0).unwrap());
        }
        assert_eq!(out.len(), 40, "libaom gives one packet per picture");
        assert!(out[0].keyframe && out[20].keyframe);
        out
    })
}

/// An auditor key made by `age-keygen` in `dir`: the key file and the identity in it.
pub fn auditor(dir: &Path) -> (PathBuf, Identity) {
    let key = dir.join("auditor.txt");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .expect("age-keygen (Debian package `age`, installed by ./dev)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids = sightline_recording::parse_identity_file(&key).unwrap();
    (key, ids.into_iter().next().unwrap())
}

/// How to record the test session.
#[derive(Debug, Clone)]
pub struct Opts {
    pub frames: usize,
    pub checkpoint_every: usize,
    pub final_checkpoint: bool,
    pub include_input: bool,
    pub finish: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            frames: 40,
            checkpoint_every: 15,
            final_checkpoint: true,
            include_input: true,
            finish: true,
        }
    }
}

/// A recorded session: the file, the key that opens it, and what was pushed (as the items a
/// reader should give back).
pub struct Session {
    pub dir: tempfile::TempDir,
    pub key_file: PathBuf,
    pub identity: Identity,
    pub file: PathBuf,
    pub pushed: Vec<(u64, Item)>,
    /// Sizes of the pieces `take_ciphertext` returned.
    pub pieces: Vec<usize>,
    pub plaintext_bytes: u64,
    pub video_bytes: u64,
}

pub fn meta(include_input: bool) -> Meta {
    Meta {
        session_id: SESSION,
        operator: "alice".into(),
        display_name: "Alice Example".into(),
        organisation: "Example Support".into(),
        relay: "relay.example.com:7615".into(),
        agent_key_spki: agent().public().spki_der().to_vec(),
        started_unix_us: 1_800_000_000_000_000,
        include_input,
        software: "sightline-viewer test".into(),
    }
}

/// Records a session the way the viewer does, with a real agent signing its events and
/// checkpoints over the packets it sends.
pub fn record(opts: &Opts) -> Session {
    let dir = tempfile::tempdir().unwrap();
    let (key_file, identity) = auditor(dir.path());
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut signer = CheckpointSigner::new(SESSION, [5; 32]);
    let mut events = EventCounter::new(SESSION);
    let mut w = Writer::new(&[identity.to_public()], &meta(opts.include_input)).unwrap();
    let mut cipher = Vec::new();
    let mut pieces = Vec::new();
    let mut pushed = Vec::new();
    let mut take = |w: &mut Writer, cipher: &mut Vec<u8>| {
        let piece = w.take_ciphertext();
        if !piece.is_empty() {
            pieces.push(piece.len());
        }
        cipher.extend(piece);
    };

    let key_event = events.next(
        1,
        SessionEvent::MediaKey {
            key: signer.public_key(),
        },
    );
    let key_event = SignedEvent::sign(agent(), &mut rng, &key_event).unwrap();
    w.push(0, Record::Agent(&Message::SessionEvent(key_event.clone())))
        .unwrap();
    pushed.push((0, Item::Event(key_event)));
    // Not recorded: liveness and flow control.
    w.push(
        0,
        Record::Agent(&Message::Ping {
            id: 1,
            payload: vec![1; 100],
        }),
    )
    .unwrap();
    let config = Message::VideoConfig {
        codec: VideoCodec::Av1,
        width: W,
        height: H,
    };
    signer.sent(&config);
    w.push(10, Record::Agent(&config)).unwrap();
    pushed.push((
        10,
        Item::Config {
            width: W,
            height: H,
        },
    ));

    for (i, p) in packets().iter().take(opts.frames).enumerate() {
        let at = 20 + i as u64 * FRAME_US;
        let msg = Message::VideoPacket {
            seq: i as u64,
            capture_us: 1_000_000 + i as u64 * FRAME_US,
            keyframe: p.keyframe,
            data: p.data.clone(),
        };
        signer.sent(&msg);
        w.push(at, Record::Agent(&msg)).unwrap();
        pushed.push((
            at,
            Item::Packet {
                seq: i as u64,
                capture_us: 1_000_000 + i as u64 * FRAME_US,
                keyframe: p.keyframe,
                data: p.data.clone(),
            },
        ));
        let shape = (i == 0).then(|| CursorShape {
            width: 32,
            height: 32,
            hot_x: 1,
            hot_y: 2,
            rgba: vec![200; 32 * 32 * 4],
        });
        let x = i as f32 / 40.0;
        let cursor = Message::Cursor {
            x,
            y: 0.5,
            visible: true,
            shape: shape.clone(),
        };
        w.push(at + 1, Record::Agent(&cursor)).unwrap();
        pushed.push((
            at + 1,
            Item::Cursor {
                x,
                y: 0.5,
                visible: true,
                shape,
            },
        ));
        w.push(at + 2, Record::Agent(&Message::VideoAck { seq: i as u64 }))
            .unwrap();
        if i % 3 == 0 {
            let ev = InputEvent::PointerMove { x, y: 0.25 };
            w.push(at + 3, Record::Input(&ev)).unwrap();
            if opts.include_input {
                pushed.push((at + 3, Item::Input(ev)));
            }
        }
        if i == 5 {
            w.push(at + 4, Record::Agent(&Message::Control { granted: true }))
                .unwrap();
            pushed.push((at + 4, Item::State(StateChange::Control { granted: true })));
        }
        if (i + 1) % opts.checkpoint_every == 0 {
            let cp = signer.checkpoint(at, false).unwrap();
            w.push(at + 5, Record::Agent(&Message::MediaCheckpoint(cp.clone())))
                .unwrap();
            pushed.push((at + 5, Item::Checkpoint(cp)));
        }
        take(&mut w, &mut cipher);
    }
    let end_at = 20 + opts.frames as u64 * FRAME_US;
    if opts.final_checkpoint {
        let cp = signer.checkpoint(end_at, true).unwrap();
        w.push(end_at, Record::Agent(&Message::MediaCheckpoint(cp.clone())))
            .unwrap();
        pushed.push((end_at, Item::Checkpoint(cp)));
    }
    let (plaintext_bytes, video_bytes) = (w.plaintext_bytes(), w.video_bytes());
    if opts.finish {
        let rest = w.finish("ended by operator").unwrap();
        pieces.push(rest.len());
        cipher.extend(rest);
        pushed.push((end_at, Item::End("ended by operator".into())));
    } else {
        take(&mut w, &mut cipher);
    }
    let file = dir.path().join("session.slrec");
    std::fs::write(&file, &cipher).unwrap();
    Session {
        dir,
        key_file,
        identity,
        file,
        pushed,
        pieces,
        plaintext_bytes,
        video_bytes,
    }
}

impl Session {
    /// The identities that open the recording.
    pub fn ids(&self) -> &[Identity] {
        std::slice::from_ref(&self.identity)
    }
}

/// The whole plaintext of an age file.
pub fn decrypt(cipher: &[u8], id: &Identity) -> Vec<u8> {
    let d = sightline_recording::age::Decryptor::new(cipher).unwrap();
    let mut r = d
        .decrypt(std::iter::once(
            id as &dyn sightline_recording::age::Identity,
        ))
        .unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

/// Encrypts `plain` to `to`, as anyone holding the auditor's public key can.
pub fn encrypt(plain: &[u8], to: &Recipient) -> Vec<u8> {
    let e = sightline_recording::age::Encryptor::with_recipients(std::iter::once(
        to as &dyn sightline_recording::age::Recipient,
    ))
    .unwrap();
    let mut out = Vec::new();
    let mut w = e.wrap_output(&mut out).unwrap();
    w.write_all(plain).unwrap();
    w.finish().unwrap();
    out
}

/// A plaintext record, parsed by the documented layout (not by the crate).
#[derive(Debug, Clone)]
pub struct Rec {
    pub kind: u8,
    pub at: u64,
    pub payload: Vec<u8>,
}

/// Splits a plaintext into its records and the footer (the 24 bytes after the Index).
pub fn parse(plain: &[u8]) -> (Vec<Rec>, Vec<u8>) {
    let magic = sightline_recording::MAGIC;
    assert!(plain.starts_with(magic));
    let mut pos = magic.len();
    let mut recs = Vec::new();
    while pos < plain.len() {
        let kind = plain[pos];
        let at = u64::from_le_bytes(plain[pos + 1..pos + 9].try_into().unwrap());
        let len = u32::from_le_bytes(plain[pos + 9..pos + 13].try_into().unwrap()) as usize;
        recs.push(Rec {
            kind,
            at,
            payload: plain[pos + 13..pos + 13 + len].to_vec(),
        });
        pos += 13 + len;
        if kind == 10 {
            return (recs, plain[pos..].to_vec());
        }
    }
    (recs, Vec::new())
}

/// The plaintext of `recs` (and `footer` after them).
pub fn unparse(recs: &[Rec], footer: &[u8]) -> Vec<u8> {
    let mut out = sightline_recording::MAGIC.to_vec();
    for r in recs {
        out.push(r.kind);
        out.extend_from_slice(&r.at.to_le_bytes());
        out.extend_from_slice(&(r.payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&r.payload);
    }
    out.extend_from_slice(footer);
    out
}

/// Where age's payload (the chunks) starts: after the header's MAC line and the 16-byte nonce.
pub fn payload_start(cipher: &[u8]) -> usize {
    let mac = cipher.windows(4).position(|w| w == b"\n---").unwrap() + 1;
    let eol = mac + cipher[mac..].iter().position(|b| *b == b'\n').unwrap();
    eol + 1 + 16
}

/// Writes `bytes` as a new file beside the session's.
pub fn write(s: &Session, name: &str, bytes: &[u8]) -> PathBuf {
    let p = s.dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}
