//! Micro-benchmarks of the session transport's hot path: sealing and opening messages on an
//! established Noise channel (AES-256-GCM, 2-byte framing, fragmentation above 64 KiB), and the
//! postcard encoding of a ~20 KB video packet, alone and with the channel (`send`/`receive`,
//! what `e2e::Session` does for every packet).
//!
//! The two peers are a client and a relay channel built in memory, as in the core's two-peer
//! tests (`tests/relay_channel.rs`); the transport after the handshake is the same `Channel` the
//! end-to-end session uses. Keys are generated from a fixed seed once per run (the 4096-bit CA
//! takes a few seconds).
//!
//! `cargo bench -p sightline-core --bench channel -- --warm-up-time 1 --measurement-time 2`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a broken fixture stops the run

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sightline_core::channel::{Channel, ChannelConfig};
use sightline_core::codec;
use sightline_core::frame::FrameDecoder;
use sightline_core::identity::{Fingerprint, PrivateIdentity, CA_BITS};
use sightline_core::messages::Message;
use sightline_core::relay_channel::{respond, ClientHandshake, RelayCredentials};
use std::hint::black_box;
use std::sync::OnceLock;

/// Virtual "now" for the handshake, Unix seconds.
const NOW: u64 = 1_800_000_000;
/// Payload sizes: an input event, a typical inter frame, one full Noise message, a key frame.
const SIZES: [usize; 4] = [64, 20 * 1024, 64 * 1024, 512 * 1024];
/// Size of the encoded picture in the video packet benchmarks.
const VIDEO_PACKET_BYTES: usize = 20 * 1024;

/// The Noise messages in framed stream bytes.
fn unframe(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut d = FrameDecoder::new();
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(m) = d.next_message().unwrap() {
        out.push(m);
    }
    out
}

/// The relay's signed static key and the root fingerprint, made once per run (the root key
/// certifies itself as the issuing key: only the channel is measured here).
fn relay_keys() -> &'static (RelayCredentials, Fingerprint) {
    static KEYS: OnceLock<(RelayCredentials, Fingerprint)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = ChaCha20Rng::from_seed([42; 32]);
        let ca = PrivateIdentity::generate(&mut rng, CA_BITS).unwrap();
        let authority = sightline_core::authority::Authority::certify(
            &ca,
            ca.public(),
            1,
            NOW - 60,
            86_400,
            &mut rng,
        )
        .unwrap();
        let creds = RelayCredentials::new(&ca, &authority, [3; 32], NOW + 3600, &mut rng).unwrap();
        (creds, ca.public().fingerprint())
    })
}

/// An established pair of channels: (client, relay).
fn channel_pair() -> (Channel, Channel) {
    let (creds, pin) = relay_keys();
    let (creds, pin) = (creds, *pin);
    let cfg = ChannelConfig::default();
    // -> e
    let (hs, m1) = ClientHandshake::start(pin, [1; 32], cfg).unwrap();
    // <- e, ee, s, es
    let (relay, m2) = respond(creds, &unframe(&m1)[0], [2; 32], cfg).unwrap();
    let (client, _) = hs.finish(&unframe(&m2)[0], NOW).unwrap();
    (client, relay)
}

/// Opens every Noise message in `wire` (which holds one sealed application message).
fn open_all(ch: &mut Channel, wire: &[u8]) -> Vec<u8> {
    let mut d = FrameDecoder::new();
    d.push(wire);
    while let Some(m) = d.next_message().unwrap() {
        if let Some(plain) = ch.open(&m).unwrap() {
            return plain;
        }
    }
    panic!("no complete message in the wire bytes")
}

fn video_packet(seq: u64) -> Message {
    // Compressed video looks random; a repeating pattern would be no different to AES or
    // postcard, but keeps the fixture simple.
    let data = (0..VIDEO_PACKET_BYTES)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(7))
        .collect();
    Message::VideoPacket {
        seq,
        capture_us: 1_700_000_000_000_000 + seq,
        keyframe: false,
        data,
    }
}

// Sealing alone moves the sender's nonce on without the receiver, so every benchmark that
// opens gets a pair of its own.
fn seal_and_open(c: &mut Criterion) {
    let mut group = c.benchmark_group("channel");
    for size in SIZES {
        let payload = vec![0x5au8; size];
        group.throughput(Throughput::Bytes(size as u64));
        let (mut a, _) = channel_pair();
        group.bench_function(format!("seal/{size}"), |bench| {
            bench.iter(|| black_box(a.seal(black_box(&payload)).unwrap()))
        });
        // Sealing is setup here (not timed) so that `b` opens every message in order.
        let (mut a, mut b) = channel_pair();
        group.bench_function(format!("open/{size}"), |bench| {
            bench.iter_batched(
                || a.seal(&payload).unwrap(),
                |wire| black_box(open_all(&mut b, &wire)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn video_messages(c: &mut Criterion) {
    let msg = video_packet(1);
    let encoded = codec::encode(&msg).unwrap();
    let mut group = c.benchmark_group("video_packet_20k");
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function("encode", |bench| {
        bench.iter(|| black_box(codec::encode(black_box(&msg)).unwrap()))
    });
    group.bench_function("decode", |bench| {
        bench.iter(|| black_box(codec::decode::<Message>(black_box(&encoded), "bench").unwrap()))
    });
    let (mut a, _) = channel_pair();
    group.bench_function("send (encode + seal)", |bench| {
        bench.iter(|| black_box(a.send(black_box(&msg)).unwrap()))
    });
    let (mut a, mut b) = channel_pair();
    group.bench_function("receive (open + decode)", |bench| {
        bench.iter_batched(
            || a.send(&msg).unwrap(),
            |wire| {
                let mut d = FrameDecoder::new();
                d.push(&wire);
                let mut got = None;
                while let Some(m) = d.next_message().unwrap() {
                    got = b.receive::<Message>(&m, "bench").unwrap();
                }
                black_box(got.expect("a whole message"))
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, seal_and_open, video_messages);
criterion_main!(benches);
