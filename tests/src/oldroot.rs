//! An older Debian without PipeWire, for the single-file agent: a root made once by
//! `debootstrap` (Debian 11 "bullseye", glibc 2.31, with Xvfb and nothing else graphical),
//! cached under /var/cache, and a way to run a command inside it with its own /proc, /dev and
//! /tmp (a mount and PID namespace: everything started there ends with the command). Needs
//! root, as the firewall tests do.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the roots are kept between runs.
const CACHE: &str = "/var/cache/sightline-tests";
/// The packages the root gets beyond the minimal base: a virtual display and a way to ask it
/// whether it is up. No PipeWire, no D-Bus daemon, no desktop.
const PACKAGES: &str = "xvfb,x11-utils";
/// The Debian mirror the host's apt uses.
const MIRROR: &str = "http://deb.debian.org/debian";

/// A debootstrapped root of `suite`: made on first use (a few minutes), reused after.
/// Returns the root, or why it could not be made (no mirror, no debootstrap).
pub fn debian_root(suite: &str) -> Result<PathBuf, String> {
    let root = Path::new(CACHE).join(suite);
    let done = root.join(".sightline-complete");
    if done.exists() {
        return Ok(root);
    }
    let partial = Path::new(CACHE).join(format!("{suite}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(CACHE).map_err(|e| format!("{CACHE}: {e}"))?;
    eprintln!("making a Debian {suite} root with debootstrap (once; cached in {CACHE})");
    let out = Command::new("debootstrap")
        .args(["--variant=minbase", &format!("--include={PACKAGES}"), suite])
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

/// What a root holds: the glibc version and whether any PipeWire or D-Bus library is there.
pub fn describe(root: &Path) -> (String, Vec<String>) {
    let lib = root.join("usr/lib/x86_64-linux-gnu");
    let mut glibc = String::new();
    let mut media = Vec::new();
    for entry in std::fs::read_dir(&lib).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(v) = name.strip_prefix("libc-").and_then(|n| n.strip_suffix(".so")) {
            glibc = v.to_owned();
        }
        if name.starts_with("libpipewire") || name.starts_with("libdbus") {
            media.push(name);
        }
    }
    (glibc, media)
}

/// A command that runs `script` (sh) inside `root`, in a mount and PID namespace of its own
/// with fresh /proc, the host's /dev and an empty /tmp; the network is the host's, so a
/// relay on loopback is reachable. When the command's process is killed, everything in
/// the root goes with it (`--kill-child`). Arguments after the script are `$1`, `$2`, ...
pub fn in_root(root: &Path, script: &str, args: &[&str]) -> Command {
    let setup = r#"
        set -e
        r="$1"; shift
        mount -t proc proc "$r/proc"
        mount --rbind /dev "$r/dev"
        mount -t tmpfs tmpfs "$r/tmp"
        exec chroot "$r" /bin/sh -c "$@"
    "#;
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--pid", "--fork", "--kill-child", "--", "sh", "-c", setup, "sh"])
        .arg(root)
        .arg(script)
        .arg("sh")
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/tmp");
    cmd
}
