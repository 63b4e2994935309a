//! The LAN kiosk's own audit log (`agent --lan-only --audit-log FILE`, by default
//! `kiosk-audit.jsonl` in the data directory): one JSON object per line, hash-chained and
//! checkpointed exactly as the relay's log ([`sightline_core::audit_chain`]), so that
//! `agent audit verify` ([`cli`]) proves it untampered. A kiosk runs sessions with no relay and
//! no one to ask, so this file is the only account of who was on its screen.
//!
//! Every entry is appended and flushed to disk (`fsync`) before [`KioskLog::record`] returns;
//! one that fails leaves the log refusing every later entry, so the kiosk refuses sessions
//! rather than running them unrecorded. Checkpoints are signed with a separate Ed25519 key
//! (`kiosk-audit.key`, [`sightline_net::audit_key`]) every [`CHECKPOINT_EVERY`] entries and
//! at stop. Refused connections are rate-limited ([`refusals`]).

pub mod cli;
pub mod events;
mod file;
mod refusals;
mod verify;

use ed25519_dalek::SigningKey;
use refusals::RefusalGate;
use serde_json::{json, Value};
use sightline_core::audit_chain::checkpoint::public_hex;
use sightline_core::audit_chain::{Head, Line, Unhashed};
use sightline_net::audit_key;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A checkpoint after this many entries.
pub const CHECKPOINT_EVERY: u64 = 100;
/// Actor of every kiosk entry.
pub const ACTOR: &str = "kiosk";
/// The log's file name in the data directory when `--audit-log` is not given.
pub const DEFAULT_FILE: &str = "kiosk-audit.jsonl";
/// The checkpoint key's file name in the data directory.
pub const KEY_FILE: &str = "kiosk-audit.key";

/// One event to record.
#[derive(Debug, Clone)]
pub struct Event {
    /// What (`kiosk.started`, `kiosk.session.connected`, …).
    pub action: &'static str,
    /// The operator's account, when there is one.
    pub subject: Option<String>,
    /// Details, as a JSON object.
    pub detail: Value,
    /// The session id, hex.
    pub session: Option<String>,
}

/// The open log.
#[derive(Debug)]
pub struct KioskLog {
    path: PathBuf,
    key: SigningKey,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: File,
    head: Head,
    since_checkpoint: u64,
    refusals: RefusalGate,
    /// A write failed: the file may end in a partial line, so nothing more is appended.
    broken: bool,
}

impl KioskLog {
    /// Opens the log at `path` (continuing its chain) with the checkpoint key at `key_path`,
    /// made there if missing. Blocking.
    pub fn open(path: &Path, key_path: &Path) -> Result<Self, String> {
        let (key, _) = audit_key::load_or_create(key_path).map_err(|e| e.to_string())?;
        let (file, head) = file::open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            key,
            state: Mutex::new(State {
                file,
                head,
                since_checkpoint: 0,
                refusals: RefusalGate::default(),
                broken: false,
            }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The checkpoint key's public half, as `agent audit key` prints it.
    pub fn public_key(&self) -> String {
        public_hex(&self.key)
    }

    /// Appends `event` at `now` and makes it durable, then a checkpoint when one is due.
    /// Blocking.
    pub fn record(&self, now: u64, event: &Event) -> Result<(), String> {
        let mut s = self.lock()?;
        let detail = event.detail.to_string();
        let f = Unhashed {
            actor: ACTOR,
            action: event.action,
            subject: event.subject.as_deref(),
            detail: Some(&detail),
            session: event.session.as_deref(),
        };
        let line = s
            .head
            .next(now, f)
            .ok_or("the log's ids or times ran out")?;
        s.append(&line)?;
        if s.since_checkpoint >= CHECKPOINT_EVERY {
            s.checkpoint(&self.key, now)?;
        }
        Ok(())
    }

    /// A signed checkpoint over the last entry (at stop). Blocking.
    pub fn checkpoint(&self, now: u64) -> Result<(), String> {
        let mut s = self.lock()?;
        if s.since_checkpoint == 0 {
            return Ok(());
        }
        s.checkpoint(&self.key, now)
    }

    /// A refused connection at `now`: the entry to record, or `None` when the rate limit
    /// leaves it out ([`refusals`]).
    pub fn refusal(&self, now: u64, address: &str, why: &str) -> Option<Event> {
        let left_out = self.lock().ok()?.refusals.admit(now)?;
        Some(Event {
            action: "kiosk.connection.refused",
            subject: None,
            detail: json!({"address": address, "reason": why, "refusals_not_recorded_before": left_out}),
            session: None,
        })
    }

    /// Refusals left out since the last one recorded (for the stop entry).
    pub fn refusals_left_out(&self) -> u64 {
        self.lock().map_or(0, |mut s| s.refusals.take_suppressed())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, String> {
        let s = self
            .state
            .lock()
            .map_err(|_| "the audit log is unavailable")?;
        if s.broken {
            return Err(format!(
                "an earlier write to {} failed; nothing more is recorded until the kiosk restarts",
                self.path.display()
            ));
        }
        Ok(s)
    }
}

/// Records `event` now, off the async threads (the write waits for the disk).
pub async fn write(log: &std::sync::Arc<KioskLog>, event: Event) -> Result<(), String> {
    let log = log.clone();
    tokio::task::spawn_blocking(move || log.record(sightline_net::clock::now_unix(), &event))
        .await
        .map_err(|e| e.to_string())?
}

impl State {
    fn append(&mut self, line: &Line) -> Result<(), String> {
        let mut bytes = line.to_json().into_bytes();
        bytes.push(b'\n');
        let written = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            self.broken = true;
            return Err(format!("cannot write the audit log: {e}"));
        }
        self.head.advance(line);
        self.since_checkpoint += 1;
        Ok(())
    }

    fn checkpoint(&mut self, key: &SigningKey, now: u64) -> Result<(), String> {
        let line = self
            .head
            .checkpoint(key, now, ACTOR)
            .ok_or("the log's ids or times ran out")?;
        self.append(&line)?;
        self.since_checkpoint = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn entries_chain_checkpoint_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        let key = dir.path().join(KEY_FILE);
        let log = KioskLog::open(&path, &key).unwrap();
        let event = Event {
            action: "kiosk.started",
            subject: None,
            detail: json!({"listen": ["127.0.0.1:7615"]}),
            session: None,
        };
        for i in 0..CHECKPOINT_EVERY + 5 {
            log.record(1_700_000_000 + i, &event).unwrap();
        }
        log.checkpoint(1_800_000_000).unwrap();
        // Reopened: the chain goes on.
        drop(log);
        let log = KioskLog::open(&path, &key).unwrap();
        log.record(1_900_000_000, &event).unwrap();
        let public = sightline_core::audit_chain::checkpoint::parse_public(&log.public_key());
        let summary = cli::verify_file(&path, public.as_ref()).unwrap().unwrap();
        assert_eq!(summary.entries, CHECKPOINT_EVERY + 5 + 2 + 1);
        assert_eq!(
            summary.last_checkpoint.map(|c| c.0),
            Some(i64::try_from(CHECKPOINT_EVERY + 5 + 2).unwrap())
        );
    }

    #[test]
    fn refusals_are_rate_limited() {
        let dir = tempfile::tempdir().unwrap();
        let log = KioskLog::open(&dir.path().join("l"), &dir.path().join("k")).unwrap();
        let recorded = (0..1000)
            .filter(|_| {
                log.refusal(5, "10.0.0.1:1", "outside the allow list")
                    .is_some()
            })
            .count();
        assert_eq!(recorded, refusals::PER_WINDOW as usize);
        assert_eq!(
            log.refusals_left_out(),
            1000 - u64::from(refusals::PER_WINDOW)
        );
    }
}
