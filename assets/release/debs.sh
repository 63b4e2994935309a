#!/usr/bin/env bash
# Builds the Debian packages into DIR from the release builds `just release` makes:
#   sightline-relay   /usr/bin/sightline-relay, its systemd unit (hardened; off until enabled),
#                     the `sightline` system user, /etc/sightline/relay.toml, /var/lib/sightline
#   sightline-viewer  /usr/bin/sightline-viewer, its desktop entry and icon
#   sightline-agent   /usr/bin/sightline-agent (the single-file agent) and the kiosk unit (off)
# then runs lintian on each (errors fail; warnings are printed). The package metadata is in
# each program's Cargo.toml ([package.metadata.deb]); the unit, maintainer script and desktop
# entry in assets/deb/.
#
# Usage: assets/release/debs.sh DIR      (needs cargo-deb and lintian; ./dev debs installs them)
set -euo pipefail

die() {
    echo "debs.sh: $*" >&2
    exit 1
}

[ "$#" -eq 1 ] || die "usage: $0 DIR"
command -v cargo-deb >/dev/null 2>&1 || die "cargo-deb is missing (cargo install --locked cargo-deb)"
mkdir -p "$1"
out=$(cd "$1" && pwd)
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-target}
for f in "$target/release/relay" "$target/release/viewer" \
    "$target/x86_64-unknown-linux-gnu/release/agent"; do
    [ -x "$f" ] || die "$f is missing: run \`just release\`"
done

cargo deb -q -p sightline-relay --no-build -o "$out"
cargo deb -q -p sightline-viewer --no-build -o "$out"
cargo deb -q -p sightline-agent --no-build --target x86_64-unknown-linux-gnu -o "$out"

if command -v lintian >/dev/null 2>&1; then
    status=0
    for deb in "$out"/*.deb; do
        lintian --fail-on error "$deb" ||
            status=1
    done
    [ "$status" -eq 0 ] || die "lintian found errors"
else
    die "lintian is missing (apt-get install lintian)"
fi
ls -l "$out"/*.deb
