//! The Debian packages (`just release` writes them to dist/) installed in a bare Debian 12 root
//! by apt, as an administrator would: the relay's maintainer script makes the `sightline` user
//! and the keys, both units pass `systemd-analyze verify`, the relay starts as its unit says
//! (user, command line) and serves, the agent it bundles reaches it, and the viewer's
//! declared dependencies are enough for it to start. Needs root, the Debian mirror and the
//! packages: `just release-check` runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sightline_tests::debroot::{copy, debian_root, in_root, WITH_SYSTEMD};
use std::path::{Path, PathBuf};
use std::process::Output;

fn debs() -> Vec<PathBuf> {
    let dir = std::env::var_os("SIGHTLINE_DEBS")
        .map(PathBuf::from)
        .expect(
        "SIGHTLINE_DEBS=DIR names the directory of the .deb files (`just release-check` sets it)",
    );
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    for name in ["sightline-relay_", "sightline-viewer_", "sightline-agent_"] {
        assert!(
            found
                .iter()
                .any(|p| p.file_name().unwrap().to_string_lossy().starts_with(name)),
            "no {name}*.deb in {}",
            dir.display()
        );
    }
    found
}

fn run(root: &Path, script: &str, own_network: bool) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = in_root(root, script, &[], own_network).output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    assert!(status.success(), "in the root:\n{said}");
    said
}

const INSTALL: &str = r#"
    set -e
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    cd /debs
    apt-get install -y -q --no-install-recommends ./sightline-*.deb 2>&1
"#;

const CHECK: &str = r#"
    set -e
    echo "user: $(getent passwd sightline)"
    stat -c 'data: %a %U' /var/lib/sightline
    stat -c 'root key: %a %U' /var/lib/sightline/ca-key.pem
    stat -c 'config: %a %U %G' /etc/sightline/relay.toml
    for u in sightline-relay.service sightline-kiosk.service; do
        systemd-analyze verify "$u" 2>&1
        echo "verified $u"
    done
    # What systemctl start would run: the unit's ExecStart, as its User.
    unit=$(ls /lib/systemd/system/sightline-relay.service /usr/lib/systemd/system/sightline-relay.service 2>/dev/null | head -n1)
    user=$(sed -n 's/^User=//p' "$unit")
    cmd=$(sed -n 's/^ExecStart=//p' "$unit")
    echo "starting as $user: $cmd"
    runuser -u "$user" -- $cmd >/tmp/relay.log 2>&1 &
    i=0
    until grep -q "listening on" /tmp/relay.log; do
        i=$((i + 1)); [ "$i" -le 300 ] || { cat /tmp/relay.log; exit 4; }; sleep 0.1
    done
    grep "listening on" /tmp/relay.log
    runuser -u sightline -- sightline-relay --data-dir /var/lib/sightline agent-bundle \
        --name "Package Test Desk" --relay 127.0.0.1 --out /tmp/support
    /tmp/support --data-dir /tmp/agent 123 456 7890 </dev/null 2>&1 || true
    sightline-viewer --version
    sightline-agent --version
"#;

#[test]
#[ignore = "needs the packages, root and the Debian mirror: `just release-check`"]
fn the_packages_install_on_debian_12_and_the_relay_serves() {
    let debs = debs();
    let cached = debian_root("bookworm", WITH_SYSTEMD).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = copy(&cached, tmp.path());
    let inside = root.join("debs");
    std::fs::create_dir_all(&inside).unwrap();
    for d in &debs {
        std::fs::copy(d, inside.join(d.file_name().unwrap())).unwrap();
    }
    std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).unwrap();

    let installed = run(&root, INSTALL, false);
    eprintln!("{installed}");
    assert!(installed.contains("root key fingerprint"), "{installed}");

    let said = run(&root, CHECK, true);
    eprintln!("{said}");
    assert!(said.contains("user: sightline:"), "{said}");
    assert!(said.contains("data: 700 sightline"), "{said}");
    assert!(said.contains("root key: 600 sightline"), "{said}");
    assert!(said.contains("config: 640 root sightline"), "{said}");
    for unit in ["sightline-relay.service", "sightline-kiosk.service"] {
        assert!(said.contains(&format!("verified {unit}")), "{said}");
    }
    // systemd-analyze had nothing to say about our units.
    let complaints: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("sightline-") && l.contains(".service:"))
        .collect();
    assert!(complaints.is_empty(), "{complaints:?}");
    assert!(said.contains("listening on 0.0.0.0:7615"), "{said}");
    assert!(
        said.contains("Sightline remote support for Package Test Desk"),
        "{said}"
    );
    assert!(
        said.contains("Connected to the relay over tcp://127.0.0.1:7615"),
        "{said}"
    );
    assert!(
        said.contains("viewer 0.1.0") && said.contains("agent 0.1.0"),
        "{said}"
    );
}
