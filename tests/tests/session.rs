//! Integration: the real relay, viewer and agent binaries on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_tests::*;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// Fingerprint of a PKCS#8 PEM private key computed by OpenSSL: SHA-256 of the public key's
/// SubjectPublicKeyInfo DER. Proves the key file is standard and the fingerprints agree.
fn openssl_fingerprint(key: &std::path::Path) -> String {
    let out = Command::new("openssl")
        .args(["pkey", "-in"])
        .arg(key)
        .args(["-pubout", "-outform", "DER"])
        .output()
        .expect("openssl is installed by ./dev");
    assert!(
        out.status.success(),
        "openssl pkey cannot read {}: {}",
        key.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = Command::new("openssl")
        .args(["dgst", "-sha256", "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&out.stdout)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&digest.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn operator_and_customer_meet_end_to_end_through_the_relay() {
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let (vdir, adir) = (tmp.path().join("viewer"), tmp.path().join("agent"));

    let mut viewer = relay.viewer(&vdir);
    let code = viewer.wait_event("code", SLOW);
    let digits = code["code"].as_str().unwrap().to_string();
    assert_eq!(digits.len(), 10);
    assert!(digits.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(
        code["grouped"].as_str().unwrap(),
        format!("{} {} {}", &digits[..3], &digits[3..6], &digits[6..])
    );

    let mut agent = relay.agent(&adir, &digits);
    let a = agent.wait_event("connected", SLOW);
    let v = viewer.wait_event("connected", SLOW);

    // Both sides show the same short authentication string.
    assert_eq!(a["sas"], v["sas"]);
    assert_eq!(a["sas"].as_str().unwrap().len(), 9);
    // The agent sees the operator's verified identity from the certificate.
    assert_eq!(a["peer"]["operator"], "alice");
    assert_eq!(a["peer"]["display_name"], "Alice Example");
    assert_eq!(a["peer"]["organisation"], "Example Help Desk");
    assert!(a["peer"]["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "view"));

    // Keys are PKCS#8 PEM with mode 0600, readable by OpenSSL, and the fingerprints each side
    // shows are those of the other side's key file.
    let vkey = vdir.join("identity-key.pem");
    let akey = adir.join("identity-key.pem");
    assert_eq!(mode(&vkey), 0o600);
    assert_eq!(mode(&akey), 0o600);
    assert_eq!(mode(&relay.data_dir().join("ca-key.pem")), 0o600);
    assert_eq!(
        v["peer"]["fingerprint"].as_str().unwrap(),
        openssl_fingerprint(&akey)
    );
    assert_eq!(
        a["peer"]["fingerprint"].as_str().unwrap(),
        openssl_fingerprint(&vkey)
    );
    assert_eq!(
        relay.fingerprint,
        openssl_fingerprint(&relay.data_dir().join("ca-key.pem"))
    );

    // The session holds; the customer ends it and both sides report an explicit close.
    std::thread::sleep(Duration::from_millis(500));
    agent.signal("TERM");
    let ac = agent.wait_event("closed", T);
    assert_eq!(ac["reason"], "ended by customer");
    assert_eq!(ac["normal"], true);
    assert!(agent.wait_exit(T).success());
    let vc = viewer.wait_event("closed", T);
    assert_eq!(vc["reason"], "ended by customer");
    assert_eq!(vc["normal"], true);
    assert_eq!(viewer.wait_exit(T).code(), Some(0));

    // Nothing secret in the relay's log.
    let log = relay.log();
    assert!(!log.contains(PASSWORD));
    assert!(!log.contains(&digits));
}

#[test]
fn a_code_works_once_and_a_second_join_fails() {
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut viewer = relay.viewer(&tmp.path().join("viewer"));
    let digits = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let mut agent = relay.agent(&tmp.path().join("agent"), &digits);
    agent.wait_event("connected", SLOW);

    let mut second = relay.agent(&tmp.path().join("agent2"), &digits);
    let err = second.wait_event("error", SLOW);
    assert_eq!(err["message"], "code not valid");
    assert!(!second.wait_exit(T).success());
    assert!(second.stderr().contains("agent: error: code not valid"));

    // The same customer retrying the code that paired them is refused as well.
    let mut again = relay.agent(&tmp.path().join("agent"), &digits);
    assert_eq!(again.wait_event("error", SLOW)["message"], "code not valid");

    // The first session is unaffected: the operator ends it normally.
    viewer.signal("INT");
    assert_eq!(agent.wait_event("closed", T)["reason"], "ended by operator");
    assert!(viewer.wait_exit(T).success());
}

#[test]
fn an_expired_code_is_not_valid() {
    let mut relay = Relay::new(Some("code_ttl_secs = 2\n"));
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut viewer = relay.viewer(&tmp.path().join("viewer"));
    let digits = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    // The operator is told that the code expired.
    let err = viewer.wait_event("error", T);
    assert!(
        err["message"].as_str().unwrap().contains("expired"),
        "{err}"
    );
    assert_eq!(viewer.wait_exit(T).code(), Some(1), "a failure");
    let mut agent = relay.agent(&tmp.path().join("agent"), &digits);
    assert_eq!(agent.wait_event("error", SLOW)["message"], "code not valid");
    assert!(!agent.wait_exit(T).success());
}

#[test]
fn failed_joins_are_rate_limited_and_the_limit_survives_a_restart() {
    let config = "[join_limit.per_address]\nfree_failures = 2\nbase_delay_secs = 300\nmax_delay_secs = 900\nforget_after_secs = 3600\n";
    let mut relay = Relay::new(Some(config));
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let adir = tmp.path().join("agent");
    for _ in 0..2 {
        let mut a = relay.agent(&adir, "000 000 0001");
        assert_eq!(a.wait_event("error", SLOW)["message"], "code not valid");
    }
    let mut a = relay.agent(&adir, "000 000 0002");
    let err = a.wait_event("error", SLOW);
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains("too many"), "{msg}");

    // A real, valid code is refused too while the address is blocked (no oracle).
    let mut viewer = relay.viewer(&tmp.path().join("viewer"));
    let digits = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let mut a = relay.agent(&adir, &digits);
    assert!(a.wait_event("error", SLOW)["message"]
        .as_str()
        .unwrap()
        .contains("too many"));
    drop(viewer);

    // Restart the relay: the counters are persisted.
    assert!(relay.stop().success());
    relay.start();
    let mut a = relay.agent(&adir, "000 000 0003");
    assert!(a.wait_event("error", SLOW)["message"]
        .as_str()
        .unwrap()
        .contains("too many"));
}

#[test]
fn a_relay_with_another_key_is_refused_before_any_secret_is_sent() {
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let wrong = "ab".repeat(32);
    let mut viewer = relay.viewer_with(&tmp.path().join("viewer"), &wrong, PASSWORD);
    let err = viewer.wait_event("error", SLOW);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("does not match the pinned fingerprint"),
        "{err}"
    );
    assert!(!viewer.wait_exit(T).success());
    let mut agent = relay.agent_with(&tmp.path().join("agent"), &wrong, "123 456 7890");
    assert!(agent.wait_event("error", SLOW)["message"]
        .as_str()
        .unwrap()
        .contains("does not match"));
    assert!(!agent.wait_exit(T).success());
    // The relay saw no login and no join attempt: the clients stopped after its first message.
    std::thread::sleep(Duration::from_millis(300));
    let log = relay.log();
    assert!(!log.contains("login"), "relay log mentions a login:\n{log}");
    assert!(!log.contains("join"), "relay log mentions a join:\n{log}");
}

#[test]
fn wrong_password_is_refused() {
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut viewer = relay.viewer_with(
        &tmp.path().join("viewer"),
        &relay.fingerprint.clone(),
        "wrong password here",
    );
    let err = viewer.wait_event("error", SLOW);
    assert!(
        err["message"].as_str().unwrap().starts_with("login failed"),
        "{err}"
    );
    assert!(!viewer.wait_exit(T).success());
}

#[test]
fn a_lost_connection_is_reported_as_an_abnormal_end() {
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut viewer = relay.viewer(&tmp.path().join("viewer"));
    let digits = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let mut agent = relay.agent(&tmp.path().join("agent"), &digits);
    agent.wait_event("connected", SLOW);
    viewer.wait_event("connected", SLOW);
    agent.signal("KILL");
    // The viewer waits for the agent to come back (tests/tests/resume.rs), then gives up when
    // the relay's 30 s resume window has passed.
    viewer.wait_event("reconnecting", T);
    let closed = viewer.wait_event("closed", SLOW);
    assert_eq!(closed["normal"], false);
    let reason = closed["reason"].as_str().unwrap();
    assert!(reason.contains("without a close message"), "{closed}");
    assert!(reason.contains("connection lost"), "{closed}");
    let st = viewer.wait_exit(T);
    assert_eq!(
        st.code(),
        Some(3),
        "an abnormal end has its own exit status"
    );
    assert!(viewer.stderr().contains("ended abnormally"));
}

#[test]
fn key_files_with_loose_permissions_or_bad_contents_are_refused_not_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let adir = tmp.path().join("agent");
    std::fs::create_dir_all(&adir).unwrap();
    let key = adir.join("identity-key.pem");
    std::fs::write(&key, "garbage").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut a = relay.agent(&adir, "123 456 7890");
    assert!(a.wait_event("error", SLOW)["message"]
        .as_str()
        .unwrap()
        .contains("too open"));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut a = relay.agent(&adir, "123 456 7890");
    assert!(a.wait_event("error", SLOW)["message"]
        .as_str()
        .unwrap()
        .contains("not a usable PKCS#8"));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "garbage");

    // The relay's CA key is checked the same way.
    let ca = relay.data_dir().join("ca-key.pem");
    std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (st, _, err) = run(
        Command::new(bin("relay"))
            .arg("--data-dir")
            .arg(relay.data_dir())
            .arg("fingerprint"),
        None,
    );
    assert!(!st.success());
    assert!(err.contains("too open"), "{err}");
}

#[test]
fn a_session_ends_when_the_operator_certificate_expires() {
    // Certificates valid 30 s: long enough to log in, pair and share; the session must not
    // outlive it, although the session limit (8 h by default) is far away.
    let mut relay = Relay::new(Some("certificate_validity_secs = 30\n"));
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut viewer = relay.viewer(&tmp.path().join("viewer"));
    let expires = viewer.wait_event("login", SLOW)["certificate_expires"]
        .as_u64()
        .unwrap();
    let digits = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let mut agent = relay.agent(&tmp.path().join("agent"), &digits);
    agent.wait_event("sharing", SLOW);
    let closed = agent.wait_event("closed", T);
    let ended = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(closed["reason"], "operator certificate expired", "{closed}");
    assert!(
        ended + 1 >= expires,
        "ended at {ended}, the certificate expired at {expires}"
    );
    let vc = viewer.wait_event("closed", T);
    assert_eq!(vc["reason"], "operator certificate expired");
    assert_eq!(vc["normal"], true);
    assert!(agent.wait_exit(T).success());
}
