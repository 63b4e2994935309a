//! A kiosk's revocation list (`agent --lan-only --revocation-list FILE`): read and checked
//! against the pinned root key at start (a list that does not verify stops the agent before
//! it listens), read again when the file changes, and replaced by a newer verified list that a
//! viewer offers in the preamble (written back to the file), never by an older one.
//!
//! A file that changes into something that does not verify, or into an older list, is logged
//! and ignored: the kiosk keeps the newest good list it has seen.

use anyhow::{anyhow, Context, Result};
use serde_json::json;
use sightline_core::identity::Fingerprint;
use sightline_core::revocation::{RevocationList, MAX_LIST_BYTES};
use sightline_net::cli::Output;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// How often the file is checked for a change.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// What identifies one version of the file without reading it.
type Stamp = (Option<SystemTime>, u64);

#[derive(Debug, Default)]
struct State {
    list: Option<RevocationList>,
    stamp: Option<Stamp>,
}

/// The list a kiosk holds.
#[derive(Debug)]
pub struct KioskRevocations {
    pin: Fingerprint,
    file: Option<PathBuf>,
    out: Output,
    state: Mutex<State>,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.modified().ok(), meta.len()))
}

/// Reads and checks a list file against `pin`.
pub fn read_list(path: &Path, pin: &Fingerprint) -> Result<RevocationList> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_LIST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let list = RevocationList::from_bytes(&bytes)
        .map_err(|e| anyhow!("{}: not a valid revocation list ({e})", path.display()))?;
    list.check_pin(pin).map_err(|e| {
        anyhow!(
            "{}: the revocation list is not from the pinned relay ({e})",
            path.display()
        )
    })?;
    Ok(list)
}

impl KioskRevocations {
    /// The list in `file` (required to verify against `pin`), or none without a file.
    pub fn load(pin: Fingerprint, file: Option<PathBuf>, out: Output) -> Result<Self> {
        let mut state = State::default();
        if let Some(path) = &file {
            state.stamp = stamp(path).ok();
            let list = read_list(path, &pin)?;
            tracing::info!(file = %path.display(), sequence = list.sequence(),
                revoked = list.entries().len(), "revocation list loaded");
            out.event(
                json!({"event": "revocation_list", "source": "file",
                       "sequence": list.sequence(), "revoked": list.entries().len()}),
                || {
                    format!(
                        "Revocation list {} loaded from {} ({} certificates).",
                        list.sequence(),
                        path.display(),
                        list.entries().len()
                    )
                },
            );
            state.list = Some(list);
        }
        Ok(Self {
            pin,
            file,
            out,
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Only whole values are stored: a poisoned lock still holds a consistent state.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The list in force.
    pub fn current(&self) -> Option<RevocationList> {
        self.lock().list.clone()
    }

    /// The sequence of the list in force (what the kiosk tells viewers it holds).
    pub fn sequence(&self) -> Option<u64> {
        self.lock().list.as_ref().map(RevocationList::sequence)
    }

    /// Puts `list` (already checked against the pin) in force if it is newer than the one
    /// held; returns whether it was. `source` names where it came from, for the log.
    fn adopt(&self, list: RevocationList, source: &str) -> bool {
        let mut state = self.lock();
        if !list.is_newer_than(state.list.as_ref()) {
            return false;
        }
        let (sequence, revoked) = (list.sequence(), list.entries().len());
        tracing::info!(sequence, revoked, source, "revocation list adopted");
        self.out.event(
            json!({"event": "revocation_list", "source": source,
                   "sequence": sequence, "revoked": revoked}),
            || format!("Revocation list {sequence} adopted from the {source} ({revoked} certificates)."),
        );
        state.list = Some(list);
        true
    }

    /// A list a viewer offered (checked against the pin by the preamble): adopted if newer,
    /// and then written to the file so that it survives a restart.
    pub fn offered(&self, list: RevocationList) {
        let bytes = list.to_bytes();
        if !self.adopt(list, "viewer") {
            return;
        }
        let Some(path) = &self.file else {
            return;
        };
        let written = bytes
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(sightline_net::keystore::replace_secret(path, &b)?));
        match written {
            // The file now holds what is in force: no need to read it back.
            Ok(()) => self.lock().stamp = stamp(path).ok(),
            Err(e) => tracing::warn!(file = %path.display(), error = %e,
                "cannot write the adopted revocation list to its file; it stays in force until the agent stops"),
        }
    }

    /// Reads the file again if it changed since last read.
    fn reread(&self) {
        let Some(path) = &self.file else {
            return;
        };
        let now = stamp(path).ok();
        if now == self.lock().stamp {
            return;
        }
        self.lock().stamp = now;
        match read_list(path, &self.pin) {
            Ok(list) => {
                let sequence = list.sequence();
                if !self.adopt(list, "file") && Some(sequence) < self.sequence() {
                    tracing::warn!(file = %path.display(), sequence, held = ?self.sequence(),
                        "the revocation list file holds an older list; keeping the newer one");
                }
            }
            Err(e) => tracing::error!(error = %e,
                "the revocation list file changed but does not verify; keeping the list in force"),
        }
    }

    /// Runs for the life of the kiosk: checks the file every [`POLL_EVERY`].
    pub async fn watch(self: Arc<Self>) {
        if self.file.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(POLL_EVERY);
        loop {
            tick.tick().await;
            let this = self.clone();
            let _ = tokio::task::spawn_blocking(move || this.reread()).await;
        }
    }
}
