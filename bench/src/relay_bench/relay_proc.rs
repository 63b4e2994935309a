//! The real relay as a child process: find the `relay` binary, `relay init` a temporary data
//! directory (with a `relay.toml` that lifts the per-address connection caps, since every
//! client connects from 127.0.0.1), enrol operator accounts with `relay user add --json`
//! (two-factor login as the default policy requires), `relay serve` on a loopback port, and
//! stop it with SIGTERM.
//!
//! Each account hands out second factors the way an operator would type them: the TOTP code of
//! the current step, then of the next one (the relay accepts one step of skew and never a step
//! at or before the last one used), then its ten one-time recovery codes.

use anyhow::{anyhow, bail, Context, Result};
use sightline_core::identity::Fingerprint;
use sightline_relay::accounts::totp::{self, TotpSecret};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Password of every benchmark account (meets the default policy).
pub const PASSWORD: &str = "correct horse battery staple";
/// Logins one account gives without waiting for the clock: two TOTP steps, ten recovery codes.
pub const LOGINS_PER_ACCOUNT: usize = 12;
/// How long `relay serve` may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the relay may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Finds the `relay` binary: `explicit`, else `$SIGHTLINE_RELAY_BIN`, else next to this
/// executable (`target/<profile>/relay-bench`) or one level up (`target/<profile>/deps/<test>`).
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("SIGHTLINE_RELAY_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join("relay"))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "no relay binary in {:?}: build it first (`cargo build -p sightline-relay --bin relay \
                 --release` for measurements) or set SIGHTLINE_RELAY_BIN",
                candidates
            )
        })
}

/// One enrolled operator account and the second factors it has left.
#[derive(Debug)]
pub struct Account {
    /// Account name.
    pub name: String,
    totp: TotpSecret,
    last_step: Option<u64>,
    recovery_codes: Vec<String>,
}

impl Account {
    /// The next second factor the relay will accept, or `None` when this account has none left
    /// until the clock moves on.
    pub fn next_factor(&mut self) -> Option<String> {
        let step = sightline_net::clock::now_unix() / 30;
        for s in [step, step + 1] {
            if self.last_step.is_none_or(|l| s > l) {
                self.last_step = Some(s);
                return Some(totp::code_at(&self.totp, s * 30));
            }
        }
        self.recovery_codes.pop()
    }
}

/// A relay data directory with its CA, before or while serving.
#[derive(Debug)]
pub struct RelaySetup {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// The CA fingerprint clients pin.
    pub pin: Fingerprint,
}

impl RelaySetup {
    /// `relay init` in a fresh temporary directory.
    pub fn init(bin: &Path) -> Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let mut setup = Self {
            bin: bin.to_path_buf(),
            dir,
            pin: Fingerprint([0; 32]),
        };
        let out = setup.cli(&["init"], None)?;
        let line = out.lines().last().unwrap_or_default().trim();
        setup.pin = line
            .parse()
            .map_err(|e| anyhow!("`relay init` printed no fingerprint ({e:?}): {out}"))?;
        // Every client of the benchmark connects from 127.0.0.1: lift the per-address and
        // per-prefix connection caps to the relay-wide one.
        std::fs::write(
            setup.data_dir().join("relay.toml"),
            "max_connections_per_address = 10000\nmax_connections_per_prefix = 10000\n",
        )
        .context("cannot write relay.toml")?;
        Ok(setup)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("relay")
    }

    /// Runs `relay --data-dir DIR ARGS` with `stdin`; returns stdout.
    fn cli(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let mut child = Command::new(&self.bin)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "relay {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `relay user add NAME --json --password-stdin`: an operator with two-factor login.
    pub fn add_account(&self, name: &str) -> Result<Account> {
        let out = self.cli(
            &["user", "add", name, "--json", "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        )?;
        let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap_or_default())
            .with_context(|| format!("`relay user add --json` printed {out:?}"))?;
        let tf = &v["two_factor"];
        let secret = tf["secret"]
            .as_str()
            .ok_or_else(|| anyhow!("no two_factor.secret in {v}"))?;
        let bytes = totp_rs::Secret::Encoded(secret.to_string())
            .to_bytes()
            .map_err(|e| anyhow!("TOTP secret is not base32: {e:?}"))?;
        let recovery_codes = tf["recovery_codes"]
            .as_array()
            .ok_or_else(|| anyhow!("no two_factor.recovery_codes in {v}"))?
            .iter()
            .filter_map(|c| c.as_str().map(String::from))
            .collect();
        Ok(Account {
            name: name.to_string(),
            totp: TotpSecret::from_bytes(bytes)?,
            last_step: None,
            recovery_codes,
        })
    }

    /// `relay serve --listen 127.0.0.1:0`; logs (level info, the default) go to a file in the
    /// temporary directory. `mmap_threshold` pins glibc's `M_MMAP_THRESHOLD` (see
    /// [`crate::relay_bench::RelayBenchOptions::mmap_threshold`]).
    pub fn serve(self, mmap_threshold: Option<usize>) -> Result<RelayProcess> {
        self.serve_on("127.0.0.1:0", mmap_threshold)
    }

    /// Like [`RelaySetup::serve`], listening on `listen`.
    pub fn serve_on(self, listen: &str, mmap_threshold: Option<usize>) -> Result<RelayProcess> {
        let log_path = self.dir.path().join("relay.log");
        let (child, addr) = self.spawn(listen, &log_path, mmap_threshold)?;
        Ok(RelayProcess {
            child,
            addr,
            listen: listen.to_string(),
            setup: self,
            log_path,
        })
    }

    /// Starts `relay serve` and waits for its address.
    fn spawn(
        &self,
        listen: &str,
        log_path: &Path,
        mmap_threshold: Option<usize>,
    ) -> Result<(Child, String)> {
        let log = std::fs::File::create(log_path)?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--data-dir")
            .arg(self.data_dir())
            .args(["serve", "--listen", listen])
            .env("RUST_LOG", "info")
            .env_remove("MALLOC_MMAP_THRESHOLD_");
        if let Some(bytes) = mmap_threshold {
            cmd.env("MALLOC_MMAP_THRESHOLD_", bytes.to_string());
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("relay stdout not piped"))?;
        let (tx, rx) = mpsc::channel();
        // Keeps reading so the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let Ok(line) = rx.recv_timeout(START_TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(log_path).unwrap_or_default();
            bail!("relay did not print its address: {log}");
        };
        let addr = line
            .strip_prefix("listening on ")
            .ok_or_else(|| anyhow!("unexpected first line from relay serve: {line}"))?
            .trim()
            .to_string();
        Ok((child, addr))
    }
}

/// A serving relay; stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct RelayProcess {
    child: Child,
    /// Where it listens.
    pub addr: String,
    /// What it was asked to listen on.
    listen: String,
    setup: RelaySetup,
    log_path: PathBuf,
}

impl RelayProcess {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The CA fingerprint.
    pub fn pin(&self) -> Fingerprint {
        self.setup.pin
    }

    /// The last lines of its log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Lines of its log that are warnings or errors, except the expected "recovery code used".
    pub fn warnings(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .filter(|l| !l.contains("recovery code used"))
            .map(String::from)
            .collect()
    }

    /// Kills it with SIGKILL (no chance to say goodbye to anyone) and reaps it.
    pub fn kill_now(&mut self) -> Result<()> {
        self.child.kill().context("cannot kill the relay")?;
        self.child.wait().context("cannot reap the relay")?;
        Ok(())
    }

    /// Starts it again on the same data directory (after [`RelayProcess::kill_now`]); its log
    /// goes on in a new file, `relay-restarted.log`.
    pub fn restart(&mut self) -> Result<()> {
        self.log_path = self.setup.dir.path().join("relay-restarted.log");
        let (child, addr) = self.setup.spawn(&self.listen, &self.log_path, None)?;
        self.child = child;
        self.addr = addr;
        Ok(())
    }

    /// Runs `relay --data-dir DIR ARGS` on its data directory; returns stdout.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        self.setup.cli(args, None)
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        while std::time::Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
