#!/usr/bin/env bash
# Writes CycloneDX JSON SBOMs (spec 1.5) of the three programs into DIR:
#   DIR/sightline-agent.cdx.json, DIR/sightline-viewer.cdx.json, DIR/sightline-relay.cdx.json
# each listing every crate (with version, licence and crates.io purl) that the package pulls in
# on this machine's target, build dependencies included.
#
# Usage: assets/release/sbom.sh DIR      (needs cargo-cyclonedx: cargo install --locked cargo-cyclonedx)
#
# cargo-cyclonedx writes one file beside every workspace member's Cargo.toml; the three wanted
# are moved into DIR and the others deleted, so nothing generated stays in the tree. The
# timestamp is the last commit's (SOURCE_DATE_EPOCH), so that a rerun gives the same files.
set -euo pipefail

die() {
    echo "sbom.sh: $*" >&2
    exit 1
}

[ "$#" -eq 1 ] || die "usage: $0 DIR"
command -v cargo-cyclonedx >/dev/null 2>&1 ||
    die "cargo-cyclonedx is missing (cargo install --locked cargo-cyclonedx; ./dev sbom does it)"
mkdir -p "$1"
out=$(cd "$1" && pwd)
cd "$(dirname "$0")/../.."

members=(agent viewer tests bench shared/*/)
wanted=(agent viewer shared/relay)
staging=$(mktemp -d)
cleanup() {
    for m in "${members[@]}"; do
        m=${m%/}
        rm -f "$m/sightline-$(basename "$m").cdx.json"
    done
    rm -rf "$staging"
}
trap cleanup EXIT

SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)} \
    cargo cyclonedx --format json --spec-version 1.5 -q
for m in "${wanted[@]}"; do
    name="sightline-$(basename "$m").cdx.json"
    [ -f "$m/$name" ] || die "cargo cyclonedx wrote no $m/$name"
    mv "$m/$name" "$staging/$name"
done
mv "$staging"/*.cdx.json "$out/"
echo "sbom.sh: wrote $out/sightline-{agent,viewer,relay}.cdx.json"
