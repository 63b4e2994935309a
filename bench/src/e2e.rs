//! End-to-end latency: a recorded clip plays on an X display ([`crate::player`]), the real
//! agent captures and encodes it, the real relay forwards it on loopback and the real headless
//! viewer decodes it. The viewer reports, per decoded picture, the time from capture to decoded
//! on the same machine clock; the agent's CPU time and memory come from `/proc`.
//!
//! One relay (with its RSA key and accounts) serves every run of [`run`]; each (clip, encoder)
//! gets a fresh X display, player, viewer and agent. Runs never overlap, even when called from
//! several threads: they would share two cores and measure each other.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use sightline_tests::{bin, Proc, Relay, Xvfb, PASSWORD, SLOW};

use crate::corpus;
use crate::player::{play_loop, PlayStats};
use crate::relay_bench::procfs::{self, Pid};

/// Time after the first decoded picture that is not measured (encoder start-up, the first
/// keyframe's aftermath, rate control settling).
pub const WARM_UP: Duration = Duration::from_secs(2);

/// Operator accounts used in turn: each login spends a TOTP step, and the relay accepts a
/// step at most once per account, so one account allows about two logins a minute.
const OPERATORS: [&str; 3] = ["alice", "bench-2", "bench-3"];

/// Held for the whole of [`run`].
static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E2eOptions {
    /// Measured seconds per run (after [`WARM_UP`]).
    pub seconds: u64,
    /// Encoders, as the agent's `--encoder` takes them: `"aom"`, `"rav1e"`.
    pub encoders: Vec<String>,
    /// Clip names in `assets/corpus` without `.png` (`"typing-1920x1080"`).
    pub clips: Vec<String>,
}

impl Default for E2eOptions {
    /// 12 s for each of typing, scroll and idle at 1280x720 and 1920x1080, with both encoders.
    fn default() -> Self {
        let clips = ["typing", "scroll", "idle"]
            .iter()
            .flat_map(|c| ["1280x720", "1920x1080"].map(|size| format!("{c}-{size}")))
            .collect();
        E2eOptions {
            seconds: 12,
            encoders: vec!["aom".into(), "rav1e".into()],
            clips,
        }
    }
}

impl E2eOptions {
    /// A smoke run: 3 s of typing at 1280x720 with libaom.
    pub fn quick() -> Self {
        E2eOptions {
            seconds: 3,
            encoders: vec!["aom".into()],
            clips: vec!["typing-1280x720".into()],
        }
    }
}

/// The figures of one (clip, encoder) run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct E2eResult {
    /// The clip's name.
    pub clip: String,
    /// The agent's encoder.
    pub encoder: String,
    /// Screen width in pixels.
    pub width: u32,
    /// Screen height in pixels.
    pub height: u32,
    /// Length of the measured window, seconds.
    pub seconds: f64,
    /// Pictures decoded in the window.
    pub frames: u64,
    /// `frames / seconds`.
    pub fps: f64,
    /// Keyframes among them (a keyframe after the first means the encoder restarted or the
    /// viewer asked for one).
    pub keyframes: u64,
    /// Capture-to-decoded latency, median, ms (`None` without frames).
    pub latency_p50_ms: Option<f64>,
    /// 95th percentile, ms.
    pub latency_p95_ms: Option<f64>,
    /// Worst, ms.
    pub latency_max_ms: Option<f64>,
    /// Encoded video in the window, bytes per second.
    pub bytes_per_sec: f64,
    /// Size of the session's first keyframe, bytes.
    pub keyframe_bytes: u64,
    /// Agent CPU over the window, in cores (1.0: one core busy all the time).
    pub agent_cpu: f64,
    /// Agent's peak resident memory (`VmHWM`) at the end, KiB.
    pub agent_peak_kib: u64,
    /// Agent's resident memory at the end, KiB.
    pub agent_rss_kib: u64,
    /// Relay's resident memory at the end, KiB.
    pub relay_rss_kib: u64,
    /// What the clip player did during the whole run (late frames mean the screen changed
    /// later than recorded).
    pub player: PlayStats,
}

/// Column titles of [`rows`].
pub const HEADER: [&str; 12] = [
    "clip",
    "encoder",
    "fps",
    "p50 ms",
    "p95 ms",
    "max ms",
    "kbit/s",
    "keyframe KiB",
    "agent CPU",
    "agent peak MiB",
    "relay MiB",
    "late player frames",
];

/// One table row per result, in the order of [`HEADER`].
pub fn rows(results: &[E2eResult]) -> Vec<[String; 12]> {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
    results
        .iter()
        .map(|r| {
            [
                r.clip.clone(),
                r.encoder.clone(),
                format!("{:.1}", r.fps),
                ms(r.latency_p50_ms),
                ms(r.latency_p95_ms),
                ms(r.latency_max_ms),
                format!("{:.0}", r.bytes_per_sec * 8.0 / 1000.0),
                format!("{:.1}", r.keyframe_bytes as f64 / 1024.0),
                format!("{:.0}%", r.agent_cpu * 100.0),
                mib(r.agent_peak_kib),
                mib(r.relay_rss_kib),
                format!("{} of {}", r.player.late_frames, r.player.frames),
            ]
        })
        .collect()
}

/// Runs every (clip, encoder) pair of `opts` through one relay, in order.
pub fn run(opts: &E2eOptions) -> Result<Vec<E2eResult>> {
    let _alone = ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let clips = opts
        .clips
        .iter()
        .map(|name| corpus::probe(&corpus::corpus_dir().join(format!("{name}.png"))))
        .collect::<Result<Vec<_>, _>>()?;
    // The harness reports failures by panicking (it is built for tests): turn them into errors.
    harness(|| {
        let relay = Bench::start()?;
        let mut results = Vec::new();
        for clip in &clips {
            for encoder in &opts.encoders {
                let result = relay
                    .measure(&clip.path, encoder, opts.seconds)
                    .with_context(|| format!("{} with {encoder}", clip.name))?;
                results.push(result);
            }
        }
        Ok(results)
    })
}

/// Runs `f`, turning a panic of the test harness into an error.
fn harness<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(anyhow!("the test harness failed: {message}"))
    })
}

/// The relay serving every run, its process id, and the operators' and agent's data.
struct Bench {
    relay: Relay,
    relay_pid: u32,
    /// Data directories, kept across runs so keys are generated once.
    data: tempfile::TempDir,
    /// Logins so far (picks the operator account).
    logins: std::cell::Cell<usize>,
}

impl Bench {
    fn start() -> Result<Bench> {
        let mut relay = Relay::new(None);
        for name in &OPERATORS[1..] {
            relay.add_user(name, PASSWORD);
        }
        let before = children_named("relay")?;
        relay.start();
        let relay_pid = children_named("relay")?
            .into_iter()
            .find(|pid| !before.contains(pid))
            .ok_or_else(|| anyhow!("cannot find the relay process"))?;
        Ok(Bench {
            relay,
            relay_pid,
            data: tempfile::tempdir()?,
            logins: std::cell::Cell::new(0),
        })
    }

    /// Headless `viewer session` for the next operator account, JSON events.
    fn viewer(&self) -> Proc {
        let n = self.logins.get();
        self.logins.set(n + 1);
        let user = OPERATORS[n % OPERATORS.len()];
        let relay = &self.relay;
        let mut p = Proc::spawn(
            "viewer",
            Command::new(bin("viewer"))
                .arg("--data-dir")
                .arg(self.data.path().join(format!("viewer-{user}")))
                .args(["session", "--relay", &relay.addr, "--relay-key"])
                .arg(&relay.fingerprint)
                .args(["--user", user, "--password-stdin", "--json"]),
        );
        p.send_lines(&[PASSWORD, &relay.totp(user)]);
        p
    }

    /// One run: `clip` on a fresh display, shared by an agent using `encoder`.
    fn measure(&self, clip: &Path, encoder: &str, seconds: u64) -> Result<E2eResult> {
        let info = corpus::probe(clip)?;
        let screen = Xvfb::start(info.width, info.height);
        let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
        let player = play_loop(&screen.display, clip, stop.0.clone());
        let session = self.session(&screen.display, encoder, seconds);
        drop(stop);
        let played = player
            .join()
            .map_err(|_| anyhow!("the clip player panicked"))?
            .context("the clip player failed")?;
        let s = session?;
        drop(screen);
        let n = s.latencies.len();
        let mut sorted = s.latencies;
        sorted.sort_by(f64::total_cmp);
        let seconds = s.window.as_secs_f64();
        Ok(E2eResult {
            clip: info.name,
            encoder: encoder.to_string(),
            width: info.width,
            height: info.height,
            seconds,
            frames: n as u64,
            fps: n as f64 / seconds,
            keyframes: s.keyframes,
            latency_p50_ms: quantile(&sorted, 0.5),
            latency_p95_ms: quantile(&sorted, 0.95),
            latency_max_ms: sorted.last().copied(),
            bytes_per_sec: s.bytes as f64 / seconds,
            keyframe_bytes: s.keyframe_bytes,
            agent_cpu: s.agent_cpu_seconds / seconds,
            agent_peak_kib: s.agent_memory.hwm_kib,
            agent_rss_kib: s.agent_memory.rss_kib,
            relay_rss_kib: s.relay_memory.rss_kib,
            player: played,
        })
    }

    /// Viewer and agent sharing `display`: waits for the first picture and [`WARM_UP`], then
    /// records `seconds` of decoded pictures. Both processes are killed on return.
    fn session(&self, display: &str, encoder: &str, seconds: u64) -> Result<Session> {
        let mut viewer = self.viewer();
        let code = viewer.wait_event("code", SLOW)["code"]
            .as_str()
            .ok_or_else(|| anyhow!("the viewer's code event has no code"))?
            .to_string();
        let relay = &self.relay;
        let mut agent = relay.agent_asking(
            &self.data.path().join("agent"),
            &relay.fingerprint,
            &code,
            Some(display),
            &["--encoder", encoder],
        );
        agent.write_line("y");
        let sharing = agent.wait_event("sharing", SLOW);
        if sharing["encoder"] != encoder {
            bail!(
                "the agent shares with {}, not {encoder}",
                sharing["encoder"]
            );
        }
        let first = viewer.wait_event("frame", SLOW);
        let keyframe_bytes = if first["keyframe"] == true {
            first["bytes"].as_u64().unwrap_or(0)
        } else {
            0
        };

        let warm_until = Instant::now() + WARM_UP;
        while let Some(left) = warm_until.checked_duration_since(Instant::now()) {
            if let Some(event) = next_event(&mut viewer, left)? {
                if event["event"] == "closed" {
                    bail!("the session closed during warm-up: {event}");
                }
            }
        }

        let agent_pid = Pid::Other(agent.pid());
        let cpu_before = procfs::cpu_seconds(agent_pid)?;
        let start = Instant::now();
        let end = start + Duration::from_secs(seconds);
        let mut s = Session {
            keyframe_bytes,
            ..Session::default()
        };
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Some(event) = next_event(&mut viewer, left)? else {
                continue;
            };
            match event["event"].as_str() {
                Some("frame") => {
                    s.latencies.push(
                        event["latency_ms"]
                            .as_f64()
                            .ok_or_else(|| anyhow!("frame event without latency: {event}"))?,
                    );
                    s.bytes += event["bytes"].as_u64().unwrap_or(0);
                    s.keyframes += u64::from(event["keyframe"] == true);
                }
                Some("closed") => bail!("the session closed: {event}"),
                _ => {}
            }
        }
        s.window = start.elapsed();
        s.agent_cpu_seconds = procfs::cpu_seconds(agent_pid)? - cpu_before;
        s.agent_memory = procfs::memory(agent_pid)?;
        s.relay_memory = procfs::memory(Pid::Other(self.relay_pid))?;
        Ok(s)
    }
}

/// Stops the clip player when dropped, also when the harness panics.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What [`Bench::session`] measured.
#[derive(Debug, Default)]
struct Session {
    window: Duration,
    latencies: Vec<f64>,
    bytes: u64,
    keyframes: u64,
    keyframe_bytes: u64,
    agent_cpu_seconds: f64,
    agent_memory: procfs::Memory,
    relay_memory: procfs::Memory,
}

/// The next JSON event the viewer prints within `timeout` (`None`: none came, or a line that
/// is not JSON); an error when the viewer has exited.
fn next_event(viewer: &mut Proc, timeout: Duration) -> Result<Option<serde_json::Value>> {
    let asked = Instant::now();
    match viewer.next_line(timeout) {
        Some(line) => Ok(serde_json::from_str(&line).ok()),
        // `next_line` also returns at once when stdout closed: the viewer is gone.
        None if asked.elapsed() + Duration::from_millis(5) < timeout => {
            bail!("the viewer exited: {}", viewer.stderr())
        }
        None => Ok(None),
    }
}

/// The `q` quantile (0..=1) of sorted values, nearest rank; `None` when empty.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let i = ((last as f64) * q).round() as usize;
    sorted.get(i.min(last)).copied()
}

/// Process ids of this process's children whose command name is `name`.
fn children_named(name: &str) -> Result<Vec<u32>> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").context("cannot list /proc")? {
        let path: PathBuf = entry?.path();
        let Some(pid) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // Processes come and go while we look.
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if comm == name && ppid == Some(me) {
            found.push(pid);
        }
    }
    Ok(found)
}
