//! `fuzz-seeds`: writes the seed corpora of the fuzz targets (`fuzz/corpus/<target>/`) from the
//! project's own encoders, so that each fuzzer starts from inputs that get deep: real framed
//! messages, real handshake messages, the example configuration files, a real key, real input
//! scripts, a small corpus clip and real AV1 packets. `just fuzz-seeds` runs it; the seeds are
//! committed, so this is only needed when a format changes.

use anyhow::{Context, Result};
use sightline_bench::corpus::ClipWriter;
use sightline_core::authority::Authority;
use sightline_core::cert::{CertBody, OperatorCert, Permissions};
use sightline_core::codec;
use sightline_core::e2e::{AgentHandshake, E2eConfig, OperatorHandshake, Trust};
use sightline_core::frame::{self, FrameDecoder};
use sightline_core::identity::{PrivateIdentity, CA_BITS, DEFAULT_IDENTITY_BITS};
use sightline_core::lan::{AgentHello, OperatorHello};
use sightline_core::messages::{
    CloseReason, ConsentFor, CursorShape, InputEvent, Message, MouseButton, PauseReason,
    VideoCodec, WithdrawReason,
};
use sightline_core::relay_channel::{self, ClientHandshake, RelayCredentials};
use sightline_core::relay_proto::{ClientMessage, RelayErrorKind, RelayMessage};
use sightline_core::revocation::{RevocationList, Revoked};
use sightline_media::encode::{aom_encoder, EncoderSettings};
use sightline_media::{bgra_to_yuv420, BgraFrame};
use std::path::{Path, PathBuf};

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let seeds = Seeds { root };
    seeds.frame()?;
    seeds.message()?;
    seeds.relay_proto()?;
    seeds.e2e_handshake()?;
    seeds.config_files()?;
    seeds.key_files()?;
    seeds.input_script()?;
    seeds.corpus_clip()?;
    seeds.av1_decode()?;
    seeds.signed_objects()?;
    seeds.known_hosts()?;
    println!("seed corpora written to {}", seeds.root.display());
    Ok(())
}

/// The Noise message inside one framed message.
fn unframe(framed: &[u8]) -> Result<Vec<u8>> {
    let mut d = FrameDecoder::new();
    d.push(framed);
    d.next_message()?.context("no message")
}

/// A black BGRA picture.
fn bgra(width: u32, height: u32) -> BgraFrame {
    BgraFrame {
        width,
        height,
        stride: width as usize * 4,
        data: vec![0; width as usize * height as usize * 4],
    }
}

struct Seeds {
    root: PathBuf,
}

impl Seeds {
    fn write(&self, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("{}", path.display()))
    }

    fn frame(&self) -> Result<()> {
        let mut stream = vec![7u8];
        for m in [&b"hello"[..], &[0u8; 300][..], &[]] {
            stream.extend_from_slice(&frame::encode(m)?);
        }
        self.write("frame", "three-messages", &stream)
    }

    fn message(&self) -> Result<()> {
        let shape = CursorShape {
            width: 2,
            height: 2,
            hot_x: 0,
            hot_y: 0,
            rgba: vec![255; 16],
        };
        let messages = [
            Message::Hello {
                software: "sightline-viewer/0.1.0".into(),
                capabilities: vec!["av1".into()],
            },
            Message::Ping {
                id: 1,
                payload: vec![1, 2, 3],
            },
            Message::VideoConfig {
                codec: VideoCodec::Av1,
                width: 1280,
                height: 720,
            },
            Message::VideoPacket {
                seq: 3,
                capture_us: 1_800_000_000_000_000,
                keyframe: true,
                data: vec![0x12, 0, 0x0a, 0x0b],
            },
            Message::Cursor {
                x: 0.5,
                y: 0.25,
                visible: true,
                shape: Some(shape),
            },
            Message::Input(InputEvent::Key {
                key: "KeyA".into(),
                pressed: true,
            }),
            Message::Input(InputEvent::Text {
                text: "héllo".into(),
            }),
            Message::Input(InputEvent::Button {
                button: MouseButton::Left,
                pressed: true,
            }),
            Message::Input(InputEvent::Wheel { dx: 0.0, dy: 3.0 }),
            Message::Control { granted: true },
            Message::ControlRequest,
            Message::ConsentPending {
                what: ConsentFor::Control,
            },
            Message::VideoAck { seq: 3 },
            Message::SharingPaused {
                reason: PauseReason::BannerGone,
            },
            Message::ControlWithdrawn {
                reason: WithdrawReason::RevokeKeyUnavailable,
            },
            Message::SharingResumed,
            Message::Close {
                reason: CloseReason::EndedByCustomer,
            },
        ];
        for (i, m) in messages.iter().enumerate() {
            self.write("message", &format!("message-{i:02}"), &codec::encode(m)?)?;
        }
        Ok(())
    }

    fn relay_proto(&self) -> Result<()> {
        let client = [
            ClientMessage::LoginChallenge,
            ClientMessage::CreateSession,
            ClientMessage::Join {
                code: "1234567890".into(),
                agent: None,
            },
        ];
        for (i, m) in client.iter().enumerate() {
            self.write("relay_proto", &format!("client-{i}"), &codec::encode(m)?)?;
        }
        let relay = [
            RelayMessage::SessionCreated {
                code: "1234567890".into(),
                session_id: [1; 16],
                expires_at: 1_800_000_000,
            },
            RelayMessage::Error {
                kind: RelayErrorKind::RateLimited,
                message: "too many failed attempts; retry in 2 s".into(),
                retry_after_secs: Some(2),
            },
        ];
        for (i, m) in relay.iter().enumerate() {
            self.write("relay_proto", &format!("relay-{i}"), &codec::encode(m)?)?;
        }
        Ok(())
    }

    fn e2e_handshake(&self) -> Result<()> {
        let cfg = |seed: u8| E2eConfig {
            session_id: [3; 16],
            seed: [seed; 32],
            trust: Trust::AnyAgentKey,
            channel: Default::default(),
        };
        // The same seeds as the fuzz target, so the second and third messages fit its states.
        let (op, m1) = OperatorHandshake::start(cfg(1))?;
        let m1 = unframe(&m1)?;
        let (_, m2) = AgentHandshake::new(cfg(2))?.read_hello(&m1)?;
        let m2 = unframe(&m2)?;
        let (_, m3) = op.read_response(&m2)?;
        let m3 = unframe(&m3)?;
        for (selector, m) in [(0u8, &m1), (1, &m2), (2, &m3)] {
            let mut seed = vec![selector];
            seed.extend_from_slice(m);
            self.write("e2e_handshake", &format!("message-{}", selector + 1), &seed)?;
        }
        Ok(())
    }

    fn config_files(&self) -> Result<()> {
        let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
        for name in ["relay.example.toml", "policy.example.toml"] {
            let text = std::fs::read(assets.join(name))?;
            self.write("config_files", name, &text)?;
        }
        let client = format!(
            "relay = \"relay.example.com\"\nrelay_key = \"{}\"\n",
            "ab".repeat(32)
        );
        self.write("config_files", "viewer.toml", client.as_bytes())
    }

    fn key_files(&self) -> Result<()> {
        let key = PrivateIdentity::generate(&mut rand_core::OsRng, 3072)?;
        self.write(
            "key_files",
            "identity-key.pem",
            key.to_pkcs8_pem()?.as_bytes(),
        )?;
        self.write("key_files", "public-key.der", key.public().spki_der())
    }

    fn input_script(&self) -> Result<()> {
        let script = "# comment\nwait-frames 1\nsleep 200\nmove 0.5 0.25\nclick left\n\
                      wheel 0 3\nkey Enter\nkeydown ShiftLeft\nkeyup ShiftLeft\n\
                      type echo Hello from the help desk\ntext héllo\nrequest-control\nend\n";
        self.write("input_script", "every-command.txt", script.as_bytes())
    }

    fn corpus_clip(&self) -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("clip.png");
        let mut writer = ClipWriter::create(&path, 32, 32, png::Compression::Fast)?;
        for (i, at) in [0u32, 33, 66].iter().enumerate() {
            let mut frame = bgra(32, 32);
            frame.data[i * 4 * 33] = 0xff;
            writer.push(*at, &frame)?;
        }
        writer.finish()?;
        self.write("corpus_clip", "three-frames.png", &std::fs::read(&path)?)
    }

    /// Certificates, an authority, a revocation list, the LAN preamble and a relay's channel
    /// answer, all made with real keys.
    fn signed_objects(&self) -> Result<()> {
        let rng = &mut rand_core::OsRng;
        let now = 1_800_000_000;
        let root = PrivateIdentity::generate(rng, CA_BITS)?;
        let issuer = PrivateIdentity::generate(rng, DEFAULT_IDENTITY_BITS)?;
        let authority = Authority::certify(&root, issuer.public(), 1, now, 90 * 86_400, rng)?;
        let operator = PrivateIdentity::generate(rng, DEFAULT_IDENTITY_BITS)?;
        let body = CertBody {
            serial: 42,
            operator: "alice".into(),
            display_name: "Alice Example".into(),
            organisation: "Example Help Desk".into(),
            permissions: Permissions::VIEW.union(Permissions::CONTROL),
            max_session_secs: 0,
            key: operator.public().fingerprint(),
            not_before: now,
            not_after: now + 3600,
            issuer: issuer.public().fingerprint(),
            recording: Default::default(),
        };
        let cert = OperatorCert::issue(&issuer, &body, rng)?;
        let revoked = vec![Revoked {
            serial: 42,
            not_after: now + 3600,
        }];
        let list = RevocationList::issue(&issuer, &authority, 3, now, revoked, rng)?;
        self.write("certificates", "operator-cert", &cert.to_bytes()?)?;
        self.write("certificates", "authority", &authority.to_bytes()?)?;
        self.write("certificates", "revocation-list", &list.to_bytes()?)?;
        let agent_hello = AgentHello::new([5; 16], Some(2));
        self.write("lan_preamble", "agent-hello", &agent_hello.to_bytes()?)?;
        let operator_hello = OperatorHello::new(Some(authority.clone()), Some(list), &agent_hello);
        self.write(
            "lan_preamble",
            "operator-hello",
            &operator_hello.to_bytes()?,
        )?;
        // The relay's answer to the fuzz target's own first message (same pin and seed do not
        // matter: the seed gets the fuzzer past the framing into the handshake's payload).
        let creds = RelayCredentials::new(&issuer, &authority, [2; 32], now + 86_400, rng)?;
        let (_, first) =
            ClientHandshake::start(root.public().fingerprint(), [1; 32], Default::default())?;
        let first = unframe(&first)?;
        let (_, answer) = relay_channel::respond(&creds, &first, [3; 32], Default::default())?;
        self.write("relay_channel", "relay-answer", &unframe(&answer)?)
    }

    fn known_hosts(&self) -> Result<()> {
        let text = format!(
            "# Sightline viewer: keys of LAN-only agents\n\n192.168.1.20:7615 {fp}\n[fd00::20]:7615 {fp}\nkiosk.lan:8000 {fp}\n",
            fp = "ab".repeat(32)
        );
        self.write("known_hosts", "three-agents", text.as_bytes())
    }

    fn av1_decode(&self) -> Result<()> {
        let mut encoder = aom_encoder(EncoderSettings::new(64, 64))?;
        let mut seed = Vec::new();
        for (i, force) in [true, false].iter().enumerate() {
            let mut frame = bgra(64, 64);
            frame.data[i * 4 * 65] = 0xff;
            let yuv = bgra_to_yuv420(&frame)?;
            for p in encoder.encode(&yuv, i as u64, *force)? {
                let len = u16::try_from(p.data.len()).context("packet too large for a seed")?;
                seed.extend_from_slice(&len.to_be_bytes());
                seed.extend_from_slice(&p.data);
            }
        }
        self.write("av1_decode", "key-and-delta", &seed)
    }
}
