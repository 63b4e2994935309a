//! Debian roots made by `debootstrap`, for what must run on a machine other than this one: an
//! older Debian without PipeWire for the single-file agent (Debian 11 "bullseye", glibc 2.31,
//! with Xvfb and nothing else graphical), a bare Debian 12 with systemd to install the
//! packages in. Each is made once and cached under /var/cache; [`in_root`] runs a command
//! inside one with its own /proc, /dev and /tmp (a mount and PID namespace: everything started
//! there ends with the command). Needs root, as the firewall tests do.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the roots are kept between runs.
const CACHE: &str = "/var/cache/sightline-tests";
/// The packages a root for the agent gets beyond the minimal base: a virtual display and a way
/// to ask it whether it is up. No PipeWire, no D-Bus daemon, no desktop.
pub const DISPLAY_ONLY: &str = "xvfb,x11-utils";
/// What a root to install the packages in gets: systemd (for `systemd-analyze verify`) and
/// what the relay's maintainer script uses.
pub const WITH_SYSTEMD: &str = "systemd,adduser";
/// The Debian mirror the host's apt uses.
const MIRROR: &str = "http://deb.debian.org/debian";

/// A debootstrapped root of `suite` with the packages `include` (comma-separated): made on
/// first use (a few minutes), reused after. Returns the root, or why it could not be made (no
/// mirror, no debootstrap). Tests that change it work on a [`copy`].
pub fn debian_root(suite: &str, include: &str) -> Result<PathBuf, String> {
    let name = format!("{suite}-{}", include.replace(',', "-"));
    let root = Path::new(CACHE).join(&name);
    let done = root.join(".sightline-complete");
    if done.exists() {
        return Ok(root);
    }
    let partial = Path::new(CACHE).join(format!("{name}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(CACHE).map_err(|e| format!("{CACHE}: {e}"))?;
    eprintln!("making a Debian {suite} root with debootstrap (once; cached in {CACHE})");
    let out = Command::new("debootstrap")
        .args(["--variant=minbase", &format!("--include={include}"), suite])
        .arg(&partial)
        .arg(MIRROR)
        .output()
        .map_err(|e| format!("debootstrap: {e} (./dev installs it)"))?;
    if !out.status.success() {
        let log = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        return Err(format!("debootstrap {suite} failed: {tail:?}"));
    }
    let _ = std::fs::remove_dir_all(&root);
    std::fs::rename(&partial, &root).map_err(|e| format!("{}: {e}", root.display()))?;
    std::fs::write(&done, suite).map_err(|e| format!("{}: {e}", done.display()))?;
    Ok(root)
}

/// A copy of `root` under `dir` to change freely (about 300 MB; seconds).
pub fn copy(root: &Path, dir: &Path) -> PathBuf {
    let to = dir.join("root");
    let st = Command::new("cp")
        .arg("-a")
        .arg(root)
        .arg(&to)
        .status()
        .expect("cp");
    assert!(st.success(), "copying {}", root.display());
    to
}

/// What a root holds: the glibc version and whether any PipeWire or D-Bus library is there.
pub fn describe(root: &Path) -> (String, Vec<String>) {
    let lib = root.join("usr/lib/x86_64-linux-gnu");
    let mut glibc = String::new();
    let mut media = Vec::new();
    for entry in std::fs::read_dir(&lib).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(v) = name
            .strip_prefix("libc-")
            .and_then(|n| n.strip_suffix(".so"))
        {
            glibc = v.to_owned();
        }
        if name.starts_with("libpipewire") || name.starts_with("libdbus") {
            media.push(name);
        }
    }
    (glibc, media)
}

/// A command that runs `script` (sh) inside `root`, in a mount and PID namespace of its own
/// with fresh /proc, the host's /dev and an empty /tmp. The network is the host's (a relay
/// on loopback is reachable, a mirror too), or with `own_network` a namespace of its own with
/// only loopback (a service may take its usual port). When the command's process is killed, everything in
/// the root goes with it (`--kill-child`). Arguments after the script are `$1`, `$2`, ...
pub fn in_root(root: &Path, script: &str, args: &[&str], own_network: bool) -> Command {
    let setup = r#"
        set -e
        r="$1"; shift
        [ -z "$SIGHTLINE_OWN_NET" ] || ip link set lo up
        mount -t proc proc "$r/proc"
        mount --rbind /dev "$r/dev"
        mount -t tmpfs tmpfs "$r/tmp"
        exec chroot "$r" /bin/sh -c "$@"
    "#;
    let mut cmd = Command::new("unshare");
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/tmp")
        .args(["--mount", "--pid", "--fork", "--kill-child"]);
    if own_network {
        cmd.arg("--net").env("SIGHTLINE_OWN_NET", "1");
    }
    cmd.args(["--", "sh", "-c", setup, "sh"])
        .arg(root)
        .arg(script)
        .arg("sh")
        .args(args);
    cmd
}
