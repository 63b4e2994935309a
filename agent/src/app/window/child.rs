//! The agent behind the window: the same program, started with `--json --event-text` and the
//! code, its events read from its stdout and the customer's answers written to its stdin, as
//! a terminal customer would type them. The window adds no logic of its own to a session: the
//! consent rules, timeouts, hotkeys and banner are the terminal agent's.

use serde_json::Value;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// What the window hears from the agent behind it.
#[derive(Debug)]
pub enum Heard {
    /// One event line.
    Event(Value),
    /// Its output ended (it exited or is exiting).
    Ended,
}

/// A running agent behind the window.
#[derive(Debug)]
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    heard: Receiver<Heard>,
}

/// The command-line arguments of this run for the agent behind the window: without `--gui`
/// and `--json` (added back once), and with the events' texts.
pub fn child_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out: Vec<OsString> = args
        .into_iter()
        .filter(|a| a != "--gui" && a != "--json" && a != "--event-text")
        .collect();
    out.push("--json".into());
    out.push("--event-text".into());
    out
}

impl Session {
    /// Starts this program with `args` and the code; `wake` is called after each line so the
    /// window redraws.
    pub fn start(
        args: &[OsString],
        code: &str,
        wake: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args(args)
            .arg(code)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no output from the agent"))?;
        let (tx, heard) = channel();
        std::thread::Builder::new()
            .name("window-events".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if tx.send(Heard::Event(v)).is_err() {
                            return;
                        }
                        wake();
                    }
                }
                let _ = tx.send(Heard::Ended);
                wake();
            })?;
        Ok(Self {
            child,
            stdin,
            heard,
        })
    }

    /// Everything heard since the last call.
    pub fn drain(&self) -> Vec<Heard> {
        self.heard.try_iter().collect()
    }

    /// Types one line for the agent (an answer or a command).
    pub fn send(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            if writeln!(stdin, "{line}")
                .and_then(|()| stdin.flush())
                .is_err()
            {
                self.stdin = None;
            }
        }
    }

    /// Ends the session as `e` would, waiting up to `grace` for the agent to close it
    /// properly, then stops it.
    pub fn finish(mut self, grace: Duration) {
        self.send("e");
        self.stdin = None;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the agent has exited (reaped).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::child_args;

    #[test]
    fn the_child_gets_json_with_texts_once_and_no_window() {
        let args = ["--gui", "--json", "--data-dir", "d", "--gui"].map(Into::into);
        let out: Vec<String> = child_args(args)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(out, ["--data-dir", "d", "--json", "--event-text"]);
    }
}
