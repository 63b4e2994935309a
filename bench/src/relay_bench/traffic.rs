//! What the benchmark sends through paired sessions (and, for comparison, over direct loopback
//! connections): a bulk stream for throughput, and paced timestamped messages for the many-
//! session load and its latency. Always agent → operator, the direction video takes.
//!
//! The relay forwards bytes unread, so the messages are not Noise-encrypted here: the client
//! spends its CPU on moving bytes, not on AES, and stays out of the relay's way on a small
//! machine.

use crate::relay_bench::procfs::{self, Pid};
use anyhow::{anyhow, Context, Result};
use sightline_net::stream::BoxIo;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Write size of the bulk stream.
const BULK_CHUNK: usize = 64 * 1024;
/// Bytes at the start of a paced message: the send time, nanoseconds since the run's base.
pub const STAMP: usize = 8;

/// CPU seconds of the relay and of this process, and the wall clock, at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    at: Instant,
    relay_cpu: f64,
    client_cpu: f64,
    machine_busy: f64,
}

impl Snapshot {
    /// Now.
    pub fn take(relay: u32) -> Result<Self> {
        Ok(Self {
            at: Instant::now(),
            relay_cpu: procfs::cpu_seconds(Pid::Other(relay))?,
            client_cpu: procfs::cpu_seconds(Pid::This)?,
            machine_busy: procfs::machine_busy_seconds()?,
        })
    }

    /// What was spent from `self` to `later`.
    pub fn until(&self, later: &Snapshot) -> Spent {
        Spent {
            wall_secs: later.at.duration_since(self.at).as_secs_f64(),
            relay_cpu_secs: (later.relay_cpu - self.relay_cpu).max(0.0),
            client_cpu_secs: (later.client_cpu - self.client_cpu).max(0.0),
            other_cpu_secs: (later.machine_busy
                - self.machine_busy
                - (later.relay_cpu - self.relay_cpu)
                - (later.client_cpu - self.client_cpu))
                .max(0.0),
        }
    }
}

/// Wall time and CPU time over an interval.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Spent {
    /// Wall-clock seconds.
    pub wall_secs: f64,
    /// Relay CPU seconds (user + system, all threads).
    pub relay_cpu_secs: f64,
    /// CPU seconds of this benchmark process (both ends of every session).
    pub client_cpu_secs: f64,
    /// CPU seconds of everything else on the machine: other work running at the same time
    /// skews delays and achieved rates (not the relay's CPU figures).
    pub other_cpu_secs: f64,
}

impl Spent {
    /// Relay CPU as a number of cores kept busy.
    pub fn relay_cores(&self) -> f64 {
        ratio(self.relay_cpu_secs, self.wall_secs)
    }

    /// Client CPU as a number of cores kept busy.
    pub fn client_cores(&self) -> f64 {
        ratio(self.client_cpu_secs, self.wall_secs)
    }

    /// Everything else, in cores.
    pub fn other_cores(&self) -> f64 {
        ratio(self.other_cpu_secs, self.wall_secs)
    }
}

/// `a / b`, 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Bytes moved through one session by [`bulk`], with the CPU spent.
#[derive(Debug, Clone, Copy)]
pub struct Bulk {
    /// Bytes the operator end received during the measured interval.
    pub bytes: u64,
    /// The measured interval.
    pub spent: Spent,
}

/// Sends as fast as the agent end can write for `warmup + measure`, measuring `measure`.
pub async fn bulk(
    mut agent: BoxIo,
    mut operator: BoxIo,
    relay: u32,
    warmup: Duration,
    measure: Duration,
) -> Result<Bulk> {
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let writer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let chunk = vec![0x5au8; BULK_CHUNK];
            while !stop.load(Ordering::Relaxed) {
                agent.write_all(&chunk).await?;
            }
            agent.shutdown().await
        })
    };
    let reader = {
        let received = received.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; BULK_CHUNK];
            loop {
                let n = operator.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<(), std::io::Error>(());
                }
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
        })
    };
    tokio::time::sleep(warmup).await;
    let (b0, s0) = (received.load(Ordering::Relaxed), Snapshot::take(relay)?);
    tokio::time::sleep(measure).await;
    let (b1, s1) = (received.load(Ordering::Relaxed), Snapshot::take(relay)?);
    stop.store(true, Ordering::Relaxed);
    writer.await?.context("bulk writer")?;
    reader.await?.context("bulk reader")?;
    Ok(Bulk {
        bytes: b1 - b0,
        spent: s0.until(&s1),
    })
}

/// One one-way connection for the paced load: bytes go from `from` to `to`.
#[derive(Debug)]
pub struct Lane {
    /// Sending end.
    pub from: BoxIo,
    /// Receiving end.
    pub to: BoxIo,
}

/// `count` direct loopback connections, set up like the relay's (no Nagle).
pub async fn direct_lanes(count: usize) -> Result<Vec<Lane>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut lanes = Vec::with_capacity(count);
    for _ in 0..count {
        let (from, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (from, (to, _)) = (from?, accepted?);
        from.set_nodelay(true)?;
        to.set_nodelay(true)?;
        // Boxed like the relayed lanes, so both pay the same dispatch.
        lanes.push(Lane {
            from: Box::new(from),
            to: Box::new(to),
        });
    }
    Ok(lanes)
}

/// How the paced load runs.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Bytes per message (at least [`STAMP`]).
    pub message_bytes: usize,
    /// Time between two messages of one lane.
    pub period: Duration,
    /// Running before measuring (every lane sending).
    pub warmup: Duration,
    /// Measured interval.
    pub measure: Duration,
}

/// What one group of lanes saw during the measured interval.
#[derive(Debug, Default)]
pub struct LaneStats {
    /// One-way delays, nanoseconds, one per message received.
    pub delays_ns: Vec<u64>,
    /// Bytes received.
    pub bytes: u64,
}

/// Results of [`paced`].
#[derive(Debug)]
pub struct Paced {
    /// Through the relay.
    pub relayed: LaneStats,
    /// Over direct loopback connections.
    pub direct: LaneStats,
    /// CPU over the measured interval.
    pub spent: Spent,
    /// Relay memory at the end of the measured interval, under load.
    pub memory: procfs::Memory,
}

/// Runs `relayed` and `direct` lanes side by side, each sending one message per period with
/// start times spread evenly over the period.
pub async fn paced(relayed: Vec<Lane>, direct: Vec<Lane>, relay: u32, p: Pacing) -> Result<Paced> {
    if p.message_bytes < STAMP {
        return Err(anyhow!("messages must hold the {STAMP}-byte timestamp"));
    }
    let base = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let recording = Arc::new(AtomicBool::new(false));
    let total = relayed.len() + direct.len();
    let mut senders = JoinSet::new();
    let mut receivers = JoinSet::new();
    for (i, (lane, is_relayed)) in relayed
        .into_iter()
        .map(|l| (l, true))
        .chain(direct.into_iter().map(|l| (l, false)))
        .enumerate()
    {
        let phase = p.period.mul_f64(i as f64 / total as f64);
        senders.spawn(send_paced(lane.from, phase, p, base, stop.clone()));
        let rec = recording.clone();
        receivers.spawn(async move {
            receive_paced(lane.to, p.message_bytes, base, rec)
                .await
                .map(|s| (is_relayed, s))
        });
    }
    tokio::time::sleep(p.warmup).await;
    let s0 = Snapshot::take(relay)?;
    recording.store(true, Ordering::Relaxed);
    tokio::time::sleep(p.measure).await;
    recording.store(false, Ordering::Relaxed);
    let s1 = Snapshot::take(relay)?;
    let memory = procfs::memory(Pid::Other(relay))?;
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = senders.join_next().await {
        r?.context("paced sender")?;
    }
    let (mut through, mut direct) = (LaneStats::default(), LaneStats::default());
    while let Some(r) = receivers.join_next().await {
        let (is_relayed, stats) = r?.context("paced receiver")?;
        let into = if is_relayed {
            &mut through
        } else {
            &mut direct
        };
        into.bytes += stats.bytes;
        into.delays_ns.extend(stats.delays_ns);
    }
    Ok(Paced {
        relayed: through,
        direct,
        spent: s0.until(&s1),
        memory,
    })
}

async fn send_paced(
    mut to: BoxIo,
    phase: Duration,
    p: Pacing,
    base: Instant,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    tokio::time::sleep(phase).await;
    let mut tick = tokio::time::interval(p.period);
    // A late tick is made up for at once, so each lane keeps its average rate even when this
    // process is slow to be scheduled; delays are stamped at the actual send, so catching up
    // does not count as delay.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut msg = vec![0xa5u8; p.message_bytes];
    loop {
        tick.tick().await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let now = elapsed_ns(base);
        msg[..STAMP].copy_from_slice(&now.to_le_bytes());
        to.write_all(&msg).await?;
    }
    to.shutdown().await?;
    Ok(())
}

async fn receive_paced(
    mut from: BoxIo,
    size: usize,
    base: Instant,
    recording: Arc<AtomicBool>,
) -> Result<LaneStats> {
    let mut buf = vec![0u8; size];
    let mut stats = LaneStats::default();
    loop {
        match from.read_exact(&mut buf).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(stats),
            Err(e) => return Err(e.into()),
        }
        let now = elapsed_ns(base);
        if recording.load(Ordering::Relaxed) {
            let mut stamp = [0u8; STAMP];
            stamp.copy_from_slice(&buf[..STAMP]);
            stats
                .delays_ns
                .push(now.saturating_sub(u64::from_le_bytes(stamp)));
            stats.bytes += size as u64;
        }
    }
}

fn elapsed_ns(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The `q` quantile (0..=1) of sorted `values`, nearest rank; 0 when empty.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&v, 0.0), 1);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
