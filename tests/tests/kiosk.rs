//! Integration, LAN-only kiosk mode: an unattended agent listening on loopback serves the
//! headless viewer directly (no relay in the session), refuses operators whose key is not
//! authorised or whose certificate expired, refuses peers outside its allowed ranges before
//! any handshake, opens no outbound connection, and stops cleanly on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::OsRng;
use sightline_core::authority::Authority;
use sightline_core::cert::{CertBody, OperatorCert, Permissions};
use sightline_core::e2e::{E2eConfig, Trust};
use sightline_core::frame;
use sightline_core::identity::{PrivateIdentity, CA_BITS, MIN_PEER_BITS};
use sightline_core::lan::{AgentHello, OperatorHello};
use sightline_net::stream::FramedStream;
use sightline_net::{clock, session};
use sightline_tests::*;
use std::io::Read;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// TCP sockets of process `pid` as `(local, peer)` address pairs (from `ss`).
fn tcp_sockets(pid: u32) -> Vec<(String, String)> {
    let out = Command::new("ss").args(["-Htanp"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[3].to_string(), cols[4].to_string())
        })
        .collect()
}

#[test]
fn a_kiosk_serves_a_direct_viewer_without_a_relay_and_without_outbound_connections() {
    let x = Xvfb::start(800, 600);
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let vdir = tmp.path().join("viewer");
    let (mut agent, addr) = lan_kiosk(
        &tmp.path().join("kiosk"),
        &x.display,
        &["--relay-key", &relay.fingerprint.clone()],
    );
    let port = addr.rsplit(':').next().unwrap().to_string();

    // The first direct connection logs in to the relay for a certificate, then connects
    // straight to the kiosk (whose key it accepts on first use: see known_hosts.rs).
    let mut viewer = direct_session(
        Some(&relay),
        &vdir,
        &addr,
        &["--accept-new-agent-key", "--frames", "1"],
    );
    let connected = agent.wait_event("connected", SLOW);
    assert_eq!(connected["peer"]["operator"], "alice");
    let sharing = agent.wait_event("sharing", T);
    assert_eq!(
        sharing["indicator"], true,
        "the banner shows on an unattended kiosk too"
    );
    viewer.wait_event("frame", T);
    // During the session the kiosk's only TCP sockets are on its own port: no outbound
    // connection of any kind (its X connection is a Unix socket).
    let sockets = tcp_sockets(agent.pid());
    assert!(!sockets.is_empty());
    for (local, peer) in &sockets {
        assert!(
            local.ends_with(&format!(":{port}")),
            "outbound or foreign socket {local} -> {peer}: {sockets:?}"
        );
    }
    assert_eq!(viewer.wait_event("closed", T)["normal"], true);
    assert!(viewer.wait_exit(T).success());
    let summary = agent.wait_event("summary", T);
    assert_eq!(summary["used"], serde_json::json!(["view"]));
    assert!(
        !agent.events().iter().any(|e| e == "consent_request"),
        "no consent question on a kiosk"
    );

    // The relay is gone: a stored, valid certificate is enough.
    assert!(relay.stop().success());
    let mut viewer = direct_session(None, &vdir, &addr, &["--frames", "1"]);
    viewer.wait_event("frame", T);
    assert!(viewer.wait_exit(T).success());
    agent.wait_event("summary", T);

    // A kiosk that accepts only another operator's key refuses this one: the viewer says so
    // and exits with the "refused" status (4), not the failure one (1).
    let other_key = "ab".repeat(32);
    let (mut strict, strict_addr) = lan_kiosk(
        &tmp.path().join("kiosk2"),
        &x.display,
        &[
            "--relay-key",
            &relay.fingerprint.clone(),
            "--operator-key",
            &other_key,
        ],
    );
    let mut refused = direct_session(None, &vdir, &strict_addr, &[]);
    let err = refused.wait_event("error", T);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("the agent refused this operator"),
        "{err}"
    );
    assert_eq!(refused.wait_exit(T).code(), Some(4));
    strict.wait_event("refused", T);

    // SIGTERM stops the kiosk cleanly; the log recorded every session.
    agent.signal("TERM");
    agent.wait_event("stopped", T);
    assert!(agent.wait_exit(T).success());
    eventually("both sessions in the kiosk's log", T, || {
        agent.stderr().matches("direct session started").count() == 2
    });
}

/// Connects to a kiosk as an operator with `key` and `cert` (issued under `authority`);
/// returns the handshake's result.
fn direct_handshake(
    addr: &str,
    authority: &Authority,
    key: &PrivateIdentity,
    cert: OperatorCert,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut stream = FramedStream::new(tcp);
        let hello = stream.read_message().await.unwrap().unwrap();
        let hello = AgentHello::from_bytes(&hello).unwrap();
        let answer = OperatorHello::new(Some(authority.clone()), None, &hello);
        stream
            .write_all(&frame::encode(&answer.to_bytes().unwrap()).unwrap())
            .await
            .unwrap();
        let cfg = E2eConfig {
            session_id: hello.session_id,
            seed: clock::seed(),
            trust: Trust::AnyAgentKey,
            channel: Default::default(),
        };
        session::operator_handshake(&mut stream, cfg, key, cert)
            .await
            .map_err(|e| e.to_string())?;
        // The agent checks the operator's proof before it proves itself: a refused operator
        // gets no proof (the handshake above fails: the connection closes), an accepted one
        // gets the proof and then the agent's first session message.
        match tokio::time::timeout(T, stream.read_message()).await {
            Ok(Ok(Some(_))) => Ok(()),
            other => Err(format!("the agent ended the connection: {other:?}")),
        }
    })
}

fn certificate(
    ca: &PrivateIdentity,
    key: &PrivateIdentity,
    not_before: u64,
    not_after: u64,
) -> OperatorCert {
    let body = CertBody {
        serial: 1,
        operator: "mallory".into(),
        display_name: "Mallory".into(),
        organisation: "Example Help Desk".into(),
        permissions: Permissions::VIEW.union(Permissions::CONTROL),
        max_session_secs: 0,
        key: key.public().fingerprint(),
        not_before,
        not_after,
        issuer: ca.public().fingerprint(),
        recording: Default::default(),
    };
    OperatorCert::issue(ca, &body, &mut OsRng).unwrap()
}

#[test]
fn unauthorised_keys_expired_certificates_and_foreign_addresses_are_refused() {
    let x = Xvfb::start(640, 480);
    let relay = Relay::new(None);
    let tmp = tempfile::tempdir().unwrap();
    // The relay's own issuing key signs the test's certificates, as a real login would.
    let issuing = relay.issuing();
    let (ca, authority) = (issuing.key(), issuing.authority());
    let operator = PrivateIdentity::generate(&mut OsRng, MIN_PEER_BITS).unwrap();
    let other = PrivateIdentity::generate(&mut OsRng, MIN_PEER_BITS).unwrap();
    let now = sightline_net::clock::now_unix();

    // Certificates from the pinned relay, and only the listed operator key.
    let listed = operator.public().fingerprint().to_string();
    let (mut agent, addr) = lan_kiosk(
        &tmp.path().join("kiosk"),
        &x.display,
        &["--relay-key", &relay.fingerprint, "--operator-key", &listed],
    );
    // An expired certificate over the listed key.
    let expired = certificate(ca, &operator, now - 7200, now - 3600);
    let r = direct_handshake(&addr, authority, &operator, expired);
    assert!(r.is_err(), "an expired certificate was accepted");
    let refused = agent.wait_event("refused", T);
    assert!(
        refused["message"].as_str().unwrap().contains("expired"),
        "{refused}"
    );
    // A valid certificate over a key that is not listed.
    let unlisted = certificate(ca, &other, now - 60, now + 3600);
    assert!(direct_handshake(&addr, authority, &other, unlisted).is_err());
    let refused = agent.wait_event("refused", T);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("not authorised"),
        "{refused}"
    );
    // A certificate from another relay, offered with that relay's authority: the pin refuses
    // it.
    let rogue_root = PrivateIdentity::generate(&mut OsRng, CA_BITS).unwrap();
    let rogue_ca = PrivateIdentity::generate(&mut OsRng, MIN_PEER_BITS).unwrap();
    let rogue_authority = Authority::certify(
        &rogue_root,
        rogue_ca.public(),
        1,
        now - 60,
        86_400,
        &mut OsRng,
    )
    .unwrap();
    let rogue = certificate(&rogue_ca, &operator, now - 60, now + 3600);
    assert!(direct_handshake(&addr, &rogue_authority, &operator, rogue).is_err());
    let refused = agent.wait_event("refused", T);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("does not match the pinned fingerprint"),
        "{refused}"
    );
    // The right key with a valid certificate gets in.
    let good = certificate(ca, &operator, now - 60, now + 3600);
    assert_eq!(direct_handshake(&addr, authority, &operator, good), Ok(()));
    agent.wait_event("connected", T);
    agent.signal("TERM");
    assert!(agent.wait_exit(T).success());

    // Only 10.0.0.0/8 may connect: loopback is refused before the agent sends a byte.
    let (mut agent, addr) = lan_kiosk(
        &tmp.path().join("kiosk"),
        &x.display,
        &["--relay-key", &relay.fingerprint, "--allow", "10.0.0.0/8"],
    );
    let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
    tcp.set_read_timeout(Some(T)).unwrap();
    let mut buf = [0u8; 64];
    let n = tcp.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the agent sent {n} bytes to a refused peer");
    eventually("the refusal is logged", T, || {
        agent
            .stderr()
            .contains("connection refused before the handshake")
    });
    assert!(agent
        .stderr()
        .contains("127.0.0.1 is not in the allowed ranges"));
    agent.signal("TERM");
    assert!(agent.wait_exit(T).success());

    // Without anyone to trust, the agent does not start; a public range cannot be allowed.
    let (st, _, err) = run(
        Command::new(bin("agent"))
            .arg("--data-dir")
            .arg(tmp.path().join("kiosk"))
            .args(["--lan-only", "--listen", "127.0.0.1:0"]),
        None,
    );
    assert!(!st.success() && err.contains("whom to accept"), "{err}");
    let (st, _, err) = run(
        Command::new(bin("agent")).args([
            "--lan-only",
            "--relay-key",
            &relay.fingerprint,
            "--allow",
            "8.8.8.0/24",
        ]),
        None,
    );
    assert!(!st.success() && err.contains("local-network"), "{err}");
}

/// A peer that fails authentication gets nothing signed by the kiosk, and one that stalls in
/// its handshake does not hold the only session slot: the kiosk authenticates an operator
/// before it signs its own proof or takes a slot.
#[test]
fn a_failing_peer_gets_no_signature_and_a_stalled_one_no_slot() {
    use sightline_core::e2e::OperatorHandshake;
    let x = Xvfb::start(640, 480);
    let relay = Relay::new(None);
    let tmp = tempfile::tempdir().unwrap();
    let issuing = relay.issuing();
    let (ca, authority) = (issuing.key(), issuing.authority());
    let operator = PrivateIdentity::generate(&mut OsRng, MIN_PEER_BITS).unwrap();
    let stranger = PrivateIdentity::generate(&mut OsRng, MIN_PEER_BITS).unwrap();
    let now = sightline_net::clock::now_unix();
    let listed = operator.public().fingerprint().to_string();
    let (mut agent, addr) = lan_kiosk(
        &tmp.path().join("kiosk"),
        &x.display,
        &[
            "--relay-key",
            &relay.fingerprint,
            "--operator-key",
            &listed,
            "--max-sessions",
            "1",
        ],
    );
    let rt = test_runtime();
    rt.block_on(async {
        // A stranger runs the whole handshake with a valid certificate over an unlisted key:
        // after its proof, the kiosk sends nothing at all (no proof, no signature) and closes.
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut stream = FramedStream::new(tcp);
        let hello = AgentHello::from_bytes(&stream.read_message().await.unwrap().unwrap()).unwrap();
        let answer = OperatorHello::new(Some(authority.clone()), None, &hello);
        stream
            .write_all(&frame::encode(&answer.to_bytes().unwrap()).unwrap())
            .await
            .unwrap();
        let cfg = E2eConfig {
            session_id: hello.session_id,
            seed: clock::seed(),
            trust: Trust::AnyAgentKey,
            channel: Default::default(),
        };
        let (hs, m1) = OperatorHandshake::start(cfg).unwrap();
        stream.write_all(&m1).await.unwrap();
        let m2 = stream.read_message().await.unwrap().unwrap();
        let (done, m3) = hs.read_response(&m2).unwrap();
        let cert = certificate(ca, &stranger, now - 60, now + 3600);
        let (_, proof) = done.prove(&stranger, Some(cert)).unwrap();
        stream.write_all(&m3).await.unwrap();
        stream.write_all(&proof).await.unwrap();
        let after = tokio::time::timeout(T, stream.read_message())
            .await
            .unwrap();
        assert!(
            matches!(after, Ok(None) | Err(_)),
            "the kiosk answered a refused operator: {after:?}"
        );
        // Another peer connects and stalls before its handshake; the listed operator still gets
        // the only slot.
        let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut first = [0u8; 2];
        tokio::io::AsyncReadExt::read_exact(&mut stalled, &mut first)
            .await
            .unwrap();
        let good = certificate(ca, &operator, now - 60, now + 3600);
        let a = addr.clone();
        let auth = authority.clone();
        let ok = tokio::task::spawn_blocking(move || direct_handshake(&a, &auth, &operator, good))
            .await
            .unwrap();
        assert_eq!(ok, Ok(()), "the listed operator did not get the slot");
        drop(stalled);
    });
    let refused = agent.wait_event("refused", T);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("not authorised"),
        "{refused}"
    );
    agent.wait_event("connected", T);
    agent.signal("TERM");
    assert!(agent.wait_exit(T).success());
}
