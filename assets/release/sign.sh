#!/usr/bin/env bash
# Signs a directory of release artefacts so that anyone can check them:
#   DIST_DIR/SHA256SUMS          sha256sum's format, one line per regular file of DIST_DIR
#                                (not recursive; SHA256SUMS* itself left out), sorted by name
#   DIST_DIR/SHA256SUMS.minisig  minisign's signature of SHA256SUMS
#
# Usage: assets/release/sign.sh DIST_DIR
#
# The secret key is the minisign key file named by SIGHTLINE_SIGNING_KEY (the project's key,
# whose public half is sightline.pub at the repository root). Without it, the artefacts are
# signed with a throw-away key made for this run under target/release-throwaway-key/ (never in
# the repository; deleted, secret half included, once it has signed), and its public key is
# copied to DIST_DIR/throwaway.pub: good for checking the pipeline, worthless as a release
# signature.
#
# Check the result with
#   minisign -V -p sightline.pub -m DIST_DIR/SHA256SUMS      (or -p DIST_DIR/throwaway.pub)
#   (cd DIST_DIR && sha256sum -c SHA256SUMS)
set -euo pipefail

die() {
    echo "sign.sh: $*" >&2
    exit 1
}

[ "$#" -eq 1 ] || die "usage: $0 DIST_DIR"
dist=$1
[ -d "$dist" ] || die "$dist is not a directory"
command -v minisign >/dev/null 2>&1 || die "minisign is missing (Debian: apt-get install minisign)"
repo=$(cd "$(dirname "$0")/../.." && pwd)

# A throw-away public key left by an earlier run must neither be listed nor be mistaken for
# this run's signer.
rm -f "$dist/throwaway.pub"

# The names, sorted in byte order. sha256sum would escape a name holding a backslash or a
# newline, which no release artefact needs: refuse them rather than sign something odd.
names=()
while IFS= read -r -d '' name; do
    case $name in
        *\\* | *$'\n'*) die "refusing to sign a file name with a backslash or newline: ${name@Q}" ;;
    esac
    names+=("$name")
done < <(find "$dist" -mindepth 1 -maxdepth 1 -type f ! -name 'SHA256SUMS*' -printf '%f\0' | LC_ALL=C sort -z)
[ "${#names[@]}" -gt 0 ] || die "$dist holds no file to sign"

sums="$dist/SHA256SUMS"
(cd "$dist" && sha256sum -- "${names[@]}") >"$sums.tmp"
mv "$sums.tmp" "$sums"
rm -f "$sums.minisig"

throwaway=""
if [ -n "${SIGHTLINE_SIGNING_KEY:-}" ]; then
    key=$SIGHTLINE_SIGNING_KEY
    [ -r "$key" ] || die "SIGHTLINE_SIGNING_KEY=$key: cannot read the secret key"
else
    base="${CARGO_TARGET_DIR:-$repo/target}/release-throwaway-key"
    mkdir -p "$base"
    throwaway=$(mktemp -d "$base/key.XXXXXX")
    # Remove the key pair whatever happens: nothing else may ever be signed with it (its public
    # half lives on as DIST_DIR/throwaway.pub).
    trap 'rm -rf "$throwaway"' EXIT
    key="$throwaway/minisign.key"
    minisign -G -W -p "$throwaway/minisign.pub" -s "$key" >/dev/null
fi

count="${#names[@]} file$([ "${#names[@]}" -eq 1 ] || echo s)"
minisign -S -s "$key" -m "$sums" -x "$sums.minisig" \
    -t "timestamp:$(date +%s) file:SHA256SUMS Sightline release, $count" >/dev/null

if [ -n "$throwaway" ]; then
    cp "$throwaway/minisign.pub" "$dist/throwaway.pub"
    cat >&2 <<EOF
sign.sh: WARNING: SIGHTLINE_SIGNING_KEY is not set, so $dist is signed with a THROW-AWAY key,
sign.sh: WARNING: not the Sightline release key: its public key is $dist/throwaway.pub and
sign.sh: WARNING: the programs' pinned key refuses these artefacts. Do not publish them.
EOF
fi
echo "sign.sh: signed $count: $sums, $sums.minisig"
