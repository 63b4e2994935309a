//! `relay audit`: show the log, export it as JSON lines (optionally following it), verify its
//! chain and checkpoints, print the audit public key.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use ed25519_dalek::VerifyingKey;
use sightline_relay::net::signal::Shutdown;
use sightline_relay::store::audit::{self, export, key, verify};
use sightline_relay::store::db::Database;
use sightline_relay::store::paths::DataDir;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const AUDIT_EXAMPLES: &str = "\
Account changes made with `relay user` and `relay ca`, logins to existing accounts, and the
relay's signed checkpoints. --jsonl prints every entry (or those after --since ID) as one JSON
object per line: id, at (RFC 3339), at_unix, actor, action, subject, detail, session, hash.
--follow then keeps printing new entries until SIGINT, SIGTERM or a closed output.

Examples:
  relay audit
  relay audit --limit 20 --json
  relay audit --jsonl --since 1200
  relay audit --jsonl --follow | logger -t sightline-audit
  relay audit verify
  relay audit key";

const VERIFY_EXAMPLES: &str = "\
Recomputes the hash chain and checks every checkpoint's signature. Prints `ok: N entries, last
checkpoint #ID at TIME` (exit 0), or `bad: entry #ID: WHAT` for the first bad entry (exit 1).
A log pruned by the retention policy is checked from its newest signed prune checkpoint:
`ok: N entries (entries before #K pruned on TIME), ...`; an anchor older than #K is accepted
(its entry was pruned), the one just before #K must have the hash the prune checkpoint signed.
--anchor FILE: the last line of FILE is an entry exported earlier by `relay audit --jsonl`
(best a checkpoint's); the log must still hold it, so cutting the log back before it is
detected. --key: check the signatures against this public key (from `relay audit key`) instead
of audit.key in the data directory.

Examples:
  relay audit verify
  relay audit key > audit.pub
  relay audit --jsonl | grep '\"audit.checkpoint\"' | tail -n 1 > anchor.json
  relay audit verify --anchor anchor.json --key \"$(cat audit.pub)\"";

const KEY_EXAMPLES: &str = "\
Prints the audit public key that signs checkpoints: the raw 32-byte Ed25519 public key
(RFC 8032) as 64 hex digits. Give it to log collectors for `relay audit verify --key`. Makes
audit.key if the data directory has none yet.

Examples:
  relay audit key";

/// How often `--follow` looks for new entries.
const FOLLOW_POLL: Duration = Duration::from_millis(500);
/// Entries read from the database at once when exporting.
const BATCH: usize = 1000;
/// Largest anchor file read.
const MAX_ANCHOR_BYTES: u64 = 1 << 20;

/// `relay audit`'s flags and subcommands.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    /// Newest entries to show (not with --jsonl).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Print a JSON array.
    #[arg(long, conflicts_with = "jsonl")]
    json: bool,
    /// Print one JSON object per line, every entry from the oldest (or after --since).
    #[arg(long)]
    jsonl: bool,
    /// With --jsonl: keep printing new entries (checked every 500 ms).
    #[arg(long, requires = "jsonl")]
    follow: bool,
    /// With --jsonl: only entries with an id above ID.
    #[arg(long, value_name = "ID", requires = "jsonl")]
    since: Option<i64>,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain and the signed checkpoints; name the first bad entry.
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify {
        /// A file whose last line is an entry exported by `relay audit --jsonl`.
        #[arg(long, value_name = "FILE")]
        anchor: Option<PathBuf>,
        /// The audit public key, 64 hex digits [default: from audit.key]
        #[arg(long, value_name = "PUBKEY")]
        key: Option<String>,
    },
    /// Print the audit public key (64 hex digits).
    #[command(after_help = KEY_EXAMPLES)]
    Key,
}

/// `relay audit verify` found a bad entry (already printed).
#[derive(Debug, thiserror::Error)]
#[error("the audit log failed verification")]
pub struct VerifyFailed;

pub fn run(data: &DataDir, args: AuditArgs) -> Result<()> {
    match args.command {
        Some(AuditCommand::Verify { anchor, key }) => cmd_verify(data, anchor.as_deref(), key),
        Some(AuditCommand::Key) => {
            let (k, made) = key::load_or_create(data)?;
            if made {
                eprintln!("created the audit key {}", data.audit_key().display());
            }
            println!("{}", key::public_hex(&k));
            Ok(())
        }
        None if args.jsonl => cmd_jsonl(data, args.since.unwrap_or(0), args.follow),
        None => cmd_show(data, args.limit, args.json),
    }
}

fn cmd_show(data: &DataDir, limit: usize, json: bool) -> Result<()> {
    let db = Database::open(&data.database())?;
    let entries = audit::recent(&db, limit)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for e in entries {
        writeln!(
            out,
            "{}  {:<16} {:<18} {:<20} {}",
            sightline_net::cli::utc(e.at),
            e.actor,
            e.action,
            e.subject.as_deref().unwrap_or("-"),
            e.detail.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

/// Prints the entries after `*cursor` and moves it; `false` once standard output is closed.
fn drain(db: &Database, cursor: &mut i64, out: &mut impl Write) -> Result<bool> {
    loop {
        let batch = audit::since(db, *cursor, BATCH)?;
        let Some(last) = batch.last() else {
            return Ok(true);
        };
        *cursor = last.id;
        let mut text = String::new();
        for e in &batch {
            text.push_str(&export::line(e).to_json());
            text.push('\n');
        }
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(false),
            Err(e) => return Err(e).context("cannot write to standard output"),
        }
    }
}

fn cmd_jsonl(data: &DataDir, since: i64, follow: bool) -> Result<()> {
    let db = Database::open(&data.database())?;
    let mut out = std::io::stdout().lock();
    let mut cursor = since;
    if !follow {
        drain(&db, &mut cursor, &mut out)?;
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .enable_io()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Installed before the first line, so a stop signal always ends the export cleanly.
        let mut shutdown = Shutdown::install().context("cannot install signal handlers")?;
        loop {
            if !drain(&db, &mut cursor, &mut out)? {
                return Ok(());
            }
            tokio::select! {
                _ = shutdown.wait() => return Ok(()),
                () = tokio::time::sleep(FOLLOW_POLL) => {}
            }
        }
    })
}

fn parse_public_key(text: &str) -> Result<VerifyingKey> {
    sightline_core::audit_chain::checkpoint::parse_public(text).with_context(|| {
        format!("--key {text:?}: give the 64 hex digits printed by `relay audit key`")
    })
}

fn read_anchor(path: &Path) -> Result<verify::Anchor> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_ANCHOR_BYTES).read_to_string(&mut text))
        .with_context(|| format!("cannot read the anchor {}", path.display()))?;
    let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
        bail!("{}: no anchor line in it", path.display());
    };
    verify::Anchor::parse(line).with_context(|| format!("{}", path.display()))
}

fn cmd_verify(data: &DataDir, anchor: Option<&Path>, key_hex: Option<String>) -> Result<()> {
    let public = match key_hex {
        Some(text) => Some(parse_public_key(&text)?),
        None => match key::load(data) {
            Ok(k) => Some(k.verifying_key()),
            // Checked anyway: a log with a checkpoint then fails, naming it.
            Err(key::AuditKeyError::Missing(_)) => None,
            Err(e) => return Err(e.into()),
        },
    };
    let anchor = anchor.map(read_anchor).transpose()?;
    let db = Database::open(&data.database())?;
    match verify::verify_db(&db, public.as_ref(), anchor)? {
        Ok(summary) => {
            let last = match summary.last_checkpoint {
                Some((id, at)) => format!("last checkpoint #{id} at {}", export::rfc3339(at)),
                None => "no checkpoint yet".to_string(),
            };
            let pruned = match summary.pruned {
                Some((first, at)) => format!(
                    " (entries before #{first} pruned on {})",
                    export::rfc3339(at)
                ),
                None => String::new(),
            };
            println!("ok: {} entries{pruned}, {last}", summary.entries);
            Ok(())
        }
        Err(bad) => {
            println!("bad: {bad}");
            Err(VerifyFailed.into())
        }
    }
}
