//! Harness for integration tests: locate the built binaries, run a real relay in a temporary
//! data directory on loopback, and drive viewer and agent processes through their JSON events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cutter;
pub mod debroot;
pub mod netfw;
pub mod oidc;
pub mod recordings;
pub mod shaper;
pub mod slapd;
pub mod wayland;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Password of the test operator (meets the relay's policy).
pub const PASSWORD: &str = "correct horse battery staple";

/// The repository's root folder (for its scripts and assets).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the repository")
        .to_path_buf()
}

/// Path of a workspace binary built by `cargo build --workspace --bins` (done by `just test`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/<name>; a binary (the benchmark) lives in
    // target/<profile> itself.
    let mut dir = exe.parent().unwrap();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().unwrap();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (`just test` does)",
        path.display()
    );
    path
}

/// A child process whose stdout lines and stderr are collected by background threads.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    pub seen: Vec<String>,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "info")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let stderr_pipe = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let stdin = child.stdin.take();
        Proc {
            name: name.to_string(),
            child,
            stdin,
            lines,
            stderr,
            seen: Vec::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes a line to the process's stdin, then closes stdin.
    pub fn send_line(&mut self, line: &str) {
        self.send_lines(&[line]);
    }

    /// Writes a line to the process's stdin and keeps it open (answers to prompts).
    pub fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes the process's stdin (end of input).
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// The session code a viewer was given (its `code` event).
    pub fn session_code(&mut self) -> String {
        self.wait_event("code", SLOW)["code"]
            .as_str()
            .expect("a code event has the code")
            .to_string()
    }

    /// Waits for a JSON event `name` whose `key` equals `value`.
    pub fn wait_event_where(
        &mut self,
        name: &str,
        key: &str,
        value: serde_json::Value,
        timeout: Duration,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let v = self.wait_event(name, left);
            if v[key] == value {
                return v;
            }
        }
        panic!("{}: no {name:?} event with {key} = {value}", self.name)
    }

    /// Agent: waits until the customer is asked to allow control, and says yes.
    pub fn allow_control(&mut self, timeout: Duration) {
        self.wait_event_where("consent_request", "what", "control".into(), timeout);
        self.write_line("y");
    }

    /// Writes lines to the process's stdin, then closes stdin.
    pub fn send_lines(&mut self, lines: &[&str]) {
        let mut stdin = self.stdin.take().expect("stdin already closed");
        for line in lines {
            writeln!(stdin, "{line}").unwrap();
        }
    }

    /// Next stdout line, or None if the process closed stdout or time ran out.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => {
                self.seen.push(l.clone());
                Some(l)
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Waits for a stdout line that starts with `prefix`.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next_line(left) {
                Some(l) if l.starts_with(prefix) => return l,
                Some(_) => {}
                None => break,
            }
        }
        panic!(
            "{}: no line starting with {prefix:?}; stdout {:?}; stderr:\n{}",
            self.name,
            self.seen,
            self.stderr()
        )
    }

    /// Waits for a JSON event `{"event": name, ...}` on stdout.
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next_line(left) {
                Some(l) => {
                    let v: serde_json::Value = serde_json::from_str(&l).unwrap_or_else(|e| {
                        panic!("{}: stdout line is not JSON ({e}): {l}", self.name)
                    });
                    if v["event"] == name {
                        return v;
                    }
                }
                None => break,
            }
        }
        panic!(
            "{}: no {name:?} event; stdout {:?}; stderr:\n{}",
            self.name,
            self.seen,
            self.stderr()
        )
    }

    /// Names of the JSON events seen on stdout so far.
    pub fn events(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["event"].as_str().map(String::from))
            .collect()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{sig} failed");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for exit; panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the reader threads drain what is left.
                std::thread::sleep(Duration::from_millis(50));
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "{} did not exit in {timeout:?}; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to completion; returns (status, stdout, stderr).
pub fn run(cmd: &mut Command, stdin: Option<&str>) -> (ExitStatus, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A relay with its own data directory.
#[derive(Debug)]
pub struct Relay {
    pub dir: tempfile::TempDir,
    pub fingerprint: String,
    pub addr: String,
    config: Option<PathBuf>,
    proc: Option<Proc>,
    /// A small X display for agents started without one of their own.
    screen: Mutex<Option<Xvfb>>,
    /// Each account's authenticator: TOTP secret (base32) and the last step used.
    authenticators: Mutex<HashMap<String, Authenticator>>,
}

/// What `relay user add --json` enrolled for one account, as a phone would hold it.
#[derive(Debug, Clone)]
pub struct Authenticator {
    /// The TOTP secret, base32.
    pub secret: String,
    /// The `otpauth://` URI printed at enrolment.
    pub uri: String,
    /// One-time recovery codes.
    pub recovery_codes: Vec<String>,
    last_step: Option<u64>,
}

/// The current TOTP code for a base32 `secret` at Unix time `at`, from `oathtool` (an
/// implementation independent of the relay's).
pub fn oathtool_code(secret: &str, at: u64) -> String {
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "-d", "6", "-N"])
        .arg(format!("@{at}"))
        .arg(secret)
        .output()
        .expect("oathtool (apt-get install oathtool)");
    assert!(out.status.success(), "oathtool failed: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Relay {
    /// `relay init` in a fresh directory, with an optional config file, and one operator
    /// account `alice` (two-factor enrolled).
    pub fn new(config: Option<&str>) -> Relay {
        Self::with_policy(config, None)
    }

    /// Like [`Relay::new`], with a policy file in the data directory.
    pub fn with_policy(config: Option<&str>, policy: Option<&str>) -> Relay {
        Self::build(config, policy, &[])
    }

    /// Like [`Relay::new`], with more arguments to `relay init` (`--offline-ca DIR`).
    pub fn with_init_args(config: Option<&str>, init: &[&str]) -> Relay {
        Self::build(config, None, init)
    }

    fn build(config: Option<&str>, policy: Option<&str>, init: &[&str]) -> Relay {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("relay");
        let (st, out, err) = run(
            Command::new(bin("relay"))
                .arg("--data-dir")
                .arg(&data)
                .arg("init")
                .args(init),
            None,
        );
        assert!(st.success(), "relay init failed: {err}");
        let fingerprint = out.lines().last().unwrap_or_default().trim().to_string();
        assert_eq!(
            fingerprint.len(),
            64,
            "last line of `relay init` is the fingerprint: {out}"
        );
        let config = config.map(|text| {
            let p = dir.path().join("relay.toml");
            std::fs::write(&p, text).unwrap();
            p
        });
        if let Some(text) = policy {
            std::fs::write(data.join("policy.toml"), text).unwrap();
        }
        let relay = Relay {
            dir,
            fingerprint,
            addr: String::new(),
            config,
            proc: None,
            screen: Mutex::new(None),
            authenticators: Mutex::new(HashMap::new()),
        };
        relay.add_user("alice", PASSWORD);
        relay
    }

    /// `relay agent-bundle` for "Example IT Help Desk" reaching this relay at `routes`,
    /// written to `out` (the agent beside the relay binary).
    pub fn bundle_agent(&self, out: &Path, routes: &str) -> PathBuf {
        let o = out.to_str().expect("a UTF-8 path");
        let args = [
            "agent-bundle",
            "--name",
            "Example IT Help Desk",
            "--relay",
            routes,
            "--out",
            o,
        ];
        let (st, stdout, stderr) = self.cli(&args, None);
        assert!(st.success(), "agent-bundle failed: {stderr}");
        assert!(stdout.contains(&self.fingerprint), "{stdout}");
        out.to_path_buf()
    }

    /// `relay ARGS...` on this relay's data directory, with `stdin`.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> (ExitStatus, String, String) {
        let mut cmd = Command::new(bin("relay"));
        cmd.arg("--data-dir").arg(self.data_dir()).args(args);
        run(&mut cmd, stdin)
    }

    /// The audit log as `relay audit --json --limit 500` lists it.
    pub fn audit_json(&self) -> String {
        let (st, out, err) = self.cli(&["audit", "--json", "--limit", "500"], None);
        assert!(st.success(), "relay audit: {err}");
        out
    }

    /// `relay user add NAME EXTRA... --json` (password on stdin unless `--ldap`); remembers
    /// the enrolled authenticator. Returns the JSON result.
    pub fn add_user_with(&self, name: &str, password: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["user", "add", name, "--json"];
        args.extend_from_slice(extra);
        let ldap = extra.contains(&"--ldap");
        if !ldap {
            args.push("--password-stdin");
        }
        let input = format!("{password}\n");
        let (st, out, err) = self.cli(&args, (!ldap).then_some(input.as_str()));
        assert!(st.success(), "relay user add failed: {err}");
        let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("relay user add --json printed {out:?}: {e}"));
        let tf = &v["two_factor"];
        if let Some(secret) = tf["secret"].as_str() {
            let codes = tf["recovery_codes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            self.authenticators.lock().unwrap().insert(
                name.to_string(),
                Authenticator {
                    secret: secret.to_string(),
                    uri: tf["otpauth_uri"].as_str().unwrap().to_string(),
                    recovery_codes: codes,
                    last_step: None,
                },
            );
        }
        v
    }

    /// The enrolment of `user`.
    pub fn authenticator(&self, user: &str) -> Authenticator {
        self.authenticators.lock().unwrap()[user].clone()
    }

    /// A TOTP code for `user` that the relay has not seen yet, as the operator would read it
    /// from their phone (waiting for the next 30-second step when the current and next are
    /// used up). Empty when the account has no authenticator.
    pub fn totp(&self, user: &str) -> String {
        let mut all = self.authenticators.lock().unwrap();
        let Some(a) = all.get_mut(user) else {
            return String::new();
        };
        loop {
            let now = unix_now();
            let step = now / 30;
            // The relay accepts one step of clock skew either way; use the current step, else
            // the next one, else wait.
            for s in [step, step + 1] {
                if a.last_step.is_none_or(|l| s > l) {
                    a.last_step = Some(s);
                    return oathtool_code(&a.secret, s * 30);
                }
            }
            std::thread::sleep(Duration::from_secs(30 - now % 30));
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("relay")
    }

    /// The relay's issuing key and the authority certifying it, from its data directory: to
    /// sign certificates in a test the way a login does.
    pub fn issuing(&self) -> sightline_relay::authority::ca::Issuing {
        let data = sightline_relay::store::paths::DataDir::new(self.data_dir());
        sightline_relay::authority::ca::load_issuing(&data, false).unwrap()
    }

    pub fn add_user(&self, name: &str, password: &str) {
        self.add_user_with(
            name,
            password,
            &[
                "--display-name",
                "Alice Example",
                "--org",
                "Example Help Desk",
            ],
        );
    }

    /// Starts `relay serve` on a free loopback port and waits until it listens.
    pub fn start(&mut self) {
        self.serve(&["--listen", "127.0.0.1:0"], 1);
    }

    /// Starts `relay serve` with the listeners of its configuration file (no `--listen`) and
    /// waits until all `count` listen; returns their addresses in the file's order ([`Self::addr`]
    /// is the first).
    pub fn start_listeners(&mut self, count: usize) -> Vec<String> {
        self.serve(&[], count)
    }

    /// `relay serve ARGS`, waiting for `count` `listening on` lines.
    fn serve(&mut self, args: &[&str], count: usize) -> Vec<String> {
        let mut cmd = Command::new(bin("relay"));
        cmd.arg("--data-dir")
            .arg(self.data_dir())
            .arg("serve")
            .args(args);
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        let mut p = Proc::spawn("relay", &mut cmd);
        let addrs: Vec<String> = (0..count)
            .map(|_| {
                let line = p.wait_line("listening on ", Duration::from_secs(30));
                line.trim_start_matches("listening on ").trim().to_string()
            })
            .collect();
        self.addr = addrs[0].clone();
        self.proc = Some(p);
        addrs
    }

    /// Sends `sig` (`HUP`, ...) to the running relay.
    pub fn signal(&self, sig: &str) {
        self.proc.as_ref().expect("relay not running").signal(sig);
    }

    /// Stops the relay with SIGTERM and waits for it.
    pub fn stop(&mut self) -> ExitStatus {
        let mut p = self.proc.take().expect("relay not running");
        p.signal("TERM");
        p.wait_exit(Duration::from_secs(20))
    }

    pub fn log(&self) -> String {
        self.proc.as_ref().map(Proc::stderr).unwrap_or_default()
    }

    /// `viewer session` for alice, JSON events, password on stdin.
    pub fn viewer(&self, data: &Path) -> Proc {
        self.viewer_with(data, &self.fingerprint.clone(), PASSWORD)
    }

    pub fn viewer_with(&self, data: &Path, key: &str, password: &str) -> Proc {
        let mut p = Proc::spawn(
            "viewer",
            Command::new(bin("viewer"))
                .arg("--data-dir")
                .arg(data)
                .args([
                    "session",
                    "--relay",
                    &self.addr,
                    "--relay-key",
                    key,
                    "--user",
                    "alice",
                    "--password-stdin",
                    "--json",
                ]),
        );
        p.send_lines(&[password, &self.totp("alice")]);
        p
    }

    /// `agent CODE` with JSON events.
    pub fn agent(&self, data: &Path, code: &str) -> Proc {
        self.agent_with(data, &self.fingerprint.clone(), code)
    }

    pub fn agent_with(&self, data: &Path, key: &str, code: &str) -> Proc {
        let display = self.screen_display();
        self.agent_on(data, key, code, Some(&display))
    }

    /// `agent CODE` sharing the X display `display` (none: the agent has no display); the
    /// customer answers yes to viewing (typed ahead, as a customer on the phone would).
    pub fn agent_on(&self, data: &Path, key: &str, code: &str, display: Option<&str>) -> Proc {
        let mut p = self.agent_asking(data, key, code, display, &[]);
        p.write_line("y");
        p
    }

    /// `agent EXTRA... --json CODE` with nobody answering yet: the test plays the customer.
    pub fn agent_asking(
        &self,
        data: &Path,
        key: &str,
        code: &str,
        display: Option<&str>,
        extra: &[&str],
    ) -> Proc {
        self.agent_via(&self.addr, data, key, code, display, extra)
    }

    /// Like [`Relay::agent_asking`], reaching the relay at `addr` (a proxy in front of it).
    pub fn agent_via(
        &self,
        addr: &str,
        data: &Path,
        key: &str,
        code: &str,
        display: Option<&str>,
        extra: &[&str],
    ) -> Proc {
        let mut cmd = Command::new(bin("agent"));
        cmd.arg("--data-dir")
            .arg(data)
            .args(["--relay", addr, "--relay-key", key, "--json"])
            .args(extra)
            .arg(code);
        match display {
            Some(d) => cmd.env("DISPLAY", d),
            None => cmd.env_remove("DISPLAY"),
        };
        cmd.env_remove("WAYLAND_DISPLAY");
        Proc::spawn("agent", &mut cmd)
    }

    /// Like [`Relay::agent_asking`] on this relay's own small display.
    pub fn agent_unanswered(&self, data: &Path, code: &str, extra: &[&str]) -> Proc {
        let display = self.screen_display();
        self.agent_asking(data, &self.fingerprint.clone(), code, Some(&display), extra)
    }

    /// The X display of the relay's own small screen (started on first use).
    pub fn screen_display(&self) -> String {
        let mut screen = self.screen.lock().unwrap();
        screen
            .get_or_insert_with(|| Xvfb::start(640, 480))
            .display
            .clone()
    }

    /// Headless `viewer session` with extra arguments (after `--json`).
    pub fn viewer_args(&self, data: &Path, extra: &[&str]) -> Proc {
        let mut p = Proc::spawn(
            "viewer",
            Command::new(bin("viewer"))
                .arg("--data-dir")
                .arg(data)
                .args([
                    "session",
                    "--relay",
                    &self.addr,
                    "--relay-key",
                    &self.fingerprint,
                    "--user",
                    "alice",
                    "--password-stdin",
                    "--json",
                ])
                .args(extra),
        );
        p.send_lines(&[PASSWORD, &self.totp("alice")]);
        p
    }
}

/// `agent --lan-only --listen 127.0.0.1:0 --json EXTRA...` on `display`, its key in `data`;
/// returns it (once it listens) and its address.
pub fn lan_kiosk(data: &Path, display: &str, extra: &[&str]) -> (Proc, String) {
    let mut p = Proc::spawn(
        "kiosk",
        Command::new(bin("agent"))
            .arg("--data-dir")
            .arg(data)
            .args(["--lan-only", "--listen", "127.0.0.1:0", "--json"])
            .args(extra)
            .env("DISPLAY", display)
            .env_remove("WAYLAND_DISPLAY"),
    );
    let addr = p.wait_event("listening", SLOW)["address"]
        .as_str()
        .unwrap()
        .to_string();
    (p, addr)
}

/// `viewer session --direct ADDR --json EXTRA...` as alice; with `relay`, a relay login first
/// (password and TOTP code on stdin), else the stored certificate.
pub fn direct_session(relay: Option<&Relay>, data: &Path, addr: &str, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(bin("viewer"));
    cmd.arg("--data-dir")
        .arg(data)
        .args(["session", "--direct", addr, "--json"])
        .args(extra);
    if let Some(r) = relay {
        cmd.args([
            "--relay",
            &r.addr,
            "--relay-key",
            &r.fingerprint,
            "--user",
            "alice",
            "--password-stdin",
        ]);
    }
    let mut p = Proc::spawn("viewer", &mut cmd);
    match relay {
        Some(r) => p.send_lines(&[PASSWORD, &r.totp("alice")]),
        None => p.close_stdin(),
    }
    p
}

/// Generous timeout for steps that include RSA key generation on a loaded 2-core machine.
pub const SLOW: Duration = Duration::from_secs(60);

/// An Xvfb display started for one test and killed when dropped.
#[derive(Debug)]
pub struct Xvfb {
    pub display: String,
    child: Child,
    apps: Vec<Child>,
}

impl Xvfb {
    /// Starts `Xvfb :N -screen 0 WxHx24` on a free display number.
    pub fn start(width: u32, height: u32) -> Xvfb {
        // One at a time within this process (see XVFB_LIFECYCLE). Display numbers 100 to 5099,
        // starting at a place of this process's own, skipping any whose lock file or socket
        // exists.
        let _one_at_a_time = XVFB_LIFECYCLE.lock().unwrap_or_else(|p| p.into_inner());
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let base = (std::process::id() % 500) * 10;
        for _ in 0..500 {
            let step = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let n = 100 + (base + step) % 5000;
            let socket = format!("/tmp/.X11-unix/X{n}");
            if Path::new(&socket).exists() || Path::new(&format!("/tmp/.X{n}-lock")).exists() {
                continue;
            }
            let mut child = Command::new("Xvfb")
                .arg(format!(":{n}"))
                .args(["-screen", "0"])
                .arg(format!("{width}x{height}x24"))
                .args(["-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb is installed by ./dev");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !Path::new(&socket).exists() && Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // The number was taken after all (another test process): try the next one.
            if let Ok(Some(_)) = child.try_wait() {
                continue;
            }
            assert!(Path::new(&socket).exists(), "Xvfb :{n} did not start");
            return Xvfb {
                display: format!(":{n}"),
                child,
                apps: Vec::new(),
            };
        }
        panic!("no free X display number");
    }

    /// Starts an X application on this display (killed with the display).
    pub fn app(&mut self, program: &str, args: &[&str]) {
        let child = Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        self.apps.push(child);
    }

    /// Runs a command against this display to completion (xdotool, xsetroot, import...).
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts an X application and waits until its window `name` is mapped. An application
    /// that has not shown its window after 20 s is killed and started again (twice at most):
    /// on a loaded machine an xterm now and then never maps its window.
    pub fn app_window(&mut self, program: &str, args: &[&str], name: &str) -> String {
        let mut why = String::new();
        for _ in 0..3 {
            let log = std::env::temp_dir().join(format!(
                "sightline-app-{}-{}.log",
                std::process::id(),
                self.apps.len()
            ));
            let child = Command::new(program)
                .args(args)
                .env("DISPLAY", &self.display)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
            self.apps.push(child);
            if let Some(id) = self.find_window(name, Duration::from_secs(20)) {
                return id;
            }
            if let Some(mut c) = self.apps.pop() {
                let _ = c.kill();
                let status = c.wait();
                why = format!(
                    "{program} {status:?}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
        panic!("window {name:?} did not appear on {}: {why}", self.display)
    }

    /// The id of the visible window called `name`, waiting up to `timeout` for it.
    pub fn find_window(&self, name: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = Command::new("xdotool")
                .args(["search", "--onlyvisible", "--name", name])
                .env("DISPLAY", &self.display)
                .output()
                .unwrap();
            let id = String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            if !id.is_empty() {
                return Some(id);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An xterm titled `sightline-input` that appends what is typed into it to `typed`,
    /// focused, for input tests.
    pub fn typing_target(&mut self, typed: &Path) {
        let cmd = format!("stty -echo; cat > {}", typed.display());
        self.app_window(
            "xterm",
            &[
                "-title",
                "sightline-input",
                "-geometry",
                "80x20+0+40",
                "-e",
                "sh",
                "-c",
                &cmd,
            ],
            "sightline-input",
        );
        self.run(
            "xdotool",
            &["search", "--name", "sightline-input", "windowfocus"],
        );
    }

    /// Screenshot of the whole display as PNG (ImageMagick `import`).
    pub fn screenshot(&self, path: &Path) {
        let p = path.to_string_lossy().into_owned();
        self.run("import", &["-window", "root", &p]);
    }
}

/// Held while an X server starts or stops, so that within one test process no server starts
/// while another is shutting down.
static XVFB_LIFECYCLE: Mutex<()> = Mutex::new(());

impl Drop for Xvfb {
    fn drop(&mut self) {
        for a in &mut self.apps {
            let _ = a.kill();
            let _ = a.wait();
        }
        let _one_at_a_time = XVFB_LIFECYCLE.lock().unwrap_or_else(|p| p.into_inner());
        // SIGTERM lets the server remove its lock file and socket; SIGKILL if it lingers.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A viewer written in the test on the real protocol, for what the real viewer refuses to do
/// (send input without control, keep typing after a revocation): logs in as alice with her
/// password and a TOTP code, gets a session code, starts the agent with `start_agent(digits)`,
/// and completes the end-to-end handshake. Returns the stream, the session and the agent.
pub async fn modified_viewer(
    relay: &Relay,
    start_agent: impl FnOnce(&str) -> Proc,
) -> (
    sightline_net::stream::FramedStream<sightline_net::stream::BoxIo>,
    sightline_core::e2e::Session,
    Proc,
) {
    use sightline_core::e2e::{E2eConfig, Trust};
    use sightline_core::identity::{PrivateIdentity, MIN_PEER_BITS};
    use sightline_core::relay_proto::Secret;
    let code = relay.totp("alice");
    let key = tokio::task::spawn_blocking(|| {
        PrivateIdentity::generate(&mut rand_core::OsRng, MIN_PEER_BITS).unwrap()
    })
    .await
    .unwrap();
    let pin = relay.fingerprint.parse().unwrap();
    let mut client = Box::pin(sightline_net::RelayClient::connect(&relay.addr, pin))
        .await
        .unwrap();
    let cert = client
        .login(
            "alice",
            Secret::new(PASSWORD),
            Some(Secret::new(code)),
            &key,
        )
        .await
        .unwrap()
        .certificate;
    let created = client.create_session().await.unwrap();
    let agent = start_agent(&created.code.digits());
    let (mut stream, session_id) = client.wait_paired().await.unwrap();
    let cfg = E2eConfig {
        session_id,
        seed: sightline_net::clock::seed(),
        trust: Trust::AnyAgentKey,
        channel: Default::default(),
    };
    let session = sightline_net::session::operator_handshake(&mut stream, cfg, &key, cert)
        .await
        .unwrap();
    (stream, session, agent)
}

/// How many keys are down on `display` now (XQueryKeymap).
pub fn pressed_keys(display: &str) -> usize {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::ConnectionExt;
    let (conn, _) = x11rb::connect(Some(display)).unwrap();
    let keymap = conn.query_keymap().unwrap().reply().unwrap();
    let _ = conn.flush();
    keymap.keys.iter().map(|b| b.count_ones() as usize).sum()
}

/// Waits until `check` holds, polling every 50 ms; panics with `what` after `timeout`.
pub fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private XDG_RUNTIME_DIR for GUI programs (mode 0700, as required).
pub fn runtime_dir(base: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = base.join("xdg-runtime");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// A two-worker tokio runtime for tests that drive the protocol themselves.
pub fn test_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The session pump of a peer written in a test (a modified viewer or agent), on its own task:
/// what to send, what arrives, and the pump's end. It says hello as `software` with
/// `capabilities`, and never closes by itself.
pub fn test_peer_pump(
    mut stream: sightline_net::stream::FramedStream<sightline_net::stream::BoxIo>,
    mut session: sightline_core::e2e::Session,
    software: &str,
    capabilities: &[&str],
) -> (
    tokio::sync::mpsc::Sender<sightline_core::messages::Message>,
    tokio::sync::mpsc::Receiver<sightline_core::messages::Message>,
    tokio::task::JoinHandle<sightline_net::session::SessionEnd>,
) {
    use sightline_core::messages::Message;
    let (app, to_peer, from_peer) = sightline_net::session::AppChannels::pair(256);
    let hello = Message::Hello {
        software: software.into(),
        capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
    };
    let pump = tokio::spawn(async move {
        sightline_net::session::run(
            &mut stream,
            &mut session,
            hello,
            std::future::pending(),
            app,
        )
        .await
    });
    (to_peer, from_peer, pump)
}
