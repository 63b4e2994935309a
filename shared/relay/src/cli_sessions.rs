//! `relay sessions`: the record of relayed sessions ([`sightline_relay::store::sessions`]).

use anyhow::Result;
use clap::Args;
use sightline_relay::store::db::Database;
use sightline_relay::store::paths::DataDir;
use std::io::Write;

pub const SESSIONS_EXAMPLES: &str = "\
Relayed sessions: who, from where, when, how each ended (abnormal: the connection was lost and
not resumed, the certificate was revoked, or the relay stopped while it ran), bytes each way.

Examples:
  relay sessions
  relay sessions --limit 20 --json";

/// `relay sessions` options.
#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// Newest sessions to show.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Print a JSON array.
    #[arg(long)]
    json: bool,
}

/// Prints the newest sessions, oldest first.
pub fn run(data: &DataDir, args: &SessionsArgs) -> Result<()> {
    let db = Database::open(&data.database())?;
    let all = sightline_relay::store::sessions::recent(&db, args.limit)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &all)?;
        return Ok(writeln!(out)?);
    }
    for s in all {
        let ended = match (s.ended_at, &s.end_reason) {
            (Some(at), Some(reason)) => format!(
                "{} s, {}: {reason}",
                at.saturating_sub(s.started_at),
                if s.abnormal { "abnormal" } else { "ended" }
            ),
            _ => "running".to_string(),
        };
        writeln!(
            out,
            "{}  {}  {:<16} {} → {}  {ended}",
            sightline_net::cli::utc(s.started_at),
            &s.id,
            s.operator,
            s.operator_address,
            s.agent_address
        )?;
    }
    Ok(())
}
