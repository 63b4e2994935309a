//! The single-file agent (`just single-file-agent`: glibc 2.31 through cargo-zigbuild) on an
//! older Linux: its ELF header asks only for glibc's base libraries and symbol versions up to
//! GLIBC_2.31, and in a debootstrapped Debian 11 root with no PipeWire it shares a virtual
//! screen with a viewer outside the root. Needs root and the built agent: `just release-check`
//! builds it and runs this test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_tests::debroot::{debian_root, describe, in_root, DISPLAY_ONLY};
use sightline_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// glibc's own libraries: all a Linux desktop is sure to have.
const GLIBC_BASE: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
];

fn single_file_agent() -> PathBuf {
    let path = std::env::var_os("SIGHTLINE_SINGLE_FILE_AGENT")
        .map(PathBuf::from)
        .expect("SIGHTLINE_SINGLE_FILE_AGENT=PATH names the agent to check (`just release-check` sets it)");
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

fn tool(program: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(program).args(args).arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The NEEDED entries of an ELF file, from `readelf -d`.
fn needed(file: &Path) -> Vec<String> {
    tool("readelf", &["-d"], file)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split('[').nth(1)?.trim_end_matches(']').to_owned()))
        .collect()
}

/// The newest GLIBC_x.y symbol version the file requires, from `objdump -T`.
fn newest_glibc(file: &Path) -> (u32, u32) {
    tool("objdump", &["-T"], file)
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .max()
        .unwrap()
}

#[test]
#[ignore = "needs the single-file agent and root: `just release-check`"]
fn the_single_file_agent_links_only_glibc_up_to_2_31() {
    let agent = single_file_agent();
    let libs = needed(&agent);
    let extra: Vec<_> = libs
        .iter()
        .filter(|l| !GLIBC_BASE.contains(&l.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "needs more than glibc: {extra:?} (all: {libs:?})"
    );
    let newest = newest_glibc(&agent);
    assert!(
        newest <= (2, 31),
        "requires GLIBC_{}.{}",
        newest.0,
        newest.1
    );
    eprintln!(
        "NEEDED {libs:?}; newest symbol version GLIBC_{}.{}",
        newest.0, newest.1
    );
}

#[test]
#[ignore = "needs the single-file agent and root: `just release-check`"]
fn the_single_file_agent_shares_a_screen_from_debian_11_without_pipewire() {
    let agent = single_file_agent();
    let root = debian_root("bullseye", DISPLAY_ONLY)
        .or_else(|e| {
            eprintln!("{e}; falling back to a Debian 12 root (the symbol test still holds 2.31)");
            debian_root("bookworm", DISPLAY_ONLY)
        })
        .unwrap();
    let (glibc, media) = describe(&root);
    eprintln!("root {} with glibc {glibc}", root.display());
    assert!(media.is_empty(), "the root has {media:?}");
    let inside = root.join("opt/sightline/agent");
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    std::fs::copy(&agent, &inside).unwrap();

    let mut relay = Relay::new(None);
    relay.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut viewer = relay.viewer(&tmp.path().join("viewer"));
    let code = viewer.session_code();

    // A display number of this run's own, beyond the 100-5099 the other tests take.
    let display = (6000 + std::process::id() % 1000).to_string();
    let script = r#"
        d="$1"; shift
        Xvfb ":$d" -screen 0 800x600x24 -nolisten tcp >/tmp/xvfb.log 2>&1 &
        i=0
        until xdpyinfo -display ":$d" >/dev/null 2>&1; do
            i=$((i + 1)); [ "$i" -le 100 ] || { cat /tmp/xvfb.log >&2; exit 3; }; sleep 0.1
        done
        echo "{\"event\":\"root\",\"glibc\":\"$(ldd --version | head -n1)\"}"
        # A Wayland desktop as far as the agent can tell, with XWayland: the portal needs
        # PipeWire, which this root lacks, so the agent must say so and fall back to X11.
        mkdir -p -m 0700 /tmp/xdg
        DISPLAY=":$d" WAYLAND_DISPLAY=wayland-0 XDG_RUNTIME_DIR=/tmp/xdg /opt/sightline/agent "$@"
    "#;
    let mut cmd = in_root(
        &root,
        script,
        &[
            &display,
            "--data-dir",
            "/tmp/agent",
            "--relay",
            &relay.addr,
            "--relay-key",
            &relay.fingerprint,
            "--json",
            &code,
        ],
        false,
    );
    let mut agent = Proc::spawn("agent in the old root", &mut cmd);
    agent.write_line("y");
    let r = agent.wait_event("root", SLOW);
    eprintln!("inside: {}", r["glibc"]);
    agent.wait_event("connected", SLOW);
    let frame = viewer.wait_event("frame", SLOW);
    eprintln!("viewer got a frame: {frame}");
    agent.write_line("e");
    agent.wait_exit(SLOW);
    let log = agent.stderr();
    assert!(
        log.contains("falling back to X11") && log.contains("libpipewire-0.3.so.0 not loaded"),
        "the agent did not say why it fell back to X11: {log}"
    );
}
