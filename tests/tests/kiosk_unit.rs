//! The kiosk's systemd unit, `assets/sightline-kiosk.service`, checked the way systemd and the
//! agent will see it:
//!
//! - `systemd-analyze verify` has nothing to say about it, alone and when it is enabled under
//!   `graphical.target` (some ordering cycles show only there); it is not ordered after a target
//!   that wants it; its `Documentation=` file is one its install steps put there; every
//!   setting its comments document is one it sets, and every variable it sets is used.
//! - Its command line, expanded the way systemd expands it (`${VAR}` is one argument, `$VAR`
//!   is split at whitespace into zero or more), starts the real agent with the unit's defaults
//!   (an empty `SIGHTLINE_ARGS` adds nothing) and with a typical `SIGHTLINE_ARGS`; the agent
//!   listens and stops cleanly on SIGTERM. Left empty, the relay key makes it refuse to start.
//!
//! Needs `systemd-analyze` (Debian package `systemd`) and the built agent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_tests::*;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Where the unit runs the agent; the tests put the built agent there instead.
const INSTALLED_AGENT: &str = "/usr/local/bin/sightline-agent";
/// Variables the unit sets for the agent's environment rather than for its command line.
const READ_BY_THE_AGENT: [&str; 3] = ["DISPLAY", "XAUTHORITY", "XDG_DATA_HOME"];
/// A relay key fingerprint for the agent to pin (any 64 hex digits will do: no one connects).
const RELAY_KEY: &str = "5ccabe2d738a54a6a6bf0897f150ebace7a577a718a4d7d7a96a634a7730a107";

fn unit_text() -> String {
    let path = repo_root().join("assets/sightline-kiosk.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The unit's settings as (section, key, value), continuation lines joined, comments skipped.
fn directives(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with(';'))
        {
            continue;
        }
        if let Some(body) = line.strip_suffix('\\') {
            pending.push_str(body);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let full = std::mem::take(&mut pending);
        if full.starts_with('[') {
            section = full.trim_matches(['[', ']']).to_string();
        } else {
            let (key, value) = full
                .split_once('=')
                .unwrap_or_else(|| panic!("not a setting: {full}"));
            out.push((section.clone(), key.trim().into(), value.trim().into()));
        }
    }
    out
}

fn values<'a>(dirs: &'a [(String, String, String)], section: &str, key: &str) -> Vec<&'a str> {
    dirs.iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.as_str())
        .collect()
}

/// Splits at whitespace, keeping double-quoted parts (quotes removed) together, as systemd does
/// for `Environment=` and command lines.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quote in {text:?}");
    if any {
        out.push(word);
    }
    out
}

/// The variables the unit's `Environment=` lines set.
fn environment(dirs: &[(String, String, String)]) -> HashMap<String, String> {
    let mut env = HashMap::new();
    for value in values(dirs, "Service", "Environment") {
        for assignment in words(value) {
            let (name, value) = assignment
                .split_once('=')
                .unwrap_or_else(|| panic!("not an assignment: {assignment}"));
            env.insert(name.to_string(), value.to_string());
        }
    }
    env
}

/// Expands a command line the way systemd.service(5) describes: a word that is exactly `$VAR`
/// becomes the value split at whitespace (nothing when it is empty); `${VAR}` is replaced by
/// the value as it is, inside one argument. Unset variables are empty.
fn expand(exec: &str, env: &HashMap<String, String>) -> Vec<String> {
    let var = |name: &str| env.get(name).cloned().unwrap_or_default();
    let mut args = Vec::new();
    for word in words(exec) {
        let name = word
            .strip_prefix('$')
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if let Some(name) = name {
            args.extend(var(name).split_whitespace().map(String::from));
            continue;
        }
        let mut arg = String::new();
        let mut rest = word.as_str();
        while let Some(start) = rest.find("${") {
            arg.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {word}"));
            arg.push_str(&var(&rest[start + 2..start + end]));
            rest = &rest[start + end + 1..];
        }
        arg.push_str(rest);
        args.push(arg);
    }
    args
}

/// Names of the variables a command line refers to (`$VAR` and `${VAR}`).
fn referenced(exec: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = exec;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let braced = rest.starts_with('{');
        let body = if braced { &rest[1..] } else { rest };
        let name: String = body
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        names.push(name);
    }
    names
}

#[test]
fn the_command_line_expands_as_systemd_expands_it() {
    let env: HashMap<String, String> = [
        ("ONE", "a b"),
        ("EMPTY", ""),
        ("MANY", "--allow 10.0.0.0/8  --fps 5"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        expand("/bin/x --k ${ONE} $EMPTY ${EMPTY} $MANY pre${ONE}", &env),
        [
            "/bin/x",
            "--k",
            "a b",
            "",
            "--allow",
            "10.0.0.0/8",
            "--fps",
            "5",
            "prea b"
        ]
    );
    assert_eq!(words("A=1 \"B=2 3\""), ["A=1", "B=2 3"]);
}

#[test]
fn systemd_analyze_verify_finds_nothing_to_say() {
    let text = unit_text();
    assert!(
        text.contains(INSTALLED_AGENT),
        "the unit no longer runs {INSTALLED_AGENT}"
    );
    let agent = bin("agent");
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("units");
    let wants = units.join("graphical.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    let unit = units.join("sightline-kiosk.service");
    // verify insists that the program exists: run the built agent in its place.
    std::fs::write(
        &unit,
        text.replace(INSTALLED_AGENT, agent.to_str().unwrap()),
    )
    .unwrap();
    // What `systemctl enable` does with WantedBy=graphical.target.
    std::os::unix::fs::symlink(&unit, wants.join("sightline-kiosk.service")).unwrap();

    let verify = |targets: &[&str]| {
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .args(targets)
            .current_dir(dir.path())
            // Our directory first, then the system's unit directories (the trailing ':').
            .env("SYSTEMD_UNIT_PATH", format!("{}:", units.display()))
            .env("SYSTEMD_LOG_COLOR", "0")
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run systemd-analyze ({e}): install systemd (./dev does)")
            });
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status, said)
    };

    // The unit alone: loads, every setting known and valid, the program exists.
    let (status, said) = verify(&["units/sightline-kiosk.service"]);
    assert!(status.success(), "systemd-analyze verify failed:\n{said}");
    let about_us: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("sightline-kiosk") || l.contains(units.to_str().unwrap()))
        .collect();
    assert!(
        about_us.is_empty(),
        "systemd-analyze verify warns about the unit:\n{}",
        about_us.join("\n")
    );

    // Enabled: starting graphical.target must not meet an ordering cycle through the unit.
    // (Only lines about the unit or a cycle count: the host's other units are not ours.)
    let (_, said) = verify(&["graphical.target"]);
    let trouble: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("sightline-kiosk") || l.contains("cycle"))
        .collect();
    assert!(
        trouble.is_empty(),
        "with the unit enabled, systemd-analyze verify graphical.target says:\n{}",
        trouble.join("\n")
    );
}

#[test]
fn the_units_settings_documentation_and_ordering_agree() {
    let text = unit_text();
    let dirs = directives(&text);

    // Ordered after a target that also wants it, the unit would wait for the very target it
    // belongs to (systemd breaks such loops by dropping an ordering; do not rely on it).
    let after: Vec<String> = values(&dirs, "Unit", "After")
        .iter()
        .flat_map(|v| words(v))
        .collect();
    for wanted_by in values(&dirs, "Install", "WantedBy") {
        for target in words(wanted_by) {
            assert!(
                !after.contains(&target),
                "After={target} and WantedBy={target}"
            );
        }
    }

    // Documentation= must name a file the install steps in the header put there, from a page
    // that exists in this repository.
    for doc in values(&dirs, "Unit", "Documentation")
        .iter()
        .flat_map(|v| words(v))
    {
        let Some(path) = doc.strip_prefix("file://") else {
            continue;
        };
        let install = text
            .lines()
            .filter(|l| l.starts_with('#') && l.contains("install") && l.ends_with(path))
            .map(|l| l.trim_start_matches('#').trim().to_string())
            .next()
            .unwrap_or_else(|| panic!("no install step in the header puts a file at {path}"));
        let source = words(&install)
            .into_iter()
            .rev()
            .nth(1)
            .expect("install SOURCE DEST");
        assert!(
            repo_root().join(&source).is_file(),
            "{install}: {source} does not exist"
        );
    }

    // Every variable the unit sets is used, every variable it uses is set, and every setting
    // its comments document (`Environment=NAME=...`) is one it sets.
    let env = environment(&dirs);
    let exec = values(&dirs, "Service", "ExecStart");
    assert_eq!(exec.len(), 1, "one ExecStart=");
    let used = referenced(exec[0]);
    for name in &used {
        assert!(env.contains_key(name), "ExecStart uses ${name}, never set");
    }
    for name in env.keys() {
        assert!(
            used.contains(name) || READ_BY_THE_AGENT.contains(&name.as_str()),
            "Environment={name}= is set but nothing uses it"
        );
    }
    for line in text.lines().filter(|l| l.starts_with('#')) {
        if let Some((_, rest)) = line.split_once("Environment=") {
            let rest = rest.trim_start_matches('"');
            let name = rest.split('=').next().unwrap_or_default();
            assert!(
                env.contains_key(name),
                "the comments document {name}, which the unit does not set"
            );
        }
    }
}

/// The agent's command line and environment as the unit would give them, with `overrides` on
/// top of the unit's own `Environment=` values. The data and config directories go to `home`.
fn unit_command(overrides: &[(&str, &str)], home: &Path) -> (Vec<String>, HashMap<String, String>) {
    let dirs = directives(&unit_text());
    let mut env = environment(&dirs);
    for (k, v) in overrides {
        env.insert(k.to_string(), v.to_string());
    }
    // The unit's state directory is not writable here; the test's own directory stands in.
    env.insert(
        "XDG_DATA_HOME".into(),
        home.join("data").to_str().unwrap().into(),
    );
    let args = expand(values(&dirs, "Service", "ExecStart")[0], &env);
    assert_eq!(args[0], INSTALLED_AGENT);
    (args[1..].to_vec(), env)
}

/// Starts the agent as the unit would (systemd gives a service a clean environment).
fn spawn_agent(args: &[String], env: &HashMap<String, String>, home: &Path) -> Proc {
    let mut cmd = Command::new(bin("agent"));
    cmd.env_clear()
        .args(args)
        .envs(env)
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"));
    Proc::spawn("kiosk", &mut cmd)
}

#[test]
fn the_agent_accepts_the_units_command_line_and_stops_on_sigterm() {
    let home = tempfile::tempdir().unwrap();
    // Port 0: the unit's own 0.0.0.0:7615 may be taken on a test machine.
    let listen = ("SIGHTLINE_LISTEN", "127.0.0.1:0");
    let key = ("SIGHTLINE_RELAY_KEY", RELAY_KEY);
    let typical = ("SIGHTLINE_ARGS", "--allow 127.0.0.0/8  --max-sessions 2");
    for overrides in [vec![listen, key], vec![listen, key, typical]] {
        let (args, env) = unit_command(&overrides, home.path());
        assert!(
            args.iter().all(|a| !a.is_empty()),
            "an empty argument: {args:?}"
        );
        let mut agent = spawn_agent(&args, &env, home.path());
        let address = agent.wait_event("listening", SLOW)["address"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(address.starts_with("127.0.0.1:"), "{address}");
        agent.signal("TERM");
        agent.wait_event("stopped", Duration::from_secs(15));
        let status = agent.wait_exit(Duration::from_secs(15));
        assert!(
            status.success(),
            "{args:?}: exit {status:?}; stderr:\n{}",
            agent.stderr()
        );
    }
    // The identity key went to the data directory the unit names.
    assert!(home
        .path()
        .join("data/sightline/agent/identity-key.pem")
        .is_file());

    // Left at the unit's empty default, the relay key stops the agent before it listens.
    let (args, env) = unit_command(&[listen], home.path());
    let mut agent = spawn_agent(&args, &env, home.path());
    let status = agent.wait_exit(SLOW);
    assert_eq!(status.code(), Some(1), "stderr:\n{}", agent.stderr());
    assert!(
        agent.stderr().contains("--relay-key"),
        "stderr:\n{}",
        agent.stderr()
    );
    while agent.next_line(Duration::from_millis(200)).is_some() {}
    assert!(
        !agent.events().contains(&"listening".to_string()),
        "{:?}",
        agent.seen
    );
}
