//! Integration: a session the help desk requires recorded, through the real relay, viewer and
//! agent binaries. The customer is told; the viewer hands the encrypted recording to the relay
//! while the session runs; `relay recordings get` fetches it; Debian's `age` and the viewer
//! decrypt it; `viewer play --verify` proves it is what the agent sent; `viewer export` writes
//! WebM that ffprobe reads as AV1 at the session's size, whose last picture matches the one
//! the viewer showed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_media::convert::load_png_rgba;
use sightline_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

/// A fresh age identity from Debian's `age-keygen`: (key file, public key).
fn auditor_key(dir: &Path) -> (std::path::PathBuf, String) {
    let key = dir.join("auditor.txt");
    let (st, _out, err) = run(Command::new("age-keygen").arg("-o").arg(&key), None);
    assert!(st.success(), "age-keygen: {err}");
    let public = err
        .lines()
        .find_map(|l| l.strip_prefix("Public key: "))
        .expect("age-keygen prints the public key")
        .trim()
        .to_string();
    (key, public)
}

fn policy(recipient: &str) -> String {
    format!(
        "[recording]\nmode = \"required\"\nrecipients = [\"{recipient}\"]\ninclude_input = true\n"
    )
}

/// The relay's recordings, waiting until one is complete.
fn complete_recording(relay: &Relay) -> serde_json::Value {
    let deadline = Instant::now() + T;
    loop {
        let (st, out, err) = relay.cli(&["recordings", "list", "--json"], None);
        assert!(st.success(), "relay recordings list: {err}");
        let list: serde_json::Value = serde_json::from_str(&out).unwrap();
        if let Some(r) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["complete"] == true)
        {
            return r.clone();
        }
        assert!(Instant::now() < deadline, "no complete recording: {out}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `viewer COMMAND FILE --identity KEY EXTRA...`: status, stdout, stderr.
fn viewer_on(
    command: &str,
    file: &Path,
    key: &Path,
    extra: &[&std::ffi::OsStr],
) -> (std::process::ExitStatus, String, String) {
    run(
        Command::new(bin("viewer"))
            .arg(command)
            .arg(file)
            .arg("--identity")
            .arg(key)
            .args(extra),
        None,
    )
}

/// Peak signal-to-noise ratio of two RGBA pictures of one size, over RGB, in dB.
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let (mut sum, mut n) = (0f64, 0f64);
    for (pa, pb) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for i in 0..3 {
            let d = f64::from(pa[i]) - f64::from(pb[i]);
            sum += d * d;
            n += 1.0;
        }
    }
    if sum == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64 * 255.0 / (sum / n)).log10()
}

#[test]
fn a_required_recording_is_fetched_decrypted_verified_and_exported() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = auditor_key(tmp.path());
    let mut relay = Relay::with_policy(None, Some(&policy(&public)));
    relay.start();
    let shown = tmp.path().join("shown.png");
    let mut viewer = relay.viewer_args(
        &tmp.path().join("viewer"),
        &["--frames", "3", "--save-frame", shown.to_str().unwrap()],
    );
    let code = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let mut agent = relay.agent(&tmp.path().join("agent"), &code);
    // The customer is told before they answer, and while the screen is shared.
    let asked = agent.wait_event("consent_request", T);
    assert_eq!(asked["recording"], "required", "{asked}");
    assert!(
        asked["notice"].as_str().unwrap().contains("recorded"),
        "{asked}"
    );
    assert_eq!(agent.wait_event("sharing", T)["recording"], "required");
    assert_eq!(viewer.wait_event("recording", T)["required"], true);
    let video = viewer.wait_event("video", T);
    let (width, height) = (
        video["width"].as_u64().unwrap(),
        video["height"].as_u64().unwrap(),
    );
    // The operator ends after a few pictures: the agent closes, its last checkpoint recorded.
    viewer.wait_event("closed", T);
    assert!(viewer.wait_exit(T).success(), "{}", viewer.stderr());
    assert_eq!(agent.wait_event("closed", T)["reason"], "ended by operator");
    agent.wait_exit(T);

    // Fetched from the relay, which holds ciphertext only.
    let listed = complete_recording(&relay);
    let id = listed["session"].as_str().unwrap().to_string();
    let file = tmp.path().join("session.age");
    let (st, _, err) = relay.cli(
        &["recordings", "get", &id, "--out", file.to_str().unwrap()],
        None,
    );
    assert!(st.success(), "relay recordings get: {err}");

    // Debian's age decrypts it with the auditor's key.
    let plain = tmp.path().join("session.plain");
    let (st, _, err) = run(
        Command::new("age")
            .args(["-d", "-i"])
            .arg(&key)
            .arg("-o")
            .arg(&plain)
            .arg(&file),
        None,
    );
    assert!(st.success(), "age -d: {err}");
    assert!(std::fs::metadata(&plain).unwrap().len() > 1000);

    // The viewer proves it is what the agent sent.
    let (st, out, err) = viewer_on(
        "play",
        &file,
        &key,
        &["--verify".as_ref(), "--json".as_ref()],
    );
    assert!(st.success(), "viewer play --verify: {out} {err}");

    // Exported to WebM: AV1 at the session's size, its last picture the one the viewer showed.
    let webm = tmp.path().join("session.webm");
    let inputs = tmp.path().join("input.jsonl");
    let extra = [
        "--out".as_ref(),
        webm.as_os_str(),
        "--input-log".as_ref(),
        inputs.as_os_str(),
    ];
    let (st, out, err) = viewer_on("export", &file, &key, &extra);
    assert!(st.success(), "viewer export: {out} {err}");
    let (st, out, err) = run(
        Command::new("ffprobe")
            .args(["-v", "error", "-show_streams", "-of", "json"])
            .arg(&webm),
        None,
    );
    assert!(st.success(), "ffprobe: {err}");
    let probe: serde_json::Value = serde_json::from_str(&out).unwrap();
    let stream = &probe["streams"][0];
    assert_eq!(stream["codec_name"], "av1", "{probe}");
    assert_eq!(stream["width"].as_u64(), Some(width), "{probe}");
    assert_eq!(stream["height"].as_u64(), Some(height), "{probe}");
    let last = tmp.path().join("last.png");
    let (st, _, err) = run(
        Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&webm)
            .args([
                "-vf",
                "scale=in_color_matrix=bt709:in_range=limited,format=rgba",
                "-update",
                "1",
            ])
            .arg(&last),
        None,
    );
    assert!(st.success(), "ffmpeg: {err}");
    let (a, aw, ah) = load_png_rgba(&shown).unwrap();
    let (b, bw, bh) = load_png_rgba(&last).unwrap();
    assert_eq!((aw, ah), (bw, bh));
    let db = psnr(&a, &b);
    assert!(
        db >= 40.0,
        "the exported picture differs from the one shown: {db:.1} dB"
    );
}

/// The frames of a video file, as ffprobe counts them.
fn frames_in(file: &Path) -> u64 {
    let (st, out, err) = run(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-count_frames",
                "-show_entries",
                "stream=nb_read_frames",
            ])
            .args(["-of", "csv=p=0"])
            .arg(file),
        None,
    );
    assert!(st.success(), "ffprobe: {err}");
    out.trim().parse().unwrap()
}

#[test]
fn a_viewer_killed_on_a_quiet_screen_loses_at_most_the_last_seconds_of_the_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = auditor_key(tmp.path());
    let mut relay = Relay::with_policy(None, Some(&policy(&public)));
    relay.start();
    let mut viewer = relay.viewer_args(&tmp.path().join("viewer"), &[]);
    let code = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let mut agent = relay.agent(&tmp.path().join("agent"), &code);
    agent.wait_event("sharing", T);
    viewer.wait_event("frame", T);
    // A still screen: the first pictures, the events and the pointer are far less than one of
    // age's 64 KiB chunks, which age would hold back until it is full. After 5 s the viewer
    // pads it out and sends it; then the operator's viewer is killed.
    std::thread::sleep(Duration::from_secs(8));
    viewer.signal("KILL");
    // The relay ends the session (the upload stopped) and keeps what it has.
    let closed = agent.wait_event("closed", T);
    assert_eq!(closed["normal"], false, "{closed}");
    let (st, out, err) = relay.cli(&["recordings", "list", "--json"], None);
    assert!(st.success(), "relay recordings list: {err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let recording = &list[0];
    assert_eq!(recording["complete"], false, "{out}");
    let file = tmp.path().join("cut.age");
    let id = recording["session"].as_str().unwrap();
    let (st, _, err) = relay.cli(
        &["recordings", "get", id, "--out", file.to_str().unwrap()],
        None,
    );
    assert!(st.success(), "relay recordings get: {err}");
    // What arrived plays: the pictures the operator saw are in it.
    let ivf = tmp.path().join("cut.ivf");
    let (st, out, err) = viewer_on("export", &file, &key, &["--out".as_ref(), ivf.as_os_str()]);
    assert!(
        st.success(),
        "viewer export of a cut recording: {out} {err}"
    );
    assert!(frames_in(&ivf) >= 1, "{out}");
    // And it does not pass for complete.
    let (st, out, _) = viewer_on("play", &file, &key, &["--verify".as_ref()]);
    assert!(!st.success(), "a cut recording verified: {out}");
}
