//! Relay forwarding benchmarks: throughput per core, many paired sessions, added latency, memory.
//!
//! Runs against the real `relay` binary (a release build for numbers worth quoting) in a
//! temporary data directory on loopback, with the default configuration (the per-address
//! connection caps lifted, every client being 127.0.0.1) and policy: operators
//! log in with password and TOTP (or a recovery code), as the relay requires. The benchmark
//! then plays both ends of every session itself ([`pairing`]) and sends opaque bytes
//! ([`traffic`]); CPU and memory come from `/proc` ([`procfs`]).
//!
//! Order of a run: warm-up sessions (so one-time allocations are made), (a) one session at full
//! speed, the relay's baseline memory, (b) `sessions` paired sessions each sending
//! `rate_bits_per_sec` in paced messages for `seconds`, beside `direct_lanes` direct loopback
//! connections carrying the same messages, (c) the delays of both.

pub mod pairing;
pub mod procfs;
pub mod relay_proc;
pub mod traffic;

use anyhow::{bail, Context, Result};
use pairing::{AccountPool, Target};
use procfs::Pid;
use relay_proc::{RelaySetup, LOGINS_PER_ACCOUNT};
use serde::Serialize;
use sightline_core::identity::{PrivateIdentity, MIN_PEER_BITS};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use traffic::{quantile, ratio, Lane, Pacing, Spent};

/// Target: forwarding throughput per core of relay CPU.
pub const TARGET_GBIT_PER_CORE: f64 = 5.0;
/// Target: paired sessions at once.
pub const TARGET_SESSIONS: usize = 1000;
/// Target: relay CPU for [`TARGET_SESSIONS`] sessions at 1 Mbit/s, in cores.
pub const TARGET_LOAD_CORES: f64 = 1.0;
/// Target: relay memory per paired session.
pub const TARGET_KIB_PER_SESSION: f64 = 256.0;
/// Target: 99th percentile of the delay the relay adds.
pub const TARGET_ADDED_P99_MS: f64 = 1.0;

/// What to run.
#[derive(Debug, Clone)]
pub struct RelayBenchOptions {
    /// Paired sessions for the load, memory and latency measurements.
    pub sessions: usize,
    /// Measured seconds of the load.
    pub seconds: u64,
    /// Measured seconds of the single-session throughput run.
    pub throughput_seconds: u64,
    /// Bit rate each session sends during the load.
    pub rate_bits_per_sec: u64,
    /// Messages per second each session sends (the rate is split into this many messages).
    pub messages_per_sec: u32,
    /// Direct loopback connections carrying the same messages, the latency baseline.
    pub direct_lanes: usize,
    /// Logins in flight while pairing (each costs the relay an argon2id hash and an RSA
    /// signature; more than the cores only queues).
    pub login_concurrency: usize,
    /// The relay binary; default `$SIGHTLINE_RELAY_BIN`, else next to this executable.
    pub relay_bin: Option<PathBuf>,
    /// Pins glibc's `M_MMAP_THRESHOLD` in the relay (bytes; `None` leaves glibc's dynamic
    /// threshold). Each login's argon2id hash takes 19 MiB; once one is freed, glibc raises its
    /// threshold and later hashes come from per-thread arenas that keep the memory, which adds
    /// tens of MiB to the relay's RSS at random and would swamp the per-session figure. With
    /// the threshold pinned (128 KiB, glibc's initial value) hashes are always returned to the
    /// system and the growth left is what sessions hold.
    pub mmap_threshold: Option<usize>,
    /// Runs the relay and the benchmark under `SCHED_RR` (with `chrt`, as root) for the paced
    /// load only, so that other work on a shared machine cannot hold them off the CPU and the
    /// delays show the relay's own. Needs no more CPU than the load does (under a core on two).
    pub realtime_load: bool,
}

impl Default for RelayBenchOptions {
    fn default() -> Self {
        Self {
            sessions: TARGET_SESSIONS,
            seconds: 10,
            throughput_seconds: 5,
            rate_bits_per_sec: 1_000_000,
            messages_per_sec: 30,
            direct_lanes: 50,
            login_concurrency: 2,
            relay_bin: None,
            mmap_threshold: Some(128 * 1024),
            realtime_load: false,
        }
    }
}

impl RelayBenchOptions {
    /// A smoke test: a few sessions, two seconds.
    pub fn quick() -> Self {
        Self {
            sessions: 4,
            seconds: 2,
            throughput_seconds: 1,
            direct_lanes: 4,
            ..Self::default()
        }
    }

    /// Bytes per paced message: the rate split into `messages_per_sec` messages.
    pub fn message_bytes(&self) -> usize {
        let per_sec = self.rate_bits_per_sec / 8;
        usize::try_from(per_sec / u64::from(self.messages_per_sec.max(1)))
            .unwrap_or(usize::MAX)
            .max(traffic::STAMP)
    }

    fn check(&self) -> Result<()> {
        if self.sessions == 0 || self.seconds == 0 || self.throughput_seconds == 0 {
            bail!("sessions, seconds and throughput_seconds must be at least 1");
        }
        if self.messages_per_sec == 0 || self.rate_bits_per_sec == 0 {
            bail!("rate and messages per second must be above 0");
        }
        Ok(())
    }
}

/// (a) One session at full speed.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputReport {
    /// Bytes forwarded in the measured interval.
    pub bytes: u64,
    /// CPU and wall time of the interval.
    pub spent: Spent,
    /// Forwarded bit rate, Gbit/s.
    pub gbit_per_sec: f64,
    /// Forwarded bits per second of relay CPU, Gbit/s per core.
    pub gbit_per_relay_core: f64,
}

/// Pairing the load's sessions.
#[derive(Debug, Clone, Serialize)]
pub struct PairingReport {
    /// Sessions asked for.
    pub requested: usize,
    /// Sessions paired.
    pub paired: usize,
    /// Operator accounts enrolled (each gives [`LOGINS_PER_ACCOUNT`] logins at once).
    pub accounts: usize,
    /// Logins in flight.
    pub concurrency: usize,
    /// CPU and wall time of pairing them all.
    pub spent: Spent,
    /// Relay CPU per paired session (login, certificate, code, join), milliseconds.
    pub relay_cpu_ms_per_session: f64,
}

/// (b) Many sessions at a steady rate.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Sessions sending.
    pub sessions: usize,
    /// Bit rate of each.
    pub rate_bits_per_sec: u64,
    /// Message size.
    pub message_bytes: usize,
    /// Messages per second per session.
    pub messages_per_sec: u32,
    /// Bytes the operator ends received during the measured interval.
    pub bytes_forwarded: u64,
    /// Aggregate forwarded rate, Mbit/s.
    pub forwarded_mbit_per_sec: f64,
    /// CPU and wall time of the measured interval.
    pub spent: Spent,
    /// Relay CPU in cores (1.0 = one core busy).
    pub relay_cores: f64,
    /// Benchmark-process CPU in cores.
    pub client_cores: f64,
}

/// Relay memory (KiB) along the run.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// Just started, before any connection.
    pub fresh: procfs::Memory,
    /// After warm-up and the throughput run, before pairing the load's sessions.
    pub before_pairing: procfs::Memory,
    /// With every session paired, idle.
    pub paired_idle: procfs::Memory,
    /// At the end of the load.
    pub under_load: procfs::Memory,
    /// After every session closed.
    pub after_close: procfs::Memory,
    /// (under load − before pairing) / sessions.
    pub kib_per_session: f64,
    /// (paired idle − before pairing) / sessions.
    pub kib_per_idle_session: f64,
}

/// Delay percentiles, microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Messages measured.
    pub samples: usize,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl Percentiles {
    fn of(mut ns: Vec<u64>) -> Self {
        ns.sort_unstable();
        let us = |q: f64| quantile(&ns, q) as f64 / 1000.0;
        Self {
            samples: ns.len(),
            p50_us: us(0.5),
            p90_us: us(0.9),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: us(1.0),
        }
    }
}

/// (c) One-way delay under the load of (b).
#[derive(Debug, Clone, Serialize)]
pub struct LatencyReport {
    /// Through the relay.
    pub relayed: Percentiles,
    /// Over direct loopback connections, at the same time.
    pub direct: Percentiles,
    /// Relayed p50 − direct p50, microseconds.
    pub added_p50_us: f64,
    /// Relayed p99 − direct p99, microseconds.
    pub added_p99_us: f64,
}

/// Everything measured.
#[derive(Debug, Clone, Serialize)]
pub struct RelayReport {
    /// The relay binary measured.
    pub relay_binary: String,
    /// Whether it is a release build (by its path); debug numbers are not worth quoting.
    pub release_build: bool,
    /// Whether the paced load ran under `SCHED_RR`.
    pub realtime_load: bool,
    /// glibc `M_MMAP_THRESHOLD` pinned in the relay, bytes (`None`: glibc's dynamic default).
    pub mmap_threshold: Option<usize>,
    /// CPU cores of this machine (relay and benchmark share them).
    pub cores: usize,
    /// (a)
    pub throughput: ThroughputReport,
    /// Pairing for (b).
    pub pairing: PairingReport,
    /// (b)
    pub load: LoadReport,
    /// (b) memory.
    pub memory: MemoryReport,
    /// (c)
    pub latency: LatencyReport,
    /// Warning and error lines in the relay's log.
    pub relay_log_warnings: Vec<String>,
}

impl RelayReport {
    /// (measure, measured value, target) rows for a table.
    pub fn rows(&self) -> Vec<[String; 3]> {
        let t = &self.throughput;
        let l = &self.load;
        let m = &self.memory;
        let lat = &self.latency;
        let mib = |k: u64| k as f64 / 1024.0;
        vec![
            [
                "forwarding, one session (loopback)".into(),
                format!(
                    "{:.2} Gbit/s, relay {:.2} cores",
                    t.gbit_per_sec,
                    t.spent.relay_cores()
                ),
                "-".into(),
            ],
            [
                "forwarding per core of relay CPU".into(),
                format!("{:.2} Gbit/s per core", t.gbit_per_relay_core),
                format!(">= {TARGET_GBIT_PER_CORE} Gbit/s per core"),
            ],
            [
                "paired sessions".into(),
                format!("{} of {}", self.pairing.paired, self.pairing.requested),
                format!("{TARGET_SESSIONS}"),
            ],
            [
                "relay CPU to pair a session".into(),
                format!("{:.1} ms", self.pairing.relay_cpu_ms_per_session),
                "-".into(),
            ],
            [
                format!(
                    "relay CPU, {} sessions x {} kbit/s",
                    l.sessions,
                    l.rate_bits_per_sec / 1000
                ),
                format!(
                    "{:.3} cores ({:.0} Mbit/s forwarded; {:.2} cores per Gbit/s)",
                    l.relay_cores,
                    l.forwarded_mbit_per_sec,
                    ratio(l.relay_cores * 1000.0, l.forwarded_mbit_per_sec)
                ),
                format!("<= {TARGET_LOAD_CORES} core"),
            ],
            [
                "relay memory per paired session".into(),
                format!(
                    "{:.1} KiB under load, {:.1} KiB idle (RSS {:.1} -> {:.1} MiB)",
                    m.kib_per_session,
                    m.kib_per_idle_session,
                    mib(m.before_pairing.rss_kib),
                    mib(m.under_load.rss_kib)
                ),
                format!("<= {TARGET_KIB_PER_SESSION} KiB"),
            ],
            [
                "relay memory: fresh, peak (VmHWM)".into(),
                format!(
                    "{:.1} MiB, {:.1} MiB",
                    mib(m.fresh.rss_kib),
                    mib(m.under_load.hwm_kib)
                ),
                "-".into(),
            ],
            [
                "added one-way delay p50".into(),
                format!(
                    "{:.0} us (relayed {:.0}, direct {:.0})",
                    lat.added_p50_us, lat.relayed.p50_us, lat.direct.p50_us
                ),
                "-".into(),
            ],
            [
                "added one-way delay p99".into(),
                format!(
                    "{:.0} us (relayed {:.0}, direct {:.0})",
                    lat.added_p99_us, lat.relayed.p99_us, lat.direct.p99_us
                ),
                format!("<= {TARGET_ADDED_P99_MS} ms"),
            ],
            [
                "benchmark client CPU".into(),
                format!(
                    "{:.2} cores at full speed, {:.2} cores under load",
                    t.spent.client_cores(),
                    l.client_cores
                ),
                "not the bottleneck".into(),
            ],
            [
                "other processes' CPU meanwhile".into(),
                format!(
                    "{:.2} cores at full speed, {:.2} cores under load (of {})",
                    t.spent.other_cores(),
                    l.spent.other_cores(),
                    self.cores
                ),
                "~0 (else delays are skewed)".into(),
            ],
        ]
    }
}

/// Runs the whole benchmark.
pub fn run(opts: &RelayBenchOptions) -> Result<RelayReport> {
    opts.check()?;
    raise_fd_limit();
    let bin = relay_proc::locate(opts.relay_bin.as_deref())?;
    let setup = RelaySetup::init(&bin)?;
    let concurrency = opts.login_concurrency.max(1);
    // Warm-up sessions, the throughput session, the load's sessions; one spare account per
    // worker, which may stop mid-account.
    let logins = concurrency + 1 + opts.sessions;
    let n_accounts = logins.div_ceil(LOGINS_PER_ACCOUNT) + concurrency;
    let accounts = (0..n_accounts)
        .map(|i| setup.add_account(&format!("bench{i:05}")))
        .collect::<Result<Vec<_>>>()?;
    let mut relay = setup.serve(opts.mmap_threshold)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let pool = Arc::new(AccountPool::new(accounts));
    let result = runtime.block_on(measure(opts, &relay, &pool, n_accounts));
    let running = relay.running();
    let mut report = result.with_context(|| format!("relay log:\n{}", relay.log_tail()))?;
    if !running {
        bail!("the relay stopped during the run:\n{}", relay.log_tail());
    }
    report.relay_binary = bin.display().to_string();
    report.release_build = bin.components().any(|c| c.as_os_str() == "release");
    report.relay_log_warnings = relay.warnings();
    Ok(report)
}

async fn measure(
    opts: &RelayBenchOptions,
    relay: &relay_proc::RelayProcess,
    pool: &Arc<AccountPool>,
    accounts: usize,
) -> Result<RelayReport> {
    let pid = relay.pid();
    let concurrency = opts.login_concurrency.max(1);
    let key = tokio::task::spawn_blocking(|| {
        PrivateIdentity::generate(&mut rand_core::OsRng, MIN_PEER_BITS)
    })
    .await??;
    let target = Target {
        addr: relay.addr.clone(),
        pin: relay.pin(),
        key: Arc::new(key),
    };
    let settle = Duration::from_millis(500);
    let fresh = procfs::memory(Pid::Other(pid))?;

    // Warm-up: logins in parallel as during pairing, so their one-time allocations (argon2's
    // 19 MiB per hash in flight, thread arenas) are in the baseline.
    drop(pairing::pair_many(&target, pool, concurrency, concurrency).await?);

    // (a)
    let mut one = pairing::pair_many(&target, pool, 1, 1).await?;
    let session = one.pop().context("no session for the throughput run")?;
    let bulk = traffic::bulk(
        session.agent,
        session.operator,
        pid,
        Duration::from_millis(500),
        Duration::from_secs(opts.throughput_seconds),
    )
    .await?;
    let bits = bulk.bytes as f64 * 8.0;
    let throughput = ThroughputReport {
        bytes: bulk.bytes,
        spent: bulk.spent,
        gbit_per_sec: ratio(bits, bulk.spent.wall_secs) / 1e9,
        gbit_per_relay_core: ratio(bits, bulk.spent.relay_cpu_secs) / 1e9,
    };
    tokio::time::sleep(settle).await;

    // (b) pairing
    let before_pairing = procfs::memory(Pid::Other(pid))?;
    let s0 = traffic::Snapshot::take(pid)?;
    let sessions = pairing::pair_many(&target, pool, opts.sessions, concurrency).await?;
    let s1 = traffic::Snapshot::take(pid)?;
    let pair_spent = s0.until(&s1);
    let paired = sessions.len();
    let pairing = PairingReport {
        requested: opts.sessions,
        paired,
        accounts,
        concurrency,
        spent: pair_spent,
        relay_cpu_ms_per_session: ratio(pair_spent.relay_cpu_secs * 1000.0, paired as f64),
    };
    tokio::time::sleep(settle).await;
    let paired_idle = procfs::memory(Pid::Other(pid))?;

    // (b) load and (c) delays
    let relayed: Vec<Lane> = sessions
        .into_iter()
        .map(|s| Lane {
            from: s.agent,
            to: s.operator,
        })
        .collect();
    let direct = traffic::direct_lanes(opts.direct_lanes).await?;
    let pacing = Pacing {
        message_bytes: opts.message_bytes(),
        period: Duration::from_secs(1) / opts.messages_per_sec.max(1),
        warmup: Duration::from_secs(1),
        measure: Duration::from_secs(opts.seconds),
    };
    if opts.realtime_load {
        realtime(&[pid, std::process::id()], true)?;
    }
    let paced = traffic::paced(relayed, direct, pid, pacing).await;
    if opts.realtime_load {
        realtime(&[pid, std::process::id()], false)?;
    }
    let paced = paced?;
    tokio::time::sleep(settle * 2).await;
    let after_close = procfs::memory(Pid::Other(pid))?;

    let per = |after: &procfs::Memory| {
        ratio(
            after.rss_kib.saturating_sub(before_pairing.rss_kib) as f64,
            paired as f64,
        )
    };
    let memory = MemoryReport {
        fresh,
        before_pairing,
        paired_idle,
        under_load: paced.memory,
        after_close,
        kib_per_session: per(&paced.memory),
        kib_per_idle_session: per(&paired_idle),
    };
    let load = LoadReport {
        sessions: paired,
        rate_bits_per_sec: opts.rate_bits_per_sec,
        message_bytes: pacing.message_bytes,
        messages_per_sec: opts.messages_per_sec,
        bytes_forwarded: paced.relayed.bytes,
        forwarded_mbit_per_sec: ratio(paced.relayed.bytes as f64 * 8.0, paced.spent.wall_secs)
            / 1e6,
        spent: paced.spent,
        relay_cores: paced.spent.relay_cores(),
        client_cores: paced.spent.client_cores(),
    };
    let relayed = Percentiles::of(paced.relayed.delays_ns);
    let direct = Percentiles::of(paced.direct.delays_ns);
    let latency = LatencyReport {
        added_p50_us: relayed.p50_us - direct.p50_us,
        added_p99_us: relayed.p99_us - direct.p99_us,
        relayed,
        direct,
    };
    Ok(RelayReport {
        relay_binary: String::new(),
        release_build: false,
        mmap_threshold: opts.mmap_threshold,
        realtime_load: opts.realtime_load,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        throughput,
        pairing,
        load,
        memory,
        latency,
        relay_log_warnings: Vec::new(),
    })
}

/// Moves every thread of `pids` to `SCHED_RR` priority 10 (`on`) or back to `SCHED_OTHER`.
fn realtime(pids: &[u32], on: bool) -> Result<()> {
    for pid in pids {
        let pid = pid.to_string();
        let args: &[&str] = if on {
            &["-a", "-r", "-p", "10", &pid]
        } else {
            &["-a", "-o", "-p", "0", &pid]
        };
        let status = std::process::Command::new("chrt")
            .args(args)
            .status()
            .context("cannot run chrt")?;
        if !status.success() {
            bail!("chrt {} failed (root needed)", args.join(" "));
        }
    }
    Ok(())
}

/// Raises this process's open-file limit to its hard limit (the relay child inherits it): two
/// sockets per session on each side.
pub fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}
