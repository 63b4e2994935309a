//! `relay-bench`: runs the relay forwarding benchmark ([`sightline_bench::relay_bench`]) against
//! the real `relay` binary and prints a table (measure, measured, target) and the full report as
//! JSON. Build both in release for numbers worth quoting:
//!
//! ```sh
//! cargo build --release -p sightline-relay --bin relay -p sightline-bench --bin relay-bench
//! target/release/relay-bench --json target/relay-bench.json
//! ```

use anyhow::{Context, Result};
use clap::Parser;
use sightline_bench::relay_bench::{self, RelayBenchOptions};
use std::path::PathBuf;

/// Measure the relay: forwarding throughput per core, many paired sessions (CPU, memory), added
/// latency.
#[derive(Debug, Parser)]
#[command(name = "relay-bench")]
struct Args {
    /// Paired sessions for the load (default 1000).
    #[arg(long)]
    sessions: Option<usize>,
    /// Measured seconds of the load (default 10).
    #[arg(long)]
    seconds: Option<u64>,
    /// Measured seconds of the one-session throughput run (default 5).
    #[arg(long)]
    throughput_seconds: Option<u64>,
    /// Bit rate of each session under load (default 1000000).
    #[arg(long)]
    rate_bits_per_sec: Option<u64>,
    /// Messages per second per session (default 30).
    #[arg(long)]
    messages_per_sec: Option<u32>,
    /// Direct loopback connections beside the relayed ones, the latency baseline (default 50).
    #[arg(long)]
    direct_lanes: Option<usize>,
    /// Logins in flight while pairing (default 2).
    #[arg(long)]
    login_concurrency: Option<usize>,
    /// The relay binary (default: $SIGHTLINE_RELAY_BIN, else next to this program).
    #[arg(long)]
    relay: Option<PathBuf>,
    /// Leave glibc's dynamic mmap threshold in the relay (argon2's freed 19 MiB buffers then
    /// stay in its RSS; see `RelayBenchOptions::mmap_threshold`).
    #[arg(long)]
    default_malloc: bool,
    /// Run the relay and this program under SCHED_RR during the paced load (root; `chrt`), so
    /// that other work on a shared machine does not skew the delays.
    #[arg(long)]
    realtime_load: bool,
    /// Start from the smoke-test settings (few sessions, 2 s) instead of the full run.
    #[arg(long)]
    quick: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

impl Args {
    fn options(&self) -> RelayBenchOptions {
        let mut o = if self.quick {
            RelayBenchOptions::quick()
        } else {
            RelayBenchOptions::default()
        };
        o.sessions = self.sessions.unwrap_or(o.sessions);
        o.seconds = self.seconds.unwrap_or(o.seconds);
        o.throughput_seconds = self.throughput_seconds.unwrap_or(o.throughput_seconds);
        o.rate_bits_per_sec = self.rate_bits_per_sec.unwrap_or(o.rate_bits_per_sec);
        o.messages_per_sec = self.messages_per_sec.unwrap_or(o.messages_per_sec);
        o.direct_lanes = self.direct_lanes.unwrap_or(o.direct_lanes);
        o.login_concurrency = self.login_concurrency.unwrap_or(o.login_concurrency);
        o.relay_bin = self.relay.clone().or(o.relay_bin);
        o.realtime_load = self.realtime_load;
        if self.default_malloc {
            o.mmap_threshold = None;
        }
        o
    }
}

fn table(rows: &[[String; 3]]) -> String {
    let header = [
        "measure".to_string(),
        "measured".to_string(),
        "target".to_string(),
    ];
    let mut widths = [0usize; 3];
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &[String; 3]| {
        format!(
            "| {:w0$} | {:w1$} | {:w2$} |\n",
            row[0],
            row[1],
            row[2],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )
    };
    let mut out = line(&header);
    out.push_str(&format!(
        "|{}|{}|{}|\n",
        "-".repeat(widths[0] + 2),
        "-".repeat(widths[1] + 2),
        "-".repeat(widths[2] + 2)
    ));
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

fn main() -> Result<()> {
    let args = Args::parse();
    let opts = args.options();
    eprintln!(
        "relay-bench: {} sessions x {} bit/s for {} s ({} messages of {} bytes per second each)",
        opts.sessions,
        opts.rate_bits_per_sec,
        opts.seconds,
        opts.messages_per_sec,
        opts.message_bytes()
    );
    let report = relay_bench::run(&opts)?;
    if !report.release_build {
        eprintln!(
            "relay-bench: warning: {} is not a release build; do not quote these numbers",
            report.relay_binary
        );
    }
    print!("{}", table(&report.rows()));
    let json = serde_json::to_string_pretty(&report)?;
    println!("{json}");
    if let Some(path) = &args.json {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
