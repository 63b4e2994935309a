#!/usr/bin/env bash
# Gathers a release into DIR (emptied first): the single-file agent, the relay and the viewer
# (release builds, already made by `just release`), their Debian packages (debs.sh: lintian
# errors fail), the licences, the CycloneDX SBOMs, then
# SHA256SUMS and its minisign signature (assets/release/sign.sh: the key SIGHTLINE_SIGNING_KEY
# names, else a throw-away key and a warning).
#
# Usage: assets/release/dist.sh DIR
set -euo pipefail

die() {
    echo "dist.sh: $*" >&2
    exit 1
}

[ "$#" -eq 1 ] || die "usage: $0 DIR"
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-target}
agent=$target/x86_64-unknown-linux-gnu/release/agent
for f in "$agent" "$target/release/relay" "$target/release/viewer"; do
    [ -x "$f" ] || die "$f is missing: run \`just release\`"
done
rm -rf "$1"
mkdir -p "$1"
install -m 0755 "$agent" "$1/agent"
install -m 0755 "$target/release/relay" "$target/release/viewer" "$1/"
install -m 0644 assets/LICENSES.md "$1/LICENSES.md"
bash assets/release/debs.sh "$1"
bash assets/release/sbom.sh "$1"
bash assets/release/sign.sh "$1"
echo "release in $1:"
ls -l "$1"
