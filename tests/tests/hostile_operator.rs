//! Integration, the customer stays in charge against a hostile operator. The operator's side
//! is written here on the real protocol (a modified viewer can send anything); the agent, the
//! relay and the X applications are real.
//!
//! - A flood of input (text, key repeat, pointer) cannot outlast the customer: after `r`,
//!   Ctrl+Alt+R or `e`, at most a handful of characters still reach the application, and the
//!   agent confirms within a second.
//! - The operator cannot press the customer's hotkeys.
//! - Removing the banner (xkill, unmapping, destroying it) takes control away at once and, when
//!   it stays away, pauses sharing until it is back; the viewer is told why.
//! - Without a revoke hotkey (another program holds it) the operator gets no control.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_core::messages::{InputEvent, Message, PauseReason, WithdrawReason};
use sightline_net::session::SessionEnd;
use sightline_tests::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{Receiver, Sender};

const T: Duration = Duration::from_secs(60);
/// What the issue allows to reach the application after the customer's key.
const MAX_CHARS_AFTER: usize = 64;
/// How fast the agent must confirm.
const CONFIRM_WITHIN: Duration = Duration::from_secs(1);

/// A session whose operator is this test: the agent (real, attended, `--json`) shares
/// `display`, and the customer has allowed viewing.
struct Operator {
    to_agent: Sender<Message>,
    from_agent: Receiver<Message>,
    pump: tokio::task::JoinHandle<SessionEnd>,
    agent: Proc,
}

async fn connect(relay: &Relay, agent_dir: &Path, display: &str) -> Operator {
    let (stream, session, agent) = modified_viewer(relay, |digits| {
        relay.agent_on(agent_dir, &relay.fingerprint, digits, Some(display))
    })
    .await;
    let (to_agent, from_agent, pump) = test_peer_pump(stream, session, "hostile-operator", &[]);
    let mut op = Operator {
        to_agent,
        from_agent,
        pump,
        agent,
    };
    tokio::task::block_in_place(|| op.agent.wait_event("sharing", T));
    op
}

impl Operator {
    /// Asks for control; the customer says yes.
    async fn take_control(&mut self) {
        self.to_agent.send(Message::ControlRequest).await.unwrap();
        tokio::task::block_in_place(|| self.agent.allow_control(T));
        assert!(self.next_control().await, "control granted");
    }

    /// The agent's next `Control`, skipping video and the rest.
    async fn next_control(&mut self) -> bool {
        loop {
            if let Message::Control { granted } = self.next().await {
                return granted;
            }
        }
    }

    async fn next(&mut self) -> Message {
        match tokio::time::timeout(T, self.from_agent.recv()).await {
            Ok(Some(m)) => m,
            other => panic!("no message from the agent: {other:?}"),
        }
    }

    /// Every message that arrives within `within`, with its arrival time.
    async fn timed_messages_for(&mut self, within: Duration) -> Vec<(Instant, Message)> {
        let until = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout_at(until, self.from_agent.recv()).await {
            seen.push((Instant::now(), m));
        }
        seen
    }

    /// Messages that arrive within `within`, video left out.
    async fn messages_for(&mut self, within: Duration) -> Vec<Message> {
        let until = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout_at(until, self.from_agent.recv()).await {
            if !matches!(
                m,
                Message::VideoPacket { .. } | Message::Cursor { .. } | Message::SendRate { .. }
            ) {
                seen.push(m);
            }
        }
        seen
    }
}

/// An xterm that writes every character typed into it to `file` at once (raw mode), focused.
fn flood_target(x: &mut Xvfb, file: &Path) {
    let cmd = format!("stty raw -echo; exec cat > {}", file.display());
    x.app_window(
        "xterm",
        &[
            "-title",
            "flood-target",
            "-geometry",
            "100x30+0+40",
            "-e",
            "sh",
            "-c",
            &cmd,
        ],
        "flood-target",
    );
    x.run(
        "xdotool",
        &["search", "--name", "flood-target", "windowfocus"],
    );
}

fn size(file: &Path) -> usize {
    std::fs::metadata(file).map_or(0, |m| m.len() as usize)
}

/// Floods the agent with input the way a hostile operator would, until `stop`: text of 400
/// characters, a key held down and repeating, pointer moves; 300 texts per round, about 6,000
/// events a second (thirty times what the agent injects, 2.4 million characters a minute),
/// paced just enough not to starve the machine's two cores (the receiving xterm shares them).
fn flood(to_agent: Sender<Message>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut sent = 0u64;
        let text = "flood".repeat(80);
        while !stop.load(Ordering::SeqCst) {
            for i in 0..300u32 {
                let events = [
                    InputEvent::Text { text: text.clone() },
                    InputEvent::Key {
                        key: "KeyK".into(),
                        pressed: true,
                    },
                    InputEvent::PointerMove {
                        x: (i % 100) as f32 / 100.0,
                        y: 0.5,
                    },
                ];
                for ev in events {
                    if to_agent.send(Message::Input(ev)).await.is_err() {
                        return sent;
                    }
                    sent += 1;
                }
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                if i % 10 == 9 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        sent
    })
}

/// The agent's own report of the revoke: milliseconds from the stop to the last injected
/// event, from its log ("input stopped ... last_event_after_stop_ms=...").
fn stop_report(agent: &Proc) -> String {
    agent
        .stderr()
        .lines()
        .find(|l| l.contains("input stopped"))
        .unwrap_or("no report")
        .to_string()
}

/// How the customer takes control back or ends in the flood tests.
#[derive(Debug, Clone, Copy)]
enum CustomerKey {
    /// `r` and Enter in the agent's terminal.
    Revoke,
    /// Ctrl+Alt+R on the shared display (a real key press through the X server).
    Hotkey,
    /// `e` and Enter: the end.
    End,
}

/// The flood test: control granted, a flood under way, then the customer's key. Checks that at
/// most [`MAX_CHARS_AFTER`] characters arrive after it and that the agent confirms in time.
fn flood_then(key: CustomerKey) {
    let mut x = Xvfb::start(1024, 768);
    let tmp = tempfile::tempdir().unwrap();
    let typed = tmp.path().join("typed.txt");
    flood_target(&mut x, &typed);
    let mut relay = Relay::new(None);
    relay.start();
    let rt = test_runtime();
    let display = x.display.clone();
    let agent_dir = tmp.path().join("agent");
    rt.block_on(async {
        let mut op = connect(&relay, &agent_dir, &display).await;
        op.take_control().await;
        let stop = Arc::new(AtomicBool::new(false));
        let flooding = flood(op.to_agent.clone(), stop.clone());
        // Keep reading what the agent sends, so its pump never blocks on us.
        tokio::task::block_in_place(|| {
            eventually("the flood reaches the terminal", T, || size(&typed) > 600)
        });
        // The rate the flood arrives at, for the report.
        let (s0, t0) = (size(&typed), Instant::now());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rate = (size(&typed) - s0) as f64 / t0.elapsed().as_secs_f64();
        let before = size(&typed);
        let pressed = Instant::now();
        tokio::task::block_in_place(|| match key {
            CustomerKey::Revoke => op.agent.write_line("r"),
            CustomerKey::Hotkey => {
                x.run("xdotool", &["key", "ctrl+alt+r"]);
            }
            CustomerKey::End => op.agent.write_line("e"),
        });
        let confirmed = tokio::task::block_in_place(|| match key {
            CustomerKey::End => {
                op.agent.wait_event("closed", T);
                pressed.elapsed()
            }
            _ => {
                op.agent
                    .wait_event_where("status", "in_control", false.into(), T);
                pressed.elapsed()
            }
        });
        // Whatever was still on its way has arrived after this.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = size(&typed).saturating_sub(before);
        stop.store(true, Ordering::SeqCst);
        let sent = flooding.await.unwrap_or(0);
        eprintln!(
            "{key:?}: {sent} input events sent, {rate:.0} characters/s arriving; confirmed after \
             {confirmed:?}; {after} characters arrived after the key; agent: {}",
            stop_report(&op.agent)
        );
        assert!(
            after <= MAX_CHARS_AFTER,
            "{after} characters reached the application after the customer's {key:?}"
        );
        assert!(
            confirmed <= CONFIRM_WITHIN,
            "the agent confirmed after {confirmed:?}"
        );
        if let CustomerKey::End = key {
            // (The operator's side may be cut off while it is still writing its flood.)
            let _ = tokio::time::timeout(T, op.pump).await.unwrap();
            let closed = tokio::task::block_in_place(|| op.agent.wait_event("summary", T));
            assert_eq!(closed["reason"], "ended by customer");
        } else {
            // The operator hears it too; nothing more is typed however long they go on.
            op.to_agent
                .send(Message::Input(InputEvent::Text {
                    text: "late".into(),
                }))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(!std::fs::read_to_string(&typed)
                .unwrap_or_default()
                .contains("late"));
            tokio::task::block_in_place(|| op.agent.write_line("e"));
            let _ = tokio::time::timeout(T, op.pump).await;
        }
        tokio::task::block_in_place(|| {
            eventually("held keys released", T, || pressed_keys(&display) == 0);
        });
    });
}

/// One after the other (three floods at once would measure the machine, not the agent).
#[test]
fn a_flood_stops_at_once_at_the_customers_r_hotkey_or_end() {
    for key in [CustomerKey::Revoke, CustomerKey::Hotkey, CustomerKey::End] {
        flood_then(key);
    }
}

#[test]
fn the_operator_cannot_press_the_customers_hotkeys() {
    let mut x = Xvfb::start(1024, 768);
    let tmp = tempfile::tempdir().unwrap();
    let typed = tmp.path().join("typed.txt");
    flood_target(&mut x, &typed);
    let mut relay = Relay::new(None);
    relay.start();
    let rt = test_runtime();
    let display = x.display.clone();
    rt.block_on(async {
        let mut op = connect(&relay, &tmp.path().join("agent"), &display).await;
        op.take_control().await;
        let key = |key: &str, pressed: bool| {
            Message::Input(InputEvent::Key {
                key: key.into(),
                pressed,
            })
        };
        // Ctrl+Alt+R and Ctrl+Alt+Q, as keys and as text: none of it may look like the
        // customer's hotkeys.
        for m in [
            key("ControlLeft", true),
            key("AltLeft", true),
            key("KeyR", true),
            key("KeyR", false),
            Message::Input(InputEvent::Text { text: "rq".into() }),
            key("KeyQ", true),
            key("KeyQ", false),
            key("AltLeft", false),
            key("ControlLeft", false),
            Message::Input(InputEvent::Text {
                text: "still here".into(),
            }),
        ] {
            op.to_agent.send(m).await.unwrap();
        }
        let seen = op.messages_for(Duration::from_secs(2)).await;
        assert!(
            !seen.iter().any(|m| matches!(
                m,
                Message::Control { granted: false } | Message::Close { .. }
            )),
            "the agent acted on the operator's keys as if the customer pressed them: {seen:?}"
        );
        tokio::task::block_in_place(|| {
            eventually("input still goes through", T, || {
                std::fs::read_to_string(&typed)
                    .unwrap_or_default()
                    .contains("still here")
            });
            let events = op.agent.events();
            assert!(!events.iter().any(|e| e == "control"), "{events:?}");
            let log = op.agent.stderr();
            assert!(
                log.contains("the operator may not press the customer's hotkeys"),
                "{log}"
            );
            op.agent.write_line("e");
        });
        let _ = tokio::time::timeout(T, op.pump).await;
    });
}

/// The banner's window id on `x` (xdotool).
fn banner_window(x: &Xvfb) -> String {
    x.run(
        "xdotool",
        &["search", "--name", "Sightline session indicator"],
    )
    .lines()
    .next()
    .unwrap_or_default()
    .to_string()
}

/// A session under control, on a screen that changes all the time (so that pictures flow unless
/// sharing is paused), whose banner `remove` takes away: every message the operator receives
/// in the next five seconds, with its time since the removal.
fn banner_removed(remove: impl FnOnce(&Xvfb, &str)) -> Vec<(Duration, Message)> {
    let mut x = Xvfb::start(1024, 768);
    x.app_window(
        "xterm",
        &[
            "-title",
            "ticking",
            "-geometry",
            "40x5+100+100",
            "-e",
            "sh",
            "-c",
            "while :; do date +%s.%N; sleep 0.05; done",
        ],
        "ticking",
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut relay = Relay::new(None);
    relay.start();
    let rt = test_runtime();
    let display = x.display.clone();
    rt.block_on(async {
        let mut op = connect(&relay, &tmp.path().join("agent"), &display).await;
        op.take_control().await;
        let id = banner_window(&x);
        assert!(!id.is_empty(), "no banner window");
        let removed = Instant::now();
        tokio::task::block_in_place(|| remove(&x, &id));
        let seen = op.timed_messages_for(Duration::from_secs(5)).await;
        tokio::task::block_in_place(|| op.agent.write_line("e"));
        let _ = tokio::time::timeout(T, op.pump).await;
        seen.into_iter()
            .map(|(at, m)| (at.duration_since(removed), m))
            .collect()
    })
}

/// Control was withdrawn, with the banner as the reason, within [`CONFIRM_WITHIN`].
fn withdrawn_in_time(seen: &[(Duration, Message)]) -> bool {
    let soon: Vec<&Message> = seen
        .iter()
        .filter(|(t, _)| *t <= CONFIRM_WITHIN)
        .map(|(_, m)| m)
        .collect();
    let why = soon.iter().position(|m| {
        matches!(
            m,
            Message::ControlWithdrawn {
                reason: WithdrawReason::BannerGone
            }
        )
    });
    let off = soon
        .iter()
        .position(|m| matches!(m, Message::Control { granted: false }));
    matches!((why, off), (Some(w), Some(o)) if w < o)
}

fn names(seen: &[(Duration, Message)]) -> Vec<String> {
    seen.iter()
        .filter(|(_, m)| !matches!(m, Message::VideoPacket { .. } | Message::Cursor { .. }))
        .map(|(t, m)| format!("{t:?}: {m:?}"))
        .collect()
}

#[test]
fn killing_the_banner_pauses_sharing_and_ends_control_until_it_is_back() {
    let seen = banner_removed(|x, id| {
        x.run("xkill", &["-id", id]);
    });
    assert!(withdrawn_in_time(&seen), "{:?}", names(&seen));
    let at = |want: fn(&Message) -> bool| seen.iter().find(|(_, m)| want(m)).map(|(t, _)| *t);
    let paused = at(|m| {
        matches!(
            m,
            Message::SharingPaused {
                reason: PauseReason::BannerGone
            }
        )
    })
    .unwrap_or_else(|| panic!("never paused: {:?}", names(&seen)));
    assert!(paused <= CONFIRM_WITHIN, "paused after {paused:?}");
    // A new banner comes up and sharing goes on: a new stream, pictures again.
    let resumed = at(|m| matches!(m, Message::SharingResumed))
        .unwrap_or_else(|| panic!("never resumed: {:?}", names(&seen)));
    // No pictures while paused (the ticking clock makes several a second otherwise), but for
    // one that was already being encoded when the pause came.
    let while_paused = seen
        .iter()
        .filter(|(t, m)| {
            *t > paused + Duration::from_millis(200)
                && *t < resumed
                && matches!(m, Message::VideoPacket { .. })
        })
        .count();
    assert_eq!(while_paused, 0, "pictures while paused");
    let after = |want: fn(&Message) -> bool| seen.iter().any(|(t, m)| *t > resumed && want(m));
    assert!(
        after(|m| matches!(m, Message::VideoConfig { .. })),
        "no new stream"
    );
    assert!(
        after(|m| matches!(m, Message::VideoPacket { .. })),
        "no pictures after resuming"
    );
}

#[test]
fn hiding_or_destroying_the_banner_ends_control() {
    for how in ["windowunmap", "windowclose"] {
        let seen = banner_removed(|x, id| {
            x.run("xdotool", &[how, id]);
        });
        assert!(withdrawn_in_time(&seen), "{how}: {:?}", names(&seen));
    }
}

#[test]
fn without_a_revoke_hotkey_there_is_no_control() {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{ConnectionExt, GrabMode, ModMask};
    let x = Xvfb::start(1024, 768);
    // Another program holds Ctrl+Alt+R (every lock combination) before the agent starts.
    let (conn, screen) = x11rb::connect(Some(&x.display)).unwrap();
    let root = conn.setup().roots[screen].root;
    let r = 27; // the X keycode of R (evdev 19 + 8)
    for mods in [
        ModMask::CONTROL | ModMask::M1,
        ModMask::CONTROL | ModMask::M1 | ModMask::LOCK,
        ModMask::CONTROL | ModMask::M1 | ModMask::M2,
        ModMask::CONTROL | ModMask::M1 | ModMask::LOCK | ModMask::M2,
    ] {
        conn.grab_key(true, root, mods, r, GrabMode::ASYNC, GrabMode::ASYNC)
            .unwrap()
            .check()
            .unwrap();
    }
    conn.flush().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut relay = Relay::new(None);
    relay.start();
    let rt = test_runtime();
    let display = x.display.clone();
    rt.block_on(async {
        let mut op = connect(&relay, &tmp.path().join("agent"), &display).await;
        op.to_agent.send(Message::ControlRequest).await.unwrap();
        let seen = op.messages_for(Duration::from_secs(2)).await;
        assert!(
            seen.iter().any(|m| matches!(
                m,
                Message::ControlWithdrawn {
                    reason: WithdrawReason::RevokeKeyUnavailable
                }
            )),
            "{seen:?}"
        );
        assert!(
            seen.contains(&Message::Control { granted: false }),
            "{seen:?}"
        );
        tokio::task::block_in_place(|| {
            // The customer was never asked: there was nothing they could take back with.
            let asked = op
                .agent
                .seen
                .iter()
                .any(|l| l.contains(r#""what":"control""#));
            assert!(!asked, "{:?}", op.agent.seen);
            op.agent.write_line("e");
        });
        let _ = tokio::time::timeout(T, op.pump).await;
    });
    drop(conn);
}
