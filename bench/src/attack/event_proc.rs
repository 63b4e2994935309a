//! A real `agent` or `viewer` process for the harness, with JSON events: its events read on a
//! thread and stamped with the moment they arrived, its answers typed on its stdin as a
//! customer (or an operator) would. Killed when dropped.

use anyhow::{anyhow, bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A process and what it has said.
#[derive(Debug)]
pub struct EventProc {
    child: Child,
    stdin: ChildStdin,
    events: Receiver<(Instant, serde_json::Value)>,
    /// Its data directory (a copy of the shared key).
    _data: tempfile::TempDir,
}

/// `(field, value)` an event must carry.
pub type Where<'a> = Option<(&'a str, &'a str)>;

impl EventProc {
    /// `agent --data-dir COPY --relay RELAY --relay-key PIN --json --fps 2 CODE` on `display`,
    /// with a copy of the key in `key_dir`.
    pub fn agent(
        bin: &Path,
        key_dir: &Path,
        relay: &str,
        pin: &str,
        display: &str,
        code: &str,
    ) -> Result<Self> {
        let data = tempfile::tempdir().context("cannot create a temporary directory")?;
        copy_dir(key_dir, data.path())?;
        Self::spawn(
            Command::new(bin)
                .arg("--data-dir")
                .arg(data.path())
                .args(["--relay", relay, "--relay-key", pin, "--json", "--fps", "2"])
                .arg(code)
                .env("DISPLAY", display)
                .env_remove("WAYLAND_DISPLAY"),
            data,
        )
    }

    /// Starts `cmd` (a command line with `--json`, perhaps run inside a network namespace);
    /// `data` is removed when it ends.
    pub fn spawn(cmd: &mut Command, data: tempfile::TempDir) -> Result<Self> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("stdout not piped"))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("stdin not piped"))?;
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    let _ = tx.send((Instant::now(), v));
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            events,
            _data: data,
        })
    }

    /// Types `line` and Enter.
    pub fn say(&mut self, line: &str) -> Result<()> {
        writeln!(self.stdin, "{line}").context("cannot write to the process")
    }

    /// The next event `name` (with `filter`) before `deadline`, and when it arrived.
    pub fn next(
        &mut self,
        name: &str,
        filter: Where<'_>,
        deadline: Instant,
    ) -> Option<(Instant, serde_json::Value)> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((at, v)) => {
                    let matches = v["event"] == name
                        && filter.is_none_or(|(k, want)| v[k].as_str() == Some(want));
                    if matches {
                        return Some((at, v));
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// When event `name` arrived, if before `deadline`.
    pub fn wait_until(
        &mut self,
        name: &str,
        filter: Where<'_>,
        deadline: Instant,
    ) -> Option<Instant> {
        self.next(name, filter, deadline).map(|(at, _)| at)
    }

    /// Event `name`, if before `deadline`.
    pub fn event_until(
        &mut self,
        name: &str,
        filter: Where<'_>,
        deadline: Instant,
    ) -> Option<serde_json::Value> {
        self.next(name, filter, deadline).map(|(_, v)| v)
    }

    /// Waits (on a blocking thread) for event `name`; an error if it does not come in `limit`.
    pub async fn wait_async(
        mut self,
        name: &'static str,
        filter: Where<'static>,
        limit: Duration,
    ) -> Result<Self> {
        tokio::task::spawn_blocking(
            move || match self.next(name, filter, Instant::now() + limit) {
                Some(_) => Ok(self),
                None => bail!("no {name:?} event within {} s", limit.as_secs()),
            },
        )
        .await
        .map_err(|e| anyhow!("waiting for {name:?}: {e}"))?
    }
}

impl Drop for EventProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the files of `from` into `to`.
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}
