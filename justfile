# Sightline task runner. `./dev RECIPE` installs what a fresh machine lacks, then runs it.

# List the recipes.
default:
    @just --list

# Build every binary (relay, viewer, agent).
build:
    cargo build --workspace --bins

# Release binaries of the three programs for this machine: target/release/relay, viewer and
# agent.
release-build:
    cargo build --release -p sightline-relay -p sightline-viewer -p sightline-agent --bins

# The single-file agent for any x86-64 Linux desktop with glibc 2.31 or newer: only glibc's
# base libraries linked (cargo-zigbuild, Zig from PyPI; X11 capture, and the Wayland portal
# with PipeWire loaded at run time; libaom built in), at
# target/x86_64-unknown-linux-gnu/release/agent. See assets/release/single-file-agent.sh.
single-file-agent:
    bash assets/release/single-file-agent.sh

# A signed release in dist/: the single-file agent, relay and viewer (release builds), their
# Debian packages (lintian-clean of errors), the licences, CycloneDX SBOMs, SHA256SUMS and SHA256SUMS.minisig (the minisign key
# SIGHTLINE_SIGNING_KEY names, else a throw-away key and a warning). Check it with
# `minisign -V -p sightline.pub -m dist/SHA256SUMS`.
release: single-file-agent
    cargo build --release -p sightline-relay -p sightline-viewer --bins
    bash assets/release/dist.sh dist

# The release where it must run (needs root and the Debian mirror): the single-file agent's
# ELF header (glibc base libraries only, nothing newer than GLIBC_2.31) and a session from a
# Debian 11 root without PipeWire to a viewer outside it; its capture of a Wayland desktop
# through the real portal and PipeWire (portal_capture.rs on dist/agent); the packages installed by apt in a
# bare Debian 12 root (the relay's user, keys and units, the relay serving, its bundled agent
# reaching it); the signature checked by Debian's minisign. The roots are made once by
# debootstrap and cached in /var/cache/sightline-tests.
release-check: release build
    SIGHTLINE_SINGLE_FILE_AGENT="$PWD/dist/agent" SIGHTLINE_DEBS="$PWD/dist" \
        cargo test -p sightline-tests --test old_glibc --test packages -- --ignored --nocapture --test-threads=1
    SIGHTLINE_SINGLE_FILE_AGENT="$PWD/dist/agent" cargo test -p sightline-tests --test portal_capture
    if [ -f dist/throwaway.pub ]; then minisign -V -p dist/throwaway.pub -m dist/SHA256SUMS; else minisign -V -p sightline.pub -m dist/SHA256SUMS; fi

# A whole session on this machine, told step by step: relay, viewer and agent through a local
# relay, the demo playing the customer. `just demo 30` keeps control 30 s before the customer
# takes it back (default 10).
demo *ARGS: build
    bash assets/demo.sh {{ARGS}}

# Run every test: unit, two-peer protocol tests, and integration tests on real binaries.
# Ends with one summary line over all test binaries: "N passed, N failed".
test: build check-core-io
    #!/usr/bin/env bash
    set -uo pipefail
    log=$(mktemp)
    cargo test --workspace 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    awk '/^test result:/ {p += $4; f += $6} END {printf "%d passed, %d failed\n", p, f}' "$log"
    rm -f "$log"
    exit "$status"

# rustfmt and clippy with warnings as errors, plus the sans-IO check on the core.
lint: check-core-io
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Benchmarks, release build: pipeline stages on the recorded corpus for every encoder side by
# side, end-to-end latency through a real relay, relay forwarding, session recordings (an hour
# of 1080p written, opened and seeked in, a few hundred MB in a temporary directory); a table against
# the targets plus target/bench/report.{md,json}. Then the Criterion micro-benchmarks of the hot
# paths. `just bench --quick` is a short smoke run; --no-pipeline, --no-e2e, --no-relay and
# --no-recording skip a part.
bench *ARGS:
    cargo build --release --workspace --bins
    target/release/bench {{ARGS}}
    cargo bench -p sightline-core --bench channel -- --quick
    cargo bench -p sightline-media --bench pipeline -- --quick

# The grinding tests at full size: a relay in the middle tries 100,000 variants of each handshake
# message it controls and still matches the two verification codes only by chance (CI runs
# 10,000). Release build; a few minutes.
grind:
    SIGHTLINE_GRIND_VARIANTS=100000 cargo test --release -p sightline-core --test grinding -- --nocapture

# The relay under attack, release build, loopback only and bounded: 5,000 slowloris connections
# and 500 addresses guessing codes while 20 legitimate sessions log in, pair (each within 2 s)
# and stream; then SIGKILL to the relay under 100 sessions with real agents holding a key
# (every end notices within 15 s, every key is released, every session is recorded as ended
# abnormally); then a 30 s outage of a customer's link (`ip link set down` in a network
# namespace of its own: needs root) that the session must survive with the same code.
# Prints a table and fails when a target is missed. `--quick` is the smoke size.
attack *ARGS:
    cargo build --release -p sightline-relay --bin relay -p sightline-agent --bin agent -p sightline-viewer --bin viewer -p sightline-bench --bin attack
    target/release/attack {{ARGS}}

# The attack harness at a tenth of the size on the debug build: the smoke run CI does. (The
# workspace build, which the tests already made, rather than the two packages alone: their
# features differ and would rebuild everything.)
attack-smoke: build
    target/debug/attack --quick

# Fuzz every parser that reads bytes from the network or from disk, SECONDS each (default 300),
# or only the TARGETs named (`cargo fuzz list`); prints executions per target, fails on a crash.
fuzz SECONDS="300" *TARGETS:
    bash fuzz/run.sh {{SECONDS}} {{TARGETS}}

# Every fuzz target for 30 s: the smoke run CI does.
fuzz-smoke:
    bash fuzz/run.sh 30

# Writes the fuzz targets' seed corpora (fuzz/corpus) from the project's own encoders.
fuzz-seeds:
    cargo run -p sightline-bench --bin fuzz-seeds

# Bans: no wildcard versions, duplicate versions listed; sources: crates.io only. Advisories are
# not checked (their database is on GitHub).
# Every dependency's licence, bans and sources against deny.toml (cargo-deny).
deny:
    cargo deny check licenses bans sources

# With the minisign key SIGHTLINE_SIGNING_KEY names, else a throw-away key and a warning
# (assets/release/sign.sh). Check: minisign -V -p sightline.pub -m DIR/SHA256SUMS.
# Signs the release files in DIR: writes DIR/SHA256SUMS and DIR/SHA256SUMS.minisig.
sign DIR:
    bash assets/release/sign.sh "{{DIR}}"

# DIR/sightline-{agent,viewer,relay}.cdx.json (assets/release/sbom.sh; nothing stays in the tree).
# CycloneDX JSON SBOMs of the agent, viewer and relay into DIR.
sbom DIR:
    bash assets/release/sbom.sh "{{DIR}}"

# The protocol core must stay sans-IO: fail if it depends on an async runtime.
check-core-io:
    #!/usr/bin/env bash
    set -euo pipefail
    deps=$(cargo tree -p sightline-core -e normal --prefix none --offline 2>/dev/null || cargo tree -p sightline-core -e normal --prefix none)
    if echo "$deps" | grep -qE '^(tokio|mio|async-std|smol) '; then
        echo "sightline-core must not depend on an async runtime:" >&2
        echo "$deps" | grep -E '^(tokio|mio|async-std|smol) ' >&2
        exit 1
    fi
    echo "sightline-core is free of async runtimes"
