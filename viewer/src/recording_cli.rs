//! `viewer export` and `viewer play`: session recordings from the command line. Export writes
//! the video as WebM or IVF and the operator's input as JSON lines; `play --verify` prints the
//! verification report (text or JSON); `play` alone opens the playback window.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use clap::Args;
use sightline_core::identity::Fingerprint;
use sightline_recording::{export, parse_identity_file, Recording};

/// `viewer export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The recording.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The auditor's age identity file (as `age-keygen` writes it).
    #[arg(long, value_name = "KEYFILE")]
    pub identity: PathBuf,
    /// Where to write the video: a name ending in .webm or .ivf.
    #[arg(long, value_name = "OUT.webm|OUT.ivf")]
    pub out: PathBuf,
    /// Also write the operator's input as JSON lines.
    #[arg(long, value_name = "OUT.jsonl")]
    pub input_log: Option<PathBuf>,
}

/// `viewer play`.
#[derive(Args, Debug)]
pub struct PlayArgs {
    /// The recording.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The auditor's age identity file (as `age-keygen` writes it).
    #[arg(long, value_name = "KEYFILE")]
    pub identity: PathBuf,
    /// Verify the recording instead of playing it: print the report and exit 0 only if the
    /// video is what the agent sent.
    #[arg(long)]
    pub verify: bool,
    /// With --verify: the agent key fingerprint the session should have (64 hex digits, from
    /// the relay's audit log entry session.paired).
    #[arg(long, value_name = "FP", requires = "verify")]
    pub expect_agent: Option<Fingerprint>,
    /// With --verify: print the report as JSON. Playing: print events as JSON lines
    /// (playback, frame, error; see docs/operator.md).
    #[arg(long)]
    pub json: bool,
    /// Playing: start at this position, in seconds from the start of the recording.
    #[arg(long, value_name = "SECONDS", conflicts_with = "verify")]
    pub seek: Option<f64>,
    /// Playing: start paused.
    #[arg(long, conflicts_with = "verify")]
    pub paused: bool,
}

fn identities(path: &Path) -> Result<Vec<sightline_recording::age::x25519::Identity>> {
    Ok(parse_identity_file(path)?)
}

/// Runs `viewer export`.
pub fn export(args: &ExportArgs) -> Result<()> {
    let ids = identities(&args.identity)?;
    let rec = Recording::open(&args.file, &ids)
        .with_context(|| format!("opening {}", args.file.display()))?;
    if let Some(why) = rec.stopped.as_deref().filter(|_| !rec.complete) {
        eprintln!("viewer: the recording was not finished ({why}); exporting what can be read");
    }
    let ext = args
        .out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let summary = match ext.as_deref() {
        Some("webm") => export::webm(&rec, &args.out)?,
        Some("ivf") => export::ivf(&rec, &args.out)?,
        _ => return Err(anyhow!("--out must end in .webm or .ivf")),
    };
    println!(
        "{}: {} frames, {}x{}, {:.3} s",
        args.out.display(),
        summary.frames,
        summary.width,
        summary.height,
        summary.duration_us as f64 / 1e6
    );
    if summary.skipped > 0 {
        println!(
            "  {} packets before the first keyframe left out",
            summary.skipped
        );
    }
    for (at, w, h) in &summary.size_changes {
        println!(
            "  the picture size changes to {w}x{h} at {:.3} s (players may scale it to {}x{})",
            *at as f64 / 1e6,
            summary.width,
            summary.height
        );
    }
    if let Some(log) = &args.input_log {
        let n = export::input_log(&rec, log)?;
        let note = if rec.meta.include_input {
            ""
        } else {
            " (input was not recorded in this session)"
        };
        println!("{}: {n} input events{note}", log.display());
    }
    Ok(())
}

/// Runs `viewer play`; with --verify, whether the recording holds.
pub fn play(args: &PlayArgs) -> Result<bool> {
    if !args.verify {
        // The window reads the identity file itself, so that `--json` reports every failure.
        crate::playback::run(crate::playback::Options {
            file: args.file.clone(),
            identity: args.identity.clone(),
            seek_secs: args.seek,
            paused: args.paused,
            json: args.json,
        })?;
        return Ok(true);
    }
    let ids = identities(&args.identity)?;
    let report = sightline_recording::verify(&args.file, &ids, args.expect_agent)
        .with_context(|| format!("verifying {}", args.file.display()))?;
    if args.json {
        let mut json = serde_json::to_value(&report)?;
        if let Some(obj) = json.as_object_mut() {
            obj.insert("ok".into(), report.ok().into());
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("{report}");
    }
    Ok(report.ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use rand_core::OsRng;
    use sightline_core::media_proof::CheckpointSigner;
    use sightline_core::messages::{InputEvent, Message, VideoCodec};
    use sightline_core::session_events::{EventCounter, SessionEvent, SignedEvent};
    use sightline_recording::age::secrecy::ExposeSecret;
    use sightline_recording::age::x25519::Identity;
    use sightline_recording::{Meta, Record, Writer};

    /// A small recording (packets that are not real AV1: verification and IVF do not decode)
    /// and the identity file that opens it.
    fn recording(dir: &Path) -> (PathBuf, PathBuf) {
        let id = Identity::generate();
        let key = dir.join("auditor.txt");
        let text = format!(
            "# public key: {}\n{}\n",
            id.to_public(),
            id.to_string().expose_secret()
        );
        std::fs::write(&key, text).unwrap();
        let agent = &crate::testkeys::keys().agent;
        let sid = [4; 16];
        let mut signer = CheckpointSigner::new(sid, [1; 32]);
        let meta = Meta {
            session_id: sid,
            operator: "alice".into(),
            display_name: "Alice".into(),
            organisation: "Example".into(),
            relay: "127.0.0.1:7615".into(),
            agent_key_spki: agent.public().spki_der().to_vec(),
            started_unix_us: 1,
            include_input: true,
            software: "test".into(),
        };
        let mut w = Writer::new(&[id.to_public()], &meta).unwrap();
        let event = EventCounter::new(sid).next(
            1,
            SessionEvent::MediaKey {
                key: signer.public_key(),
            },
        );
        let event = SignedEvent::sign(agent, &mut OsRng, &event).unwrap();
        w.push(0, Record::Agent(&Message::SessionEvent(event)))
            .unwrap();
        let mut msgs = vec![Message::VideoConfig {
            codec: VideoCodec::Av1,
            width: 64,
            height: 48,
        }];
        msgs.extend((0..5u64).map(|seq| Message::VideoPacket {
            seq,
            capture_us: seq,
            keyframe: seq == 0,
            data: vec![seq as u8; 100],
        }));
        for (i, m) in msgs.iter().enumerate() {
            signer.sent(m);
            w.push(i as u64 * 1000, Record::Agent(m)).unwrap();
        }
        let ev = InputEvent::Text { text: "hi".into() };
        w.push(7000, Record::Input(&ev)).unwrap();
        let cp = signer.checkpoint(8, true).unwrap();
        w.push(8000, Record::Agent(&Message::MediaCheckpoint(cp)))
            .unwrap();
        let mut bytes = w.take_ciphertext();
        bytes.extend(w.finish("ended by operator").unwrap());
        let file = dir.join("s.slrec");
        std::fs::write(&file, bytes).unwrap();
        (file, key)
    }

    #[test]
    fn export_and_verify_from_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let (file, identity) = recording(dir.path());
        let play = |verify: bool, expect_agent| PlayArgs {
            file: file.clone(),
            identity: identity.clone(),
            verify,
            expect_agent,
            json: true,
            seek: None,
            paused: false,
        };
        assert!(play(true, None).run_ok());
        let agent = crate::testkeys::keys().agent.public().fingerprint();
        assert!(play(true, Some(agent)).run_ok());
        assert!(!play(true, Some(Fingerprint([1; 32]))).run_ok());
        // Playing opens the window (tested in `playback` and tests/playback_gui.rs); a key that
        // does not open the recording fails before any window.
        let other = dir.path().join("other.txt");
        std::fs::write(&other, Identity::generate().to_string().expose_secret()).unwrap();
        let err = super::play(&PlayArgs {
            identity: other,
            ..play(false, None)
        })
        .unwrap_err();
        assert!(err.to_string().contains("cannot decrypt"), "{err}");

        let export_to = |out: &str| ExportArgs {
            file: file.clone(),
            identity: identity.clone(),
            out: dir.path().join(out),
            input_log: Some(dir.path().join("input.jsonl")),
        };
        super::export(&export_to("out.ivf")).unwrap();
        assert!(std::fs::read(dir.path().join("out.ivf"))
            .unwrap()
            .starts_with(b"DKIF"));
        let log = std::fs::read_to_string(dir.path().join("input.jsonl")).unwrap();
        assert_eq!(log.lines().count(), 1);
        let err = super::export(&export_to("out.mp4")).unwrap_err();
        assert!(err.to_string().contains(".webm or .ivf"), "{err}");
        // Not AV1: the WebM muxer needs a sequence header, and says so.
        let err = super::export(&export_to("out.webm")).unwrap_err();
        assert!(err.to_string().contains("AV1"), "{err}");
    }

    impl PlayArgs {
        fn run_ok(&self) -> bool {
            super::play(self).unwrap()
        }
    }
}
