//! `attack`: the relay load and fault harness ([`sightline_bench::attack`]) against the real
//! `relay` binary on loopback. Prints a table (measure, measured, target) and exits 1 when a
//! target is missed. `just attack` builds both in release and runs it at full size.

use anyhow::{Context, Result};
use clap::Parser;
use sightline_bench::attack::{self, AttackOptions};
use std::path::PathBuf;

/// Flood the relay with slowloris connections and code guessers while legitimate sessions
/// pair and stream, then kill it under live sessions.
#[derive(Debug, Parser)]
#[command(name = "attack")]
struct Args {
    /// Slowloris connections (default 5000).
    #[arg(long)]
    slowloris: Option<usize>,
    /// Addresses guessing codes (default 500).
    #[arg(long)]
    guessers: Option<usize>,
    /// Joins per guessing address at most (default 20).
    #[arg(long)]
    guesses_per_address: Option<usize>,
    /// Legitimate sessions during the flood (default 20).
    #[arg(long)]
    legit: Option<usize>,
    /// Sessions live when the relay is killed, raw protocol ends (default 100).
    #[arg(long)]
    kill_sessions: Option<usize>,
    /// Sessions with a real agent holding a key when the relay is killed (default 100).
    #[arg(long)]
    real_agents: Option<usize>,
    /// Seconds the customer's link is down in the outage stage; 0 skips it (default 30).
    #[arg(long)]
    outage_secs: Option<u64>,
    /// The relay binary (default: $SIGHTLINE_RELAY_BIN, else next to this program).
    #[arg(long)]
    relay: Option<PathBuf>,
    /// Longest pairing time, ms, that meets the target (default 2000; 10000 with --quick).
    #[arg(long)]
    pair_target_ms: Option<f64>,
    /// Start from the smoke-run sizes (a tenth) and its pairing bound instead of the full run.
    #[arg(long)]
    quick: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

impl Args {
    fn options(&self) -> AttackOptions {
        let base = if self.quick {
            AttackOptions::quick()
        } else {
            AttackOptions::default()
        };
        AttackOptions {
            slowloris: self.slowloris.unwrap_or(base.slowloris),
            guessers: self.guessers.unwrap_or(base.guessers),
            guesses_per_address: self.guesses_per_address.unwrap_or(base.guesses_per_address),
            legit: self.legit.unwrap_or(base.legit),
            kill_sessions: self.kill_sessions.unwrap_or(base.kill_sessions),
            real_agents: self.real_agents.unwrap_or(base.real_agents),
            outage_secs: self.outage_secs.unwrap_or(base.outage_secs),
            relay_bin: self.relay.clone(),
            pair_target_ms: self.pair_target_ms.unwrap_or(base.pair_target_ms),
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let report = attack::run(&args.options())?;
    println!("{:<36} | {:<70} | target", "measure", "measured");
    for [what, measured, target] in report.table() {
        println!("{what:<36} | {measured:<70} | {target}");
    }
    for (i, s) in report.flood.sessions.iter().enumerate() {
        if let Err(e) = s {
            println!("legitimate session {i} failed: {e}");
        }
    }
    println!("relay: {}", report.relay_binary);
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !report.passed() {
        eprintln!("attack: a target was missed (see the table)");
        std::process::exit(1);
    }
    Ok(())
}
