#!/usr/bin/env bash
# Builds the xdg-desktop-portal-wlr the Wayland tests use (tests/src/wayland.rs) and prints
# its path: Debian's own source of the installed version, with xdpw-shm-only.patch applied so
# that a screencast can start on a GPU-less machine (the compositor's pixman renderer offers
# shared-memory buffers only, which stock xdpw 0.7 refuses; see the patch).
#
# The binary is kept in ${SIGHTLINE_XDPW_CACHE:-${XDG_CACHE_HOME:-~/.cache}/sightline/xdpw-shm-VERSION}
# and built once; later runs only print the path. The source comes through apt (signed
# index, checked hashes) with a private source list and state, so the system's apt
# configuration is not touched. Build dependencies are installed by ./dev (meson
# ninja-build libinih-dev libsystemd-dev libgbm-dev libdrm-dev wayland-protocols
# libwayland-dev).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(dpkg-query -W -f='${Version}' xdg-desktop-portal-wlr 2>/dev/null) || {
  echo "xdpw-shm: xdg-desktop-portal-wlr is not installed (./dev installs it)" >&2
  exit 1
}
cache=${SIGHTLINE_XDPW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sightline/xdpw-shm-$version}
bin=$cache/xdg-desktop-portal-wlr
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$cache"
# One build at a time (test processes run in parallel); the others wait and reuse it.
exec 9>"$cache/.lock"
flock -w 600 9
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
for tool in meson ninja; do
  command -v "$tool" >/dev/null || {
    echo "xdpw-shm: $tool is missing (./dev installs the build dependencies)" >&2
    exit 1
  }
done
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
{
  echo "deb-src http://deb.debian.org/debian $codename main"
  echo "deb-src http://deb.debian.org/debian $codename-updates main"
  echo "deb-src http://deb.debian.org/debian-security $codename-security main"
} >"$work/apt/sources.list"
apt=(
  -o "Dir::Etc::SourceList=$work/apt/sources.list"
  -o "Dir::Etc::SourceParts=$work/apt/none"
  -o "Dir::State::Lists=$work/apt/lists"
  -o "Dir::Cache=$work/apt/cache"
  -o "APT::Sandbox::User=$(id -un)"
  -o "Debug::NoLocking=true"
)
echo "xdpw-shm: fetching the source of xdg-desktop-portal-wlr $version" >&2
apt-get "${apt[@]}" update -qq >"$work/apt.log" 2>&1 || {
  cat "$work/apt.log" >&2
  exit 1
}
(cd "$work/src" && apt-get "${apt[@]}" source --download-only "xdg-desktop-portal-wlr=$version") \
  >>"$work/apt.log" 2>&1 || {
  cat "$work/apt.log" >&2
  exit 1
}
upstream=${version%-*}
upstream=${upstream#*:}
tar -xf "$work/src/xdg-desktop-portal-wlr_$upstream.orig.tar."* -C "$work/src"
tree=$work/src/xdg-desktop-portal-wlr-$upstream
patch -d "$tree" -p1 --quiet <"$here/xdpw-shm-only.patch"
echo "xdpw-shm: building" >&2
(cd "$tree" && meson setup build -Dman-pages=disabled -Dsystemd=disabled && ninja -C build) \
  >"$work/build.log" 2>&1 || {
  cat "$work/build.log" >&2
  exit 1
}
install -m 0755 "$tree/build/xdg-desktop-portal-wlr" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "$bin"
