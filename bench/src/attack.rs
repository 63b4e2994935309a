//! `just attack`: the relay under a load and fault harness, against the real `relay` binary on
//! loopback. Bounded in count and time, and only ever aimed at the relay it starts.
//!
//! (a) **Flood**: `slowloris` connections held open (half stalled inside the channel
//! handshake, half handshaken and silent) and `guessers` addresses joining with random codes,
//! while `legit` operators log in, hand out codes, and customers join from clean addresses
//! and stream a megabyte each way. Target: every legitimate session pairs within 2 s.
//! (b) **Kill**: `kill_sessions` paired sessions, `real_agents` of them with a real `agent`
//! whose operator holds a key down ([`held`]), then SIGKILL to the relay; every end of every
//! session must notice within 15 s, every agent must release the key, and the relay, started
//! again, must record every session as ended abnormally.
//!
//! (c) **Outage**: a viewer and a real agent in a network namespace of its own, paired; the
//! agent's link goes down for `outage_secs` ([`outage`]); the session must resume with the
//! same verification code.
//!
//! Source addresses are spread over 127.0.0.0/8 ([`sources`]): many hosts, as a botnet would
//! be, so the relay's per-address caps are not what keeps it up.

pub mod event_proc;
pub mod flood;
pub mod held;
pub mod kill;
pub mod legit;
pub mod netns;
pub mod outage;
pub mod sources;

use crate::relay_bench::pairing::{self, AccountPool, Target};
use crate::relay_bench::procfs::{self, Pid};
use crate::relay_bench::relay_proc::{self, RelaySetup, LOGINS_PER_ACCOUNT};
use crate::relay_bench::{raise_fd_limit, traffic::quantile};
use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use sightline_core::identity::{PrivateIdentity, MIN_PEER_BITS};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Target: a legitimate session pairs within this long, whatever the flood.
pub const PAIR_TARGET_MS: f64 = 2000.0;
/// Pairing bound of the smoke run: debug binaries on a CI machine busy with other work.
pub const SMOKE_PAIR_TARGET_MS: f64 = 10_000.0;

/// What to run.
#[derive(Debug, Clone)]
pub struct AttackOptions {
    /// Slowloris connections.
    pub slowloris: usize,
    /// Guessing addresses.
    pub guessers: usize,
    /// Joins each guessing address makes at most.
    pub guesses_per_address: usize,
    /// Legitimate sessions during the flood.
    pub legit: usize,
    /// Sessions live when the relay is killed (raw protocol ends).
    pub kill_sessions: usize,
    /// Sessions with a real agent (each on an X display of its own) live then as well.
    pub real_agents: usize,
    /// How long the customer's link is down in the outage, s (0: no outage stage).
    pub outage_secs: u64,
    /// The relay binary; default `$SIGHTLINE_RELAY_BIN`, else next to this executable. The
    /// agent and viewer binaries are taken from the same folder.
    pub relay_bin: Option<PathBuf>,
    /// Longest pairing time that meets the target, ms.
    pub pair_target_ms: f64,
}

impl Default for AttackOptions {
    fn default() -> Self {
        Self {
            slowloris: 5000,
            guessers: 500,
            guesses_per_address: 20,
            legit: 20,
            kill_sessions: 0,
            real_agents: 100,
            outage_secs: 30,
            relay_bin: None,
            pair_target_ms: PAIR_TARGET_MS,
        }
    }
}

impl AttackOptions {
    /// The smoke run: a tenth of everything, and the pairing bound of a debug build.
    pub fn quick() -> Self {
        Self {
            slowloris: 500,
            guessers: 50,
            guesses_per_address: 10,
            legit: 4,
            kill_sessions: 0,
            real_agents: 10,
            outage_secs: 30,
            relay_bin: None,
            pair_target_ms: SMOKE_PAIR_TARGET_MS,
        }
    }
}

/// Results of the flood.
#[derive(Debug, Clone, Serialize)]
pub struct FloodReport {
    /// Slowloris connections asked for, opened, and refused while opening.
    pub slowloris: (usize, usize, usize),
    /// Seconds it took to open them.
    pub slowloris_open_secs: f64,
    /// Raw slowloris connections the relay had closed by the end.
    pub slowloris_closed_by_relay: usize,
    /// Guessing addresses and /24s.
    pub guessers: (usize, usize),
    /// What the guessers got.
    pub guesses: flood::Guesses,
    /// Legitimate sessions asked for.
    pub legit: usize,
    /// Longest pairing time that meets the target, ms.
    pub pair_target_ms: f64,
    /// Each legitimate session, or why it failed.
    pub sessions: Vec<std::result::Result<legit::Legit, String>>,
    /// Relay open files: fresh, with the slowloris set open, at the end.
    pub relay_fds: (usize, usize, usize),
    /// Relay memory at the end.
    pub relay_memory: procfs::Memory,
}

/// Results of the kill.
#[derive(Debug, Clone, Serialize)]
pub struct KillReport {
    /// Sessions paired when the relay was killed.
    pub sessions: usize,
    /// Ends that noticed within the limit, of all ends.
    pub noticed: (usize, usize),
    /// Median and slowest notice, ms.
    pub notice_p50_ms: f64,
    /// Slowest notice, ms.
    pub notice_max_ms: f64,
    /// What each real agent did.
    pub agents: Vec<held::AfterKill>,
    /// Sessions the restarted relay recorded as ended abnormally, of those it had paired.
    pub recorded_abnormal: (usize, usize),
}

impl KillReport {
    /// Agents that noticed, released the key, and ended abnormally, each within its limit.
    pub fn agents_ok(&self) -> (usize, usize, usize) {
        let a = &self.agents;
        (
            a.iter().filter(|x| x.noticed_ms.is_some()).count(),
            a.iter().filter(|x| x.released_ms.is_some()).count(),
            a.iter()
                .filter(|x| x.ended.as_ref().is_some_and(|(normal, _)| !normal))
                .count(),
        )
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct AttackReport {
    /// The flood.
    pub flood: FloodReport,
    /// The kill.
    pub kill: KillReport,
    /// The outage, unless skipped.
    pub outage: Option<outage::OutageReport>,
    /// The relay binary measured.
    pub relay_binary: String,
}

impl AttackReport {
    /// Pairing times of the legitimate sessions that paired, ms, sorted.
    pub fn pair_times(&self) -> Vec<f64> {
        let mut t: Vec<f64> = self
            .flood
            .sessions
            .iter()
            .filter_map(|s| s.as_ref().ok().map(|l| l.pair_ms))
            .collect();
        t.sort_by(f64::total_cmp);
        t
    }

    /// Whether every target was met.
    pub fn passed(&self) -> bool {
        let t = self.pair_times();
        let n = self.kill.agents.len();
        t.len() == self.flood.legit
            && t.iter().all(|&ms| ms <= self.flood.pair_target_ms)
            && self.flood.guesses.hits == 0
            && self.kill.noticed.0 == self.kill.noticed.1
            && self.kill.agents_ok() == (n, n, n)
            && self.kill.recorded_abnormal.0 == self.kill.recorded_abnormal.1
            && self
                .outage
                .as_ref()
                .is_none_or(outage::OutageReport::passed)
    }

    /// Rows of (measure, measured, target).
    pub fn table(&self) -> Vec<[String; 3]> {
        let f = &self.flood;
        let t = self.pair_times();
        let median = t.get(t.len() / 2).copied().unwrap_or(f64::NAN);
        let slowest = t.last().copied().unwrap_or(f64::NAN);
        let answers: Vec<String> = f
            .guesses
            .answers
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        let mut rows = vec![
            [
                "slowloris connections held".into(),
                format!(
                    "{} of {} opened ({} refused) in {:.1} s; relay fds {} → {} → {}",
                    f.slowloris.1,
                    f.slowloris.0,
                    f.slowloris.2,
                    f.slowloris_open_secs,
                    f.relay_fds.0,
                    f.relay_fds.1,
                    f.relay_fds.2
                ),
                "relay stays up".into(),
            ],
            [
                "join flood".into(),
                format!(
                    "{} guesses from {} addresses in {} /24s: {}",
                    f.guesses.attempts,
                    f.guessers.0,
                    f.guessers.1,
                    answers.join(", ")
                ),
                "0 hits".into(),
            ],
            [
                "legitimate sessions paired".into(),
                format!("{} of {}", t.len(), f.legit),
                format!("{} of {}", f.legit, f.legit),
            ],
            [
                "pairing time under flood".into(),
                format!("median {median:.0} ms, slowest {slowest:.0} ms"),
                format!("each ≤ {:.0} ms", f.pair_target_ms),
            ],
            [
                "relay memory after the flood".into(),
                format!(
                    "{:.1} MiB RSS (peak {:.1} MiB)",
                    f.relay_memory.rss_kib as f64 / 1024.0,
                    f.relay_memory.hwm_kib as f64 / 1024.0
                ),
                "-".into(),
            ],
            [
                format!("relay SIGKILL under {} sessions", self.kill.sessions),
                format!(
                    "{} of {} ends noticed; median {:.0} ms, slowest {:.0} ms",
                    self.kill.noticed.0,
                    self.kill.noticed.1,
                    self.kill.notice_p50_ms,
                    self.kill.notice_max_ms
                ),
                format!("all within {} s", kill::NOTICE_LIMIT.as_secs()),
            ],
            self.agents_row(),
            [
                "relay restarted: sessions recorded as ended abnormally".into(),
                format!(
                    "{} of {}",
                    self.kill.recorded_abnormal.0, self.kill.recorded_abnormal.1
                ),
                "all".into(),
            ],
        ];
        rows.extend(self.outage.as_ref().map(outage_row));
        rows
    }
}

impl AttackReport {
    fn agents_row(&self) -> [String; 3] {
        let a = &self.kill.agents;
        let (noticed, released, abnormal) = self.kill.agents_ok();
        let mut release: Vec<f64> = a.iter().filter_map(|x| x.released_ms).collect();
        release.sort_by(f64::total_cmp);
        let median = release.get(release.len() / 2).copied().unwrap_or(f64::NAN);
        let slowest = release.last().copied().unwrap_or(f64::NAN);
        [
            format!("real agents holding a key (of {})", a.len()),
            format!(
                "{released} released the key (median {median:.0} ms, slowest {slowest:.0} ms); {noticed} said reconnecting; {abnormal} ended the session as abnormal"
            ),
            format!("all, within {} s", kill::NOTICE_LIMIT.as_secs()),
        ]
    }
}

fn outage_row(o: &outage::OutageReport) -> [String; 3] {
    let s = |ms: Option<f64>| ms.map_or("never".to_string(), |ms| format!("{:.1} s", ms / 1000.0));
    [
        format!("{} s outage of the customer's link", o.secs),
        format!(
            "noticed after {} (viewer) / {} (agent); resumed {} / {} after the link came back; {}; {}; {}",
            s(o.noticed_ms.0),
            s(o.noticed_ms.1),
            s(o.resumed_ms.0),
            s(o.resumed_ms.1),
            if o.same_code { "same verification code" } else { "code CHANGED" },
            if o.pictures_again { "pictures again" } else { "NO pictures" },
            if o.asked_again { "customer ASKED AGAIN" } else { "not asked again" },
        ),
        "resumed, same code, no new consent".into(),
    ]
}

/// Runs the scenarios, each against a relay of its own.
pub fn run(opts: &AttackOptions) -> Result<AttackReport> {
    raise_fd_limit();
    let bin = relay_proc::locate(opts.relay_bin.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let key = Arc::new(PrivateIdentity::generate(
        &mut rand_core::OsRng,
        MIN_PEER_BITS,
    )?);
    let flood = run_flood(&runtime, &bin, opts, key.clone())?;
    let kill = run_kill(&runtime, &bin, opts, key)?;
    let outage = match opts.outage_secs {
        0 => None,
        secs => Some(outage::run(&bin, secs).context("outage stage")?),
    };
    Ok(AttackReport {
        flood,
        kill,
        outage,
        relay_binary: bin.display().to_string(),
    })
}

fn run_flood(
    runtime: &tokio::runtime::Runtime,
    bin: &std::path::Path,
    opts: &AttackOptions,
    key: Arc<PrivateIdentity>,
) -> Result<FloodReport> {
    let setup = RelaySetup::init(bin)?;
    let accounts = (0..opts.legit)
        .map(|i| setup.add_account(&format!("legit{i:03}")))
        .collect::<Result<Vec<_>>>()?;
    let relay = setup.serve(None)?;
    let pid = relay.pid();
    let addr: SocketAddr = relay.addr.parse().context("relay address")?;
    let target = Target {
        addr: relay.addr.clone(),
        pin: relay.pin(),
        key,
    };
    let report = runtime.block_on(async {
        let fds_fresh = open_files(pid);
        let start = Instant::now();
        let held = flood::slowloris(addr, target.pin, opts.slowloris).await;
        let open_secs = start.elapsed().as_secs_f64();
        let fds_held = open_files(pid);
        let stop = Arc::new(AtomicBool::new(false));
        let guessing = tokio::spawn(flood::guessers(
            addr,
            target.pin,
            opts.guessers,
            opts.guesses_per_address,
            stop.clone(),
        ));
        // Let the guessers trip the relay-wide counter before the customers come.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let sessions = legit::sessions(&target, addr, accounts).await;
        stop.store(true, Ordering::Relaxed);
        let guesses = guessing
            .await
            .map_err(|e| anyhow!("guessers failed: {e}"))?;
        let report = FloodReport {
            slowloris: (opts.slowloris, held.len(), held.refused),
            slowloris_open_secs: open_secs,
            slowloris_closed_by_relay: held.raw_closed(),
            guessers: (opts.guessers, sources::Block::prefixes(opts.guessers)),
            guesses,
            legit: opts.legit,
            pair_target_ms: opts.pair_target_ms,
            sessions: sessions
                .into_iter()
                .map(|r| r.map_err(|e| format!("{e:#}")))
                .collect(),
            relay_fds: (fds_fresh, fds_held, open_files(pid)),
            relay_memory: procfs::memory(Pid::Other(pid)).unwrap_or_default(),
        };
        drop(held);
        Ok::<_, anyhow::Error>(report)
    });
    report.with_context(|| format!("relay log:\n{}", relay.log_tail()))
}

fn run_kill(
    runtime: &tokio::runtime::Runtime,
    bin: &std::path::Path,
    opts: &AttackOptions,
    key: Arc<PrivateIdentity>,
) -> Result<KillReport> {
    let setup = RelaySetup::init(bin)?;
    let concurrency = 2;
    let n_accounts =
        (opts.kill_sessions + opts.real_agents).div_ceil(LOGINS_PER_ACCOUNT) + concurrency + 1;
    let accounts = (0..n_accounts)
        .map(|i| setup.add_account(&format!("kill{i:03}")))
        .collect::<Result<Vec<_>>>()?;
    let mut relay = setup.serve(None)?;
    let target = Target {
        addr: relay.addr.clone(),
        pin: relay.pin(),
        key,
    };
    let pool = Arc::new(AccountPool::new(accounts));
    let agent_bin = bin.with_file_name("agent");
    let key_dir = tempfile::tempdir()?;
    if opts.real_agents > 0 {
        held::make_agent_key(&agent_bin, key_dir.path())?;
    }
    let (paired, holding) = runtime
        .block_on(async {
            let paired =
                pairing::pair_many(&target, &pool, opts.kill_sessions, concurrency).await?;
            let mut holding = Vec::with_capacity(opts.real_agents);
            for i in 0..opts.real_agents {
                let held = held::hold(&target, &pool, &agent_bin, key_dir.path(), "ShiftLeft")
                    .await
                    .with_context(|| format!("real agent {i}"))?;
                holding.push(held);
            }
            Ok::<_, anyhow::Error>((paired, holding))
        })
        .with_context(|| format!("relay log:\n{}", relay.log_tail()))?;
    let sessions = paired.len() + holding.len();
    let ends: Vec<_> = paired
        .into_iter()
        .flat_map(|p| [p.operator, p.agent])
        .collect();
    let killed_at = Instant::now();
    relay.kill_now()?;
    let watching: Vec<_> = holding
        .into_iter()
        .map(|h| std::thread::spawn(move || h.watch(killed_at)))
        .collect();
    let mut noticed = runtime.block_on(kill::watch(ends, killed_at))?;
    let agents: Vec<held::AfterKill> = watching
        .into_iter()
        .map(|t| t.join().map_err(|_| anyhow!("watching an agent failed")))
        .collect::<Result<_>>()?;
    // Both ends of the real agents' sessions count as ends too.
    noticed.after_ms.extend(
        agents
            .iter()
            .flat_map(|a| [a.operator_noticed_ms, a.noticed_ms]),
    );
    relay.restart()?;
    let recorded_abnormal = recorded_abnormal(&relay, sessions)?;
    let mut times: Vec<u64> = noticed
        .after_ms
        .iter()
        .flatten()
        .map(|&ms| (ms * 1000.0) as u64)
        .collect();
    times.sort_unstable();
    Ok(KillReport {
        sessions,
        noticed: (times.len(), noticed.after_ms.len()),
        notice_p50_ms: quantile(&times, 0.5) as f64 / 1000.0,
        notice_max_ms: times.last().copied().unwrap_or(0) as f64 / 1000.0,
        agents,
        recorded_abnormal,
    })
}

/// Of the `sessions` the relay paired, how many its record (`relay sessions --json`) shows
/// as ended abnormally because the relay stopped.
fn recorded_abnormal(relay: &relay_proc::RelayProcess, sessions: usize) -> Result<(usize, usize)> {
    let limit = (sessions + 10).to_string();
    let out = relay.cli(&["sessions", "--json", "--limit", &limit])?;
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&out).context("`relay sessions --json` is not a JSON array")?;
    let stopped = all
        .iter()
        .filter(|s| {
            s["abnormal"] == true
                && s["end_reason"] == sightline_relay::store::sessions::RELAY_STOPPED
        })
        .count();
    Ok((stopped, all.len().max(sessions)))
}

/// Open file descriptors of `pid` (0 if unreadable).
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}
