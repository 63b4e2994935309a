//! A network outage on one side: the customer's agent runs in a network namespace of its own
//! ([`super::netns`]) and reaches the relay over a veth link; the operator's real viewer runs
//! on this host. Once they are paired and pictures flow, the agent's link goes down
//! (`ip link set down`) for `secs` seconds and comes back. The session must resume: both
//! sides say `reconnected` with the verification code they had, pictures come again, and the
//! customer is not asked again.

use super::event_proc::EventProc;
use super::netns::Netns;
use crate::relay_bench::relay_proc::{RelaySetup, PASSWORD};
use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use sightline_tests::Xvfb;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a step of setting up may take.
const STEP: Duration = Duration::from_secs(60);
/// How long the loss may take to be noticed (6 s of silence, checked every 2 s) and the
/// session to resume once the link is back.
const NOTICE: Duration = Duration::from_secs(25);

/// What the outage came to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OutageReport {
    /// How long the link was down, s.
    pub secs: u64,
    /// When the viewer and the agent said `reconnecting`, ms after the link went down.
    pub noticed_ms: (Option<f64>, Option<f64>),
    /// When the viewer and the agent said `reconnected`, ms after the link came back.
    pub resumed_ms: (Option<f64>, Option<f64>),
    /// Whether both kept the verification code they had.
    pub same_code: bool,
    /// Whether the viewer got a picture after resuming.
    pub pictures_again: bool,
    /// Whether the customer was asked again (must not be).
    pub asked_again: bool,
}

impl OutageReport {
    /// Whether the session came through.
    pub fn passed(&self) -> bool {
        self.resumed_ms.0.is_some()
            && self.resumed_ms.1.is_some()
            && self.same_code
            && self.pictures_again
            && !self.asked_again
    }
}

fn ms_since(t: Instant, at: Instant) -> f64 {
    at.duration_since(t).as_secs_f64() * 1000.0
}

/// The viewer and the agent, paired, and the code they showed.
struct Pair {
    viewer: EventProc,
    agent: EventProc,
    sas: String,
}

/// Runs the outage against a relay of its own on the host's end of the link.
pub fn run(bin: &Path, secs: u64) -> Result<OutageReport> {
    let netns = Netns::create("outage")?;
    let setup = RelaySetup::init(bin)?;
    let mut account = setup.add_account("outage")?;
    let relay = setup.serve_on(&format!("{}:0", netns.host_ip), None)?;
    let screen = Xvfb::start(320, 240);
    let factor = account
        .next_factor()
        .ok_or_else(|| anyhow!("no second factor"))?;
    let mut pair = pair(bin, &netns, &relay, &screen, &factor)
        .with_context(|| format!("relay log:\n{}", relay.log_tail()))?;

    let down_at = Instant::now();
    netns.set_link(false)?;
    let noticed_by = down_at + NOTICE;
    let noticed = (
        pair.viewer.wait_until("reconnecting", None, noticed_by),
        pair.agent.wait_until("reconnecting", None, noticed_by),
    );
    std::thread::sleep(
        (down_at + Duration::from_secs(secs)).saturating_duration_since(Instant::now()),
    );
    netns.set_link(true)?;
    let up_at = Instant::now();
    let v = pair.viewer.next("reconnected", None, up_at + NOTICE);
    let a = pair.agent.next("reconnected", None, up_at + NOTICE);
    let same_code = [&v, &a].iter().all(|e| {
        e.as_ref()
            .is_some_and(|(_, e)| e["sas"] == pair.sas.as_str())
    });
    let pictures_again = pair
        .viewer
        .wait_until("frame", None, Instant::now() + NOTICE)
        .is_some();
    let asked_again = pair
        .agent
        .wait_until(
            "consent_request",
            None,
            Instant::now() + Duration::from_secs(2),
        )
        .is_some();
    Ok(OutageReport {
        secs,
        noticed_ms: (
            noticed.0.map(|t| ms_since(down_at, t)),
            noticed.1.map(|t| ms_since(down_at, t)),
        ),
        resumed_ms: (
            v.map(|(t, _)| ms_since(up_at, t)),
            a.map(|(t, _)| ms_since(up_at, t)),
        ),
        same_code,
        pictures_again,
        asked_again,
    })
}

/// Starts the viewer on this host and the agent in the namespace, and pairs them.
fn pair(
    bin: &Path,
    netns: &Netns,
    relay: &crate::relay_bench::relay_proc::RelayProcess,
    screen: &Xvfb,
    factor: &str,
) -> Result<Pair> {
    let pin = relay.pin().to_string();
    let viewer_dir = tempfile::tempdir()?;
    let mut viewer = EventProc::spawn(
        Command::new(bin.with_file_name("viewer"))
            .arg("--data-dir")
            .arg(viewer_dir.path())
            .args(["session", "--relay", &relay.addr, "--relay-key", &pin])
            .args(["--user", "outage", "--password-stdin", "--json"]),
        viewer_dir,
    )?;
    viewer.say(PASSWORD)?;
    viewer.say(factor)?;
    let code = viewer
        .event_until("code", None, Instant::now() + STEP)
        .ok_or_else(|| anyhow!("the viewer showed no session code"))?;
    let digits = code["code"].as_str().unwrap_or_default().to_string();
    let agent_dir = tempfile::tempdir()?;
    super::held::make_agent_key(&bin.with_file_name("agent"), agent_dir.path())?;
    let mut agent = EventProc::spawn(
        netns
            .command(&bin.with_file_name("agent"))
            .arg("--data-dir")
            .arg(agent_dir.path())
            .args([
                "--relay",
                &relay.addr,
                "--relay-key",
                &pin,
                "--json",
                "--fps",
                "5",
            ])
            .arg(&digits)
            .env("DISPLAY", &screen.display)
            .env_remove("WAYLAND_DISPLAY"),
        agent_dir,
    )?;
    agent.say("y")?;
    let deadline = Instant::now() + STEP;
    let a = agent
        .event_until("connected", None, deadline)
        .ok_or_else(|| anyhow!("the agent in the namespace did not connect"))?;
    let v = viewer
        .event_until("connected", None, deadline)
        .ok_or_else(|| anyhow!("the viewer did not connect"))?;
    if a["sas"] != v["sas"] {
        return Err(anyhow!("verification codes differ: {a} / {v}"));
    }
    viewer
        .wait_until("frame", None, deadline)
        .ok_or_else(|| anyhow!("no picture reached the viewer"))?;
    let sas = v["sas"].as_str().unwrap_or_default().to_string();
    Ok(Pair { viewer, agent, sas })
}
