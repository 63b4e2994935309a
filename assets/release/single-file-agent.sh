#!/usr/bin/env bash
# Builds the single-file agent: the release agent that runs on any x86-64 Linux desktop with
# glibc 2.31 or newer (Debian 11, Ubuntu 20.04 and later) and needs nothing else installed.
#
#   target/x86_64-unknown-linux-gnu/release/agent     (or under $CARGO_TARGET_DIR)
#
# How: cargo-zigbuild links against glibc 2.31's symbol versions with Zig's linker (Zig from
# PyPI's `ziglang`, in a virtual environment: no other Rust target or sysroot is needed).
# libaom is linked in statically (Debian's libaom.a); the customer's window (egui on wgpu) loads
# X11 and the graphics driver at run time, and the Wayland screen-cast portal loads
# libpipewire at run time (its D-Bus side is pure Rust). The build leaves out dav1d (the agent
# does not decode). It prints what it links and the newest glibc symbol version it requires;
# `just release-check` tests it in a Debian 11 root and on a Wayland desktop.
#
# Usage: assets/release/single-file-agent.sh     (./dev single-file-agent installs the tools)
set -euo pipefail

die() {
    echo "single-file-agent.sh: $*" >&2
    exit 1
}

cd "$(dirname "$0")/../.."
venv=${SIGHTLINE_ZIG_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sightline/ziglang}
[ -x "$venv/bin/python3" ] && "$venv/bin/python3" -m ziglang version >/dev/null 2>&1 ||
    die "Zig is missing: python3 -m venv $venv && $venv/bin/pip install ziglang (./dev single-file-agent does it)"
command -v cargo-zigbuild >/dev/null 2>&1 ||
    die "cargo-zigbuild is missing: cargo install --locked cargo-zigbuild (./dev single-file-agent does it)"

# cargo-zigbuild runs `python3 -m ziglang` when there is no `zig` on PATH.
PATH="$venv/bin:$PATH" cargo zigbuild --release --target x86_64-unknown-linux-gnu.2.31 \
    -p sightline-agent --bin agent --no-default-features --features aom,window

agent=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/agent
needed=$(readelf -d "$agent" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
newest=$(objdump -T "$agent" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n1)
echo "single-file agent: $agent ($(stat -c %s "$agent") bytes)"
echo "  links: $needed"
echo "  newest glibc symbol version: $newest"
