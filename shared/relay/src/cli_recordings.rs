//! `relay recordings`: the session recordings stored in the data directory
//! ([`sightline_relay::store::recordings`]): list them, copy one out for the auditors, who
//! decrypt it with their age identity. The relay cannot read them.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use sightline_relay::store::db::Database;
use sightline_relay::store::paths::DataDir;
use sightline_relay::store::recordings::{self, file, lookup};
use std::io::Write;
use std::path::PathBuf;

pub const RECORDINGS_EXAMPLES: &str = "\
Session recordings are encrypted by the viewer to the auditors' age keys (the policy's
[recording] recipients); the relay stores them unread in recordings/ of its data directory.

Examples:
  relay recordings list
  relay recordings list --json
  relay recordings get 3f2a9c1e --out session.age";

const LIST_EXAMPLES: &str = "\
One line per recording: session id, operator, when it started (UTC), bytes stored, whether it is
complete, and the SHA-256 of the whole file once complete (the audit log holds the same, and one
hash per segment as it arrived). --json prints an array of objects with session, operator,
started_at, bytes, segments, complete, completed_at, sha256 and last_activity.

Examples:
  relay recordings list
  relay recordings list --json";

const GET_EXAMPLES: &str = "\
Copies the recording of a session, byte for byte, to a new file (an existing file is never
replaced). ID is the session id (32 hex digits, as `relay sessions` and `relay recordings list`
show it) or a prefix of at least 8 digits that names one recording. Decrypt the copy with an
auditor's identity, e.g. `age -d -i auditor.key session.age`; the viewer's documentation says how
to play it.

Examples:
  relay recordings get 3f2a9c1e0b7d4c55a1e2f3a4b5c6d7e8 --out session.age
  relay recordings get 3f2a9c1e --out /media/audit/session.age";

/// `relay recordings` subcommands.
#[derive(Debug, Subcommand)]
pub enum RecordingsCommand {
    /// List the stored recordings.
    #[command(after_help = LIST_EXAMPLES)]
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Copy one recording's ciphertext to a file.
    #[command(after_help = GET_EXAMPLES)]
    Get {
        /// The session id, or a unique prefix of at least 8 hex digits.
        id: String,
        /// Where to write it (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

pub fn run(data: &DataDir, command: &RecordingsCommand) -> Result<()> {
    let db = Database::open(&data.database())?;
    match command {
        RecordingsCommand::List { json } => list(&db, *json),
        RecordingsCommand::Get { id, out } => get(data, &db, id, out),
    }
}

fn list(db: &Database, json: bool) -> Result<()> {
    let all = recordings::list(db)?;
    let mut out = std::io::stdout().lock();
    if json {
        let items: Vec<serde_json::Value> = all
            .iter()
            .map(|r| {
                serde_json::json!({
                    "session": r.session,
                    "operator": r.operator,
                    "started_at": r.created_at,
                    "bytes": r.bytes,
                    "segments": r.segments,
                    "complete": r.complete,
                    "completed_at": r.completed_at,
                    "sha256": r.sha256,
                    "last_activity": r.last_activity,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &items)?;
        return Ok(writeln!(out)?);
    }
    for r in all {
        writeln!(
            out,
            "{}  {}  {:<16} {:>12} bytes  {}  {}",
            r.session,
            sightline_net::cli::utc(r.created_at),
            r.operator,
            r.bytes,
            if r.complete {
                "complete  "
            } else {
                "incomplete"
            },
            r.sha256.as_deref().unwrap_or("-"),
        )?;
    }
    Ok(())
}

fn get(data: &DataDir, db: &Database, id: &str, out: &std::path::Path) -> Result<()> {
    let r = lookup::resolve(db, id)?;
    if !recordings::is_session_id(&r.session) {
        bail!(
            "the recording index names {:?}, which is not a session id",
            r.session
        );
    }
    if out.exists() {
        bail!("{} exists; give a new file name", out.display());
    }
    let src = data.recording(&r.session);
    if !src.exists() {
        bail!(
            "the recording of session {} is on record but its file {} is missing",
            r.session,
            src.display()
        );
    }
    let copied = file::copy_out(&src, out)
        .with_context(|| format!("cannot copy the recording of session {}", r.session))?;
    if let Some(expected) = &r.sha256 {
        let got = file::sha256(out)?;
        if &got != expected {
            bail!(
                "copied {copied} bytes to {}, but their SHA-256 is {got}, not the {expected} \
                 recorded when the recording was completed: the stored file was changed",
                out.display()
            );
        }
    }
    let state = if r.complete {
        "complete".to_string()
    } else {
        "incomplete: its upload did not finish".to_string()
    };
    println!(
        "wrote the recording of session {} ({copied} bytes, {state}) to {}",
        r.session,
        out.display()
    );
    Ok(())
}
