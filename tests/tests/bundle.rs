//! Integration: the preconfigured agent from `relay agent-bundle`. The customer types only the
//! code; a changed copy (settings or program) refuses to start; the command line cannot change
//! whom it trusts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const NAME: &str = "Example IT Help Desk";

/// `relay agent-bundle` on `relay` into `dir/support` (the agent beside the relay binary).
fn bundle(relay: &Relay, dir: &Path, routes: &str) -> PathBuf {
    relay.bundle_agent(&dir.join("support"), routes)
}

/// The bundled agent as a customer runs it: no flags but where its key lives and JSON events
/// for the test; the code and the answer are typed.
fn customer(exe: &Path, data: &Path, display: &str, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(exe);
    cmd.arg("--data-dir")
        .arg(data)
        .arg("--json")
        .args(extra)
        .env("DISPLAY", display)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY");
    Proc::spawn("bundled agent", &mut cmd)
}

/// A whole session with the bundled agent `exe` as its customer: a viewer gets a code, the
/// customer types it and allows viewing, the viewer gets the screen, the customer ends it.
/// Returns the agent's `bundle` and `connected` events.
fn session_with(relay: &Relay, exe: &Path, dir: &Path) -> (serde_json::Value, serde_json::Value) {
    let mut viewer = relay.viewer(&dir.join("viewer"));
    let code = viewer.session_code();
    let display = relay.screen_display();
    let mut agent = customer(exe, &dir.join("agent"), &display, &[]);
    let b = agent.wait_event("bundle", SLOW);
    agent.write_line(&code);
    agent.write_line("y");
    let a = agent.wait_event("connected", SLOW);
    viewer.wait_event("connected", SLOW);
    viewer.wait_event("frame", SLOW);
    agent.write_line("e");
    agent.wait_exit(SLOW);
    (b, a)
}

#[test]
fn a_customer_with_the_bundled_agent_types_only_the_code() {
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let exe = bundle(&relay, tmp.path(), &relay.addr);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(exe.metadata().unwrap().permissions().mode() & 0o777, 0o755);

    let (b, a) = session_with(&relay, &exe, tmp.path());
    assert_eq!(b["help_desk"], NAME);
    assert_eq!(b["relay_key"], relay.fingerprint.as_str());
    assert_eq!(a["peer"]["operator"], "alice");
    // The help desk's audit log says who made the bundle and for which relay.
    let (_, audit, _) = relay.cli(&["audit", "--jsonl"], None);
    assert!(
        audit.contains("agent.bundle") && audit.contains(NAME),
        "{audit}"
    );
}

/// Runs `exe` to its end with the code on stdin; returns (success, stderr).
fn refused(exe: &Path, data: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(exe)
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .arg("123 456 7890")
        .stdin(Stdio::null())
        .env_remove("DISPLAY")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn flipped(exe: &Path, at: usize, name: &str) -> PathBuf {
    let mut bytes = std::fs::read(exe).unwrap();
    bytes[at] ^= 0x20;
    let path = exe.with_file_name(name);
    std::fs::write(&path, &bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_changed_bundle_refuses_to_start() {
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let routes = format!("tcp://{},wss://relay.example.com/sightline", relay.addr);
    let exe = bundle(&relay, tmp.path(), &routes);
    let bytes = std::fs::read(&exe).unwrap();
    let data = tmp.path().join("agent");

    // The relay address in the signed settings, pointed elsewhere by one letter.
    let at = bytes
        .windows(b"relay.example.com".len())
        .rposition(|w| w == b"relay.example.com")
        .unwrap();
    let (ok, err) = refused(&flipped(&exe, at, "relay-changed"), &data, &[]);
    assert!(!ok);
    assert!(err.contains("changed after the help desk made it"), "{err}");
    assert!(err.contains("download it again"), "{err}");

    // One byte of the program itself (in the middle of the executable).
    let (ok, err) = refused(
        &flipped(&exe, bytes.len() / 2, "program-changed"),
        &data,
        &[],
    );
    assert!(!ok);
    assert!(err.contains("this program was changed"), "{err}");

    // The intact bundle does not let the command line change whom it trusts.
    let other = "ab".repeat(32);
    let (ok, err) = refused(&exe, &data, &["--relay-key", &other]);
    assert!(!ok);
    assert!(err.contains("cannot be changed with --relay-key"), "{err}");
}

#[test]
fn agent_bundle_refuses_what_it_cannot_sign_or_a_customer_would_be_misled_by() {
    let relay = Relay::new(None);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let o = out.to_str().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--name", "IT", "--relay", "ftp://x", "--out", o],
            "--relay",
        ),
        (
            &["--name", "IT\u{1b}[2J", "--relay", "x", "--out", o],
            "control characters",
        ),
        (
            &[
                "--name",
                "IT",
                "--relay",
                "x",
                "--out",
                o,
                "--agent",
                "/etc/hostname",
            ],
            "not an executable",
        ),
    ];
    for (args, expect) in cases {
        let mut all = vec!["agent-bundle"];
        all.extend_from_slice(args);
        let (st, _, err) = relay.cli(&all, None);
        assert!(!st.success(), "{args:?} accepted");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!out.exists());
    }
    // No root key here (offline CA elsewhere): a clear error, nothing written.
    let empty = tempfile::tempdir().unwrap();
    let (st, _, err) = relay.cli(
        &[
            "agent-bundle",
            "--name",
            "IT",
            "--relay",
            "x",
            "--out",
            o,
            "--root",
        ]
        .into_iter()
        .chain([empty.path().to_str().unwrap()])
        .collect::<Vec<_>>(),
        None,
    );
    assert!(!st.success());
    assert!(err.contains("ca-key.pem"), "{err}");
}

/// `curl -s` with the test CA; returns (HTTP status, body).
fn curl(ca: &Path, url: &str, out: Option<&Path>) -> (String, Vec<u8>) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "30", "-w", "%{http_code}", "--cacert"])
        .arg(ca);
    let body_file = out.map(Path::to_path_buf).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("sightline-curl-{}", std::process::id()))
    });
    cmd.arg("-o").arg(&body_file).arg(url);
    let done = cmd.output().unwrap();
    let status = String::from_utf8_lossy(&done.stdout).into_owned();
    let body = std::fs::read(&body_file).unwrap_or_default();
    if out.is_none() {
        let _ = std::fs::remove_file(&body_file);
    }
    (status, body)
}

#[test]
fn the_relay_hands_out_the_bundled_agent_over_https_and_the_customer_connects_with_it() {
    use sightline_tests::netfw::TestPki;
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::new(&tmp.path().join("pki"), &[std::net::Ipv4Addr::LOCALHOST]);
    let support = tmp.path().join("support");
    let config = format!(
        "support_agent = {:?}\n\
         [[listener]]\naddress = \"127.0.0.1:0\"\ntransport = [\"tcp\", \"wss\"]\n\
         tls_certificate = {:?}\ntls_key = {:?}\n\
         [[listener]]\naddress = \"127.0.0.1:0\"\ntransport = \"ws\"\n",
        support.display().to_string(),
        pki.cert.display().to_string(),
        pki.key.display().to_string(),
    );
    let mut relay = Relay::new(Some(&config));
    let addrs = relay.start_listeners(2);
    let (https, plain) = (
        format!("https://{}", addrs[0]),
        format!("http://{}", addrs[1]),
    );

    // Before the help desk bundled one: nothing to hand out, and said so.
    let (st, body) = curl(&pki.ca, &format!("{https}/"), None);
    assert_eq!(st, "503", "{}", String::from_utf8_lossy(&body));

    let made = bundle(&relay, tmp.path(), &format!("tcp://{}", addrs[0]));
    assert_eq!(made, support);
    let (st, page) = curl(&pki.ca, &format!("{https}/"), None);
    let page = String::from_utf8_lossy(&page);
    assert_eq!(st, "200");
    assert!(
        page.contains("Remote support for Example IT Help Desk"),
        "{page}"
    );
    assert!(page.contains("href=\"/agent\""), "{page}");
    let downloaded = tmp.path().join("downloaded");
    let (st, _) = curl(&pki.ca, &format!("{https}/agent"), Some(&downloaded));
    assert_eq!(st, "200");
    assert!(std::fs::read(&downloaded).unwrap() == std::fs::read(&support).unwrap());
    // Not over plain HTTP, and nothing else.
    assert_eq!(curl(&pki.ca, &format!("{plain}/agent"), None).0, "403");
    assert_eq!(curl(&pki.ca, &format!("{https}/etc/passwd"), None).0, "404");

    // The customer runs what they downloaded and types only the code.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&downloaded, std::fs::Permissions::from_mode(0o755)).unwrap();
    session_with(&relay, &downloaded, tmp.path());

    // A file that is not this relay's bundle is not handed out.
    std::fs::copy(bin("agent"), &support).unwrap();
    assert_eq!(curl(&pki.ca, &format!("{https}/agent"), None).0, "503");
}
