//! Real agents when the relay dies: each `agent` process shares an X display of its own
//! (Xvfb), the operator (this harness, on the real protocol) is granted control by the
//! customer and presses a key without letting go, and then the relay gets SIGKILL. Each agent
//! must notice (its `reconnecting` event), release the key on its display (XQueryKeymap shows
//! no key down) within [`super::kill::NOTICE_LIMIT`], and end the session as abnormal once it
//! cannot come back.

use super::event_proc::EventProc;
use crate::relay_bench::pairing::{login_and_create, AccountPool, Target};
use anyhow::{anyhow, bail, Context, Result};
use sightline_core::e2e::{E2eConfig, Trust};
use sightline_core::messages::{InputEvent, Message};
use sightline_net::session::{self, AppChannels};
use sightline_tests::{pressed_keys, Xvfb};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long one step of setting a session up may take (a debug agent on a busy machine).
const STEP: Duration = Duration::from_secs(60);
/// How long an agent may take to end the session after the kill: the resume window and a
/// margin.
const END_LIMIT: Duration = Duration::from_secs(50);

/// One agent holding a key for the operator.
#[derive(Debug)]
pub struct Held {
    agent: EventProc,
    screen: Xvfb,
    /// Keeps the operator's sending side open until the relay is killed.
    _to_agent: mpsc::Sender<Message>,
    /// When the operator's session pump ended.
    operator_ended: std::sync::mpsc::Receiver<Instant>,
}

/// What one agent did after the kill.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AfterKill {
    /// When the operator's end of the session ended, ms after the kill.
    pub operator_noticed_ms: Option<f64>,
    /// When it said it was reconnecting, ms after the kill.
    pub noticed_ms: Option<f64>,
    /// When its display showed no key down, ms after the kill.
    pub released_ms: Option<f64>,
    /// How it ended the session: `closed` event's `normal` (false: abnormal) and reason.
    pub ended: Option<(bool, String)>,
}

/// Makes an agent key once, in `dir`, for every agent to copy (an RSA key takes seconds to
/// make in a debug build).
pub fn make_agent_key(agent_bin: &Path, dir: &Path) -> Result<()> {
    let out = std::process::Command::new(agent_bin)
        .args(["fingerprint", "--data-dir"])
        .arg(dir)
        .output()
        .with_context(|| format!("cannot run {}", agent_bin.display()))?;
    if !out.status.success() {
        bail!(
            "agent fingerprint failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Sets up one session with a real agent whose operator holds down a key (`key`, a name
/// such as `KeyA`).
pub async fn hold(
    target: &Target,
    pool: &AccountPool,
    agent_bin: &Path,
    key_dir: &Path,
    key: &str,
) -> Result<Held> {
    let screen = tokio::task::spawn_blocking(|| Xvfb::start(320, 240))
        .await
        .map_err(|e| anyhow!("Xvfb: {e}"))?;
    let (user, factor) = pool.next_login()?;
    let (client, created, cert) = login_and_create(target, &user, factor).await?;
    let mut agent = EventProc::agent(
        agent_bin,
        key_dir,
        &target.addr,
        &target.pin.to_string(),
        &screen.display,
        &created.code.digits(),
    )?;
    agent.say("y")?;
    let (mut stream, session_id) = tokio::time::timeout(STEP, client.wait_paired())
        .await
        .context("the agent did not join")??;
    let cfg = E2eConfig {
        session_id,
        seed: sightline_net::clock::seed(),
        trust: Trust::AnyAgentKey,
        channel: Default::default(),
    };
    let mut e2e = session::operator_handshake(&mut stream, cfg, &target.key, cert).await?;
    let (app, to_agent, mut from_agent) = AppChannels::pair(64);
    let hello = Message::Hello {
        software: "attack".into(),
        capabilities: Vec::new(),
    };
    let (ended_tx, operator_ended) = std::sync::mpsc::channel();
    tokio::spawn(async move {
        session::run(&mut stream, &mut e2e, hello, std::future::pending(), app).await;
        let _ = ended_tx.send(Instant::now());
    });
    let mut agent = agent.wait_async("sharing", None, STEP).await?;
    to_agent.send(Message::ControlRequest).await?;
    agent = agent
        .wait_async("consent_request", Some(("what", "control")), STEP)
        .await?;
    agent.say("y")?;
    granted(&mut from_agent).await?;
    // Video keeps coming; nobody needs it.
    tokio::spawn(async move { while from_agent.recv().await.is_some() {} });
    to_agent
        .send(Message::Input(InputEvent::Key {
            key: key.into(),
            pressed: true,
        }))
        .await?;
    let display = screen.display.clone();
    let down =
        tokio::task::spawn_blocking(move || until(STEP, || pressed_keys(&display) > 0)).await?;
    if down.is_none() {
        bail!("the agent did not press {key}");
    }
    Ok(Held {
        agent,
        screen,
        _to_agent: to_agent,
        operator_ended,
    })
}

/// Waits for the agent's answer to the control request.
async fn granted(from_agent: &mut mpsc::Receiver<Message>) -> Result<()> {
    loop {
        match tokio::time::timeout(STEP, from_agent.recv()).await {
            Ok(Some(Message::Control { granted: true })) => return Ok(()),
            Ok(Some(Message::Control { granted: false })) => bail!("control declined"),
            Ok(Some(_)) => {}
            Ok(None) => bail!("the session ended before control was granted"),
            Err(_) => bail!("no answer to the control request"),
        }
    }
}

/// Polls `check` every 20 ms for up to `limit`; how long it took to hold.
fn until(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

impl Held {
    /// Watches the agent from `killed_at` on: notice, release, end.
    pub fn watch(mut self, killed_at: Instant) -> AfterKill {
        let limit = super::kill::NOTICE_LIMIT;
        let since = |t: Instant| t.duration_since(killed_at).as_secs_f64() * 1000.0;
        let display = self.screen.display.clone();
        let released = until(limit.saturating_sub(killed_at.elapsed()), || {
            pressed_keys(&display) == 0
        })
        .map(|_| since(Instant::now()));
        let noticed = self
            .agent
            .wait_until("reconnecting", None, killed_at + limit)
            .map(since);
        let ended = self
            .agent
            .event_until("closed", None, killed_at + END_LIMIT)
            .map(|v| {
                (
                    v["normal"].as_bool().unwrap_or(true),
                    v["reason"].as_str().unwrap_or_default().to_string(),
                )
            });
        let operator = self
            .operator_ended
            .recv_timeout(limit.saturating_sub(killed_at.elapsed()))
            .ok()
            .map(since);
        AfterKill {
            operator_noticed_ms: operator,
            noticed_ms: noticed,
            released_ms: released,
            ended,
        }
    }
}
