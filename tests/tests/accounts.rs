//! Integration, accounts and access: the `relay user` commands with the policy file, two-factor
//! login through the real viewer (codes from `oathtool`, as an authenticator app would make
//! them), disabling an account mid-session, LDAP operators against a real slapd, a view-only
//! operator whose modified viewer sends input anyway, and the session time limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_core::messages::{CloseReason, InputEvent, Message, MouseButton};
use sightline_net::session::{self, AppChannels};
use sightline_tests::slapd::{self, Slapd};
use sightline_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn relay_user_commands_apply_the_policy_and_keep_an_audit_trail() {
    // A help desk that also allows the clipboard, with a history of 2 passwords.
    let relay = Relay::with_policy(
        None,
        Some("[permissions]\nallow = [\"view\", \"control\", \"clipboard\"]\n[password]\nhistory = 2\n"),
    );
    let add = |name: &str, password: &str, extra: &[&str]| {
        let mut args = vec!["user", "add", name, "--password-stdin"];
        args.extend_from_slice(extra);
        relay.cli(&args, Some(&format!("{password}\n")))
    };
    // Each password rule says which rule failed, and nothing is stored.
    for (password, rule) in [
        ("short pw", "at least 12 characters"),
        ("password1234", "commonly used"),
        ("Robert.Example", "user name"),
    ] {
        let (st, _, err) = add("robert.example", password, &[]);
        assert!(!st.success());
        assert!(err.contains(rule), "{password:?}: {err}");
    }
    let (st, _, err) = add("bob", "bob's long password", &["--no-2fa"]);
    assert!(
        !st.success() && err.contains("requires two-factor"),
        "{err}"
    );
    let (st, out, _) = relay.cli(&["user", "list", "--json"], None);
    assert!(st.success());
    assert_eq!(json(&out).as_array().unwrap().len(), 1, "only alice: {out}");

    // Enrolment for people: a QR code, the otpauth URI and the recovery codes.
    let (st, out, err) = add(
        "bob",
        "bob's long password",
        &["--display-name", "Bob Jones"],
    );
    assert!(st.success(), "{err}");
    assert!(out.contains("otpauth://totp/Sightline:bob?"), "{out}");
    assert!(out.contains('▀') || out.contains('▄'), "a QR code: {out}");
    assert!(out.contains("Recovery codes"), "{out}");
    // The secret printed works in an independent authenticator.
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .unwrap()
        .trim();
    assert_eq!(oathtool_code(secret, 1_000_000_000).len(), 6);
    // Neither the secret in clear form nor a recovery code is in the log-like outputs below,
    // and the database stores recovery codes only hashed.
    let code = out
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 19 && l.matches('-').count() == 3)
        .unwrap()
        .to_string();
    let db = std::fs::read(relay.data_dir().join("relay.db")).unwrap();
    assert!(
        !db.windows(code.len()).any(|w| w == code.as_bytes()),
        "a recovery code is stored in clear"
    );

    let show = |name: &str| {
        let (st, out, err) = relay.cli(&["user", "show", name, "--json"], None);
        assert!(st.success(), "{err}");
        json(&out)
    };
    let bob = show("bob");
    assert_eq!(bob["two_factor"], true);
    assert_eq!(bob["recovery_codes_left"], 10);
    assert_eq!(
        bob["effective_permissions"],
        serde_json::json!(["view", "control", "clipboard"])
    );
    assert!(
        !bob.to_string().contains(secret),
        "show must not reveal the secret"
    );

    // Narrow bob to view-only with a 30-minute limit.
    let (st, _, err) = relay.cli(
        &[
            "user",
            "set",
            "bob",
            "--permissions",
            "view",
            "--session-limit",
            "30",
            "--role",
            "admin",
        ],
        None,
    );
    assert!(st.success(), "{err}");
    let bob = show("bob");
    assert_eq!(bob["effective_permissions"], serde_json::json!(["view"]));
    assert_eq!(bob["effective_session_limit_secs"], 1800);
    assert_eq!(bob["role"], "admin");
    let (_, text, _) = relay.cli(&["user", "show", "bob"], None);
    assert!(text.contains("may do          view\n"), "{text}");

    // Password changes: the policy and the history apply.
    let passwd = |pw: &str| {
        relay.cli(
            &["user", "passwd", "bob", "--password-stdin"],
            Some(&format!("{pw}\n")),
        )
    };
    let (st, _, err) = passwd("bob's long password");
    assert!(!st.success() && err.contains("used recently"), "{err}");
    let (st, _, err) = passwd("qwerty123456");
    assert!(!st.success() && err.contains("commonly used"), "{err}");
    assert!(passwd("bob's second password").0.success());
    assert!(passwd("bob's third password!").0.success());
    assert!(
        passwd("bob's long password").0.success(),
        "out of a history of 2"
    );

    // Disable, enable, reset the authenticator, remove.
    assert!(relay.cli(&["user", "disable", "bob"], None).0.success());
    let (_, out, _) = relay.cli(&["user", "list"], None);
    assert!(out.contains("(disabled)"), "{out}");
    assert!(relay.cli(&["user", "enable", "bob"], None).0.success());
    let (st, out, err) = relay.cli(&["user", "reset-2fa", "bob", "--json"], None);
    assert!(st.success(), "{err}");
    let new_secret = json(out.lines().last().unwrap())["two_factor"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_secret, secret);
    let (st, _, err) = relay.cli(&["user", "disable", "nobody"], None);
    assert!(!st.success() && err.contains("no user named"), "{err}");

    let (st, out, _) = relay.cli(&["audit", "--json"], None);
    assert!(st.success());
    let actions: Vec<String> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"] == "bob")
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions,
        [
            "user.add",
            "user.set",
            "user.passwd",
            "user.passwd",
            "user.passwd",
            "user.disable",
            "user.enable",
            "user.reset-2fa"
        ]
    );
    assert!(!out.contains(&new_secret));
    assert!(relay.cli(&["user", "remove", "bob"], None).0.success());
}

/// `viewer session` for `user` with the two stdin lines, JSON events.
fn viewer_as(
    relay: &Relay,
    dir: &Path,
    user: &str,
    password: &str,
    code: &str,
    extra: &[&str],
) -> Proc {
    let mut p = Proc::spawn(
        "viewer",
        Command::new(bin("viewer"))
            .arg("--data-dir")
            .arg(dir)
            .args([
                "session",
                "--relay",
                &relay.addr,
                "--relay-key",
                &relay.fingerprint,
                "--user",
                user,
                "--password-stdin",
                "--json",
            ])
            .args(extra),
    );
    p.send_lines(&[password, code]);
    p
}

#[test]
fn login_needs_the_second_factor_and_disabling_stops_new_sessions_at_once() {
    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let vdir = tmp.path().join("viewer");
    // No code, or a wrong one: the same refusal as a wrong password.
    for code in ["", "000000"] {
        let mut v = viewer_as(&relay, &vdir, "alice", PASSWORD, code, &[]);
        let err = v.wait_event("error", SLOW);
        assert!(
            err["message"].as_str().unwrap().contains("login failed"),
            "{err}"
        );
        assert!(!v.wait_exit(T).success());
    }
    // A recovery code works once.
    let recovery = relay.authenticator("alice").recovery_codes[0].clone();
    let mut v = viewer_as(&relay, &vdir, "alice", PASSWORD, &recovery, &[]);
    let login = v.wait_event("login", SLOW);
    assert_eq!(login["permissions"], serde_json::json!(["view", "control"]));
    assert_eq!(login["max_session_secs"], 8 * 3600);
    drop(v);
    let mut v = viewer_as(&relay, &vdir, "alice", PASSWORD, &recovery, &[]);
    assert!(v.wait_event("error", SLOW)["message"]
        .as_str()
        .unwrap()
        .contains("login failed"));

    // The authenticator's code: logged in, code handed out; then the account is disabled
    // while the code waits for the customer.
    let mut viewer = relay.viewer(&vdir);
    let digits = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _, err) = relay.cli(&["user", "disable", "alice"], None);
    assert!(st.success(), "{err}");
    let mut agent = relay.agent(&tmp.path().join("agent"), &digits);
    assert_eq!(agent.wait_event("error", SLOW)["message"], "code not valid");
    let err = viewer.wait_event("error", T);
    assert!(
        err["message"].as_str().unwrap().contains("disabled"),
        "{err}"
    );
    // And no new login either.
    let mut v = relay.viewer(&vdir);
    assert!(v.wait_event("error", SLOW)["message"]
        .as_str()
        .unwrap()
        .contains("login failed"));
    // The relay's log reaches the test through a pipe: wait for the line.
    eventually("the refusal in the relay's log", T, || {
        relay.log().contains("account disabled")
    });
    let log = relay.log();
    assert!(
        !log.contains(PASSWORD) && !log.contains(&recovery),
        "secrets in the log"
    );
}

#[test]
fn ldap_operators_use_the_directory_password_and_the_relays_totp() {
    let directory = Slapd::start();
    let config = directory.ldap_toml();
    let mut relay = Relay::with_policy(Some(&config), None);
    // bob is in the directory's admins group, carol in no group.
    relay.add_user_with("bob", "", &["--ldap"]);
    relay.add_user_with("carol", "", &["--ldap"]);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let vdir = tmp.path().join("viewer");

    let code = relay.totp("bob");
    let mut v = viewer_as(&relay, &vdir, "bob", slapd::BOB.password, &code, &[]);
    let login = v.wait_event("login", SLOW);
    assert_eq!(login["operator"], "bob");
    v.wait_event("code", T);
    drop(v);
    eventually("bob's admin role in the relay's log", T, || {
        relay.log().contains("role=admin")
    });

    // The relay's password for bob does not exist; the directory's wrong password fails; the
    // directory's password without the relay's TOTP fails.
    let code = relay.totp("bob");
    let mut v = viewer_as(&relay, &vdir, "bob", "not bob's password", &code, &[]);
    assert!(v.wait_event("error", SLOW)["message"]
        .as_str()
        .unwrap()
        .contains("login failed"));
    let mut v = viewer_as(&relay, &vdir, "bob", slapd::BOB.password, "", &[]);
    assert!(v.wait_event("error", SLOW)["message"]
        .as_str()
        .unwrap()
        .contains("login failed"));
    // carol's password is right, but she is not in the operators' group.
    let code = relay.totp("carol");
    let mut v = viewer_as(&relay, &vdir, "carol", slapd::CAROL.password, &code, &[]);
    assert!(v.wait_event("error", SLOW)["message"]
        .as_str()
        .unwrap()
        .contains("login failed"));
    eventually("carol's refusal in the relay's log", T, || {
        relay.log().contains("not in an allowed group")
    });

    // The directory goes away: a clear error, no crash, not counted as a failure, and local
    // accounts still log in.
    drop(directory);
    let code = relay.totp("bob");
    let mut v = viewer_as(&relay, &vdir, "bob", slapd::BOB.password, &code, &[]);
    let err = v.wait_event("error", SLOW);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("cannot reach its sign-in directory"),
        "{err}"
    );
    let mut v = relay.viewer(&vdir);
    v.wait_event("code", SLOW);
    assert!(
        !relay.log().contains(slapd::BOB.password),
        "a password in the log"
    );
}

#[test]
fn a_view_only_operators_crafted_input_never_reaches_the_agents_injector() {
    let mut x = Xvfb::start(1024, 768);
    let tmp = tempfile::tempdir().unwrap();
    let typed = tmp.path().join("typed.txt");
    x.typing_target(&typed);
    // Park the pointer away from where the operator will aim.
    x.run("xdotool", &["mousemove", "700", "600"]);
    let mut relay = Relay::new(None);
    assert!(relay
        .cli(&["user", "set", "alice", "--permissions", "view"], None)
        .0
        .success());
    relay.start();

    // The real viewer hides what it may not do: it refuses an input script outright.
    let script = tmp.path().join("input.txt");
    std::fs::write(&script, "move 0.2 0.2\ntype nope\n").unwrap();
    let mut v = relay.viewer_args(
        &tmp.path().join("viewer"),
        &["--send-input", &script.to_string_lossy()],
    );
    let err = v.wait_event("error", SLOW);
    assert!(
        err["message"].as_str().unwrap().contains("view only"),
        "{err}"
    );

    // A modified viewer: the real protocol, certificate and session, sending input anyway.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let agent_dir = tmp.path().join("agent");
    let (agent_connected, agent_log) = rt.block_on(async {
        let (mut stream, mut session, mut agent) = modified_viewer(&relay, |digits| {
            relay.agent_on(&agent_dir, &relay.fingerprint, digits, Some(&x.display))
        })
        .await;
        let connected = tokio::task::spawn_blocking(move || {
            let c = agent.wait_event("connected", SLOW);
            (c, agent)
        });
        let (app, to_agent, _from_agent) = AppChannels::pair(64);
        let send = async move {
            let crafted = [
                InputEvent::PointerMove { x: 0.2, y: 0.2 },
                InputEvent::Button { button: MouseButton::Left, pressed: true },
                InputEvent::Button { button: MouseButton::Left, pressed: false },
                InputEvent::Text { text: "crafted".into() },
                InputEvent::Key { key: "KeyX".into(), pressed: true },
                InputEvent::Key { key: "KeyX".into(), pressed: false },
                InputEvent::Key { key: "Enter".into(), pressed: true },
                InputEvent::Key { key: "Enter".into(), pressed: false },
            ];
            for _ in 0..20 {
                for ev in crafted.iter().cloned() {
                    to_agent.send(Message::Input(ev)).await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_millis(1500)).await;
            to_agent
                .send(Message::Close { reason: CloseReason::EndedByOperator })
                .await
                .unwrap();
            // Keep the sender alive until the pump has sent the close.
            std::future::pending::<()>().await;
        };
        let hello = Message::Hello { software: "modified-viewer".into(), capabilities: vec![] };
        let end = tokio::select! {
            end = session::run(&mut stream, &mut session, hello, std::future::pending(), app) => end,
            () = send => unreachable!(),
        };
        assert!(end.is_normal(), "{end:?}");
        let (connected, mut agent) = connected.await.unwrap();
        agent.wait_event("closed", T);
        agent.wait_exit(T);
        (connected, agent.stderr())
    });
    assert_eq!(
        agent_connected["peer"]["permissions"],
        serde_json::json!(["view"]),
        "{agent_connected}"
    );
    // Nothing was typed, the pointer did not move, and the agent logged the drops.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(std::fs::read_to_string(&typed).unwrap_or_default(), "");
    let loc = x.run("xdotool", &["getmouselocation"]);
    assert!(loc.starts_with("x:700 y:600"), "the pointer moved: {loc}");
    assert!(
        agent_log.contains("input from an operator without the control permission dropped"),
        "{agent_log}"
    );
}

#[test]
fn the_agent_ends_the_session_at_the_operators_time_limit() {
    let mut relay = Relay::new(None);
    assert!(relay
        .cli(&["user", "set", "alice", "--session-limit", "1"], None)
        .0
        .success());
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut viewer = relay.viewer(&tmp.path().join("viewer"));
    assert_eq!(viewer.wait_event("login", SLOW)["max_session_secs"], 60);
    let digits = viewer.wait_event("code", SLOW)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let mut agent = relay.agent(&tmp.path().join("agent"), &digits);
    let connected = agent.wait_event("connected", SLOW);
    assert_eq!(connected["peer"]["max_session_secs"], 60);
    let started = Instant::now();
    let closed = agent.wait_event("closed", Duration::from_secs(120));
    assert_eq!(closed["reason"], "session time limit reached");
    assert!(
        started.elapsed() >= Duration::from_secs(50),
        "{:?}",
        started.elapsed()
    );
    let closed = viewer.wait_event("closed", T);
    assert_eq!(closed["reason"], "session time limit reached");
}
