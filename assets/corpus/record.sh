#!/usr/bin/env bash
# Records the benchmark corpus: real X applications on a virtual display (Xvfb), driven with
# xdotool, captured by `record-corpus` (the agent's MIT-SHM capture) into lossless animated
# PNGs beside this script. Re-runnable: every clip is rebuilt from scratch.
#
#   bash assets/corpus/record.sh                 # every scenario at 1280x720 and 1920x1080
#   bash assets/corpus/record.sh typing video    # only these scenarios
#
# Scenarios (README.md beside this script says more): scroll, typing, drag, video, idle.
# Environment: CLIP_SECONDS (default 3), VIDEO_SECONDS (default 2), CLIP_FPS (default 30),
# CLIP_SIZES (default "1280x720 1920x1080").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${CLIP_SECONDS:-3}
fps=${CLIP_FPS:-30}
sizes=${CLIP_SIZES:-"1280x720 1920x1080"}
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(scroll typing drag video idle)

die() { echo "record.sh: $*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------------
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing: apt-get install $2"; }
need Xvfb xvfb
need xdpyinfo x11-utils
need xsetroot x11-xserver-utils
need xterm xterm
need xdotool xdotool
need gst-launch-1.0 gstreamer1.0-tools
need gst-inspect-1.0 gstreamer1.0-tools
for element in videotestsrc compositor videoconvert timeoverlay:gstreamer1.0-plugins-base \
    ximagesink:gstreamer1.0-x; do
  name=${element%%:*}
  package=${element#*:}
  [ "$package" != "$element" ] || package=gstreamer1.0-plugins-base
  gst-inspect-1.0 "$name" >/dev/null 2>&1 || die "GStreamer element $name is missing: apt-get install $package"
done
editor=$(command -v vim.tiny || command -v vi || true)
[ -n "$editor" ] || die "no vi: apt-get install vim-tiny"
fonts=$(fc-list : family 2>/dev/null || true)
[[ $fonts == *"DejaVu Sans Mono"* ]] || die "DejaVu Sans Mono is missing: apt-get install fonts-dejavu-core"

echo "record.sh: building record-corpus" >&2
(cd "$root" && cargo build --release -q -p sightline-bench --bin record-corpus)
target_dir=${CARGO_TARGET_DIR:-$root/target}
record_corpus="$target_dir/release/record-corpus"
[ -x "$record_corpus" ] || die "$record_corpus was not built"

# --- process bookkeeping: everything started here is stopped on exit ---------------------------
pids=()
work=$(mktemp -d)
stop_all() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
cleanup() {
  stop_all
  rm -rf "$work"
  rm -f "$here"/*.png.partial
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts a command in the background and remembers it.
spawn() {
  "$@" >>"$work/apps.log" 2>&1 &
  pids+=($!)
}

# --- the display --------------------------------------------------------------------------------
start_display() {
  local size=$1 n
  for n in $(seq 90 199); do
    [ -e "/tmp/.X$n-lock" ] || [ -e "/tmp/.X11-unix/X$n" ] || break
  done
  export DISPLAY=":$n"
  spawn Xvfb "$DISPLAY" -screen 0 "${size}x24" -nolisten tcp -noreset
  for _ in $(seq 100); do
    xdpyinfo >/dev/null 2>&1 && break
    sleep 0.05
  done
  xdpyinfo >/dev/null 2>&1 || die "Xvfb $DISPLAY did not start (see $work/apps.log)"
  [[ $(xdpyinfo -queryExtensions) == *MIT-SHM* ]] || die "Xvfb $DISPLAY has no MIT-SHM"
  xsetroot -solid "#2e4a62"
}

# An xterm titled $1 at pixel geometry $2 ("WxH+X+Y") running the rest of the arguments (a
# quiet interactive shell when none), in the font `font` names. Sets `wid` to its window id.
antialiased=(-fa "DejaVu Sans Mono" -fs 11)
font=("${antialiased[@]}")
terminal() {
  local title=$1 geometry=$2
  shift 2
  [ $# -gt 0 ] || set -- env PS1='user@desk:~$ ' bash --norc --noprofile -i
  spawn xterm -T "$title" "${font[@]}" -bg "#fdf6e3" -fg "#222222" -geometry 80x24+0+0 -e "$@"
  wid=$(xdotool search --sync --onlyvisible --name "^$title\$" | head -n1)
  place "$wid" "$geometry"
}

# Moves and resizes window $1 to "WxH+X+Y" (no window manager: the window obeys directly).
# A client that has just mapped may still resize itself, so this checks and tries again.
place() {
  local wid=$1 geometry=$2 w h x y
  IFS='x+' read -r w h x y <<<"$geometry"
  for _ in $(seq 20); do
    xdotool windowsize "$wid" "$w" "$h" windowmove "$wid" "$x" "$y"
    sleep 0.1
    [ "$(xdotool getwindowgeometry --shell "$wid" | grep -E '^(X|Y|WIDTH|HEIGHT)=' | tr '\n' ' ')" \
      = "X=$x Y=$y WIDTH=$w HEIGHT=$h " ] && return 0
  done
  die "window $wid would not move to $geometry"
}

# Records $1 (a clip path) now, for $2 seconds.
record() {
  "$record_corpus" --out "$1" --seconds "$2" --fps "$fps"
}

# --- scenarios: each gets the screen size as W H ------------------------------------------------

# Terminal scrolling: a near-full-screen xterm (10x20 bitmap font) printing a long `ls -l`-style listing, paced so
# that it scrolls steadily (about 60 lines a second).
scenario_scroll() {
  local w=$1 h=$2
  cat >"$work/scroll.sh" <<'EOF'
find /usr/share /usr/lib -maxdepth 3 -printf '%M %2n %-6u %-6g %9s %TY-%Tm-%Td %TH:%TM %p\n' 2>/dev/null |
  while IFS= read -r line; do printf '%s\n' "$line"; sleep 0.016; done
EOF
  # The 10x20 bitmap font: anti-aliased text costs five times the bytes when all of it moves.
  font=(-fn 10x20)
  terminal scroll "$((w - 80))x$((h - 60))+40+30" bash "$work/scroll.sh"
  font=("${antialiased[@]}")
  sleep 1
}

# Typing in an editor: vi (vim.tiny when installed) on a short text, xdotool typing sentences
# at 80 ms a key.
scenario_typing() {
  local w=$1 h=$2
  cat >"$work/notes.txt" <<'EOF'
Support ticket 4821: the customer cannot print from the accounting application.

Steps so far:
- checked that the printer is online and has paper;
- restarted the print spooler service;
- the test page prints from the control panel.

EOF
  terminal typing "$((w * 3 / 4))x$((h * 3 / 4))+$((w / 8))+$((h / 8))" \
    "$editor" -u NONE -i NONE -N "$work/notes.txt"
  sleep 0.5
  # Focus follows the pointer without a window manager; open a line at the end, insert mode.
  xdotool mousemove --window "$wid" 100 100 sleep 0.2 key G o
  sleep 0.5
  spawn xdotool type --delay 80 "Next: the application prints to a stale queue name. Reinstalling the driver from the vendor site fixed it, and the customer confirmed that invoices print again."
}

# Dragging a window across a desktop with other windows on it: an xterm moved a few pixels
# every 20 ms with xdotool windowmove (as a window manager would during a drag).
scenario_drag() {
  local w=$1 h=$2
  terminal "left" "$((w / 2 - 30))x$((h - 80))+20+40" \
    bash -c 'ls -l /usr/share/doc | head -n 60; exec env PS1="user@desk:~$ " bash --norc -i'
  terminal "right" "$((w / 2 - 30))x$((h / 2))+$((w / 2 + 10))+$((h / 4))" \
    bash -c 'cat /etc/services | head -n 40; exec env PS1="user@desk:~$ " bash --norc -i'
  # The dragged window uses the bitmap font: its text is re-encoded every frame.
  font=(-fn 10x20)
  terminal "dragged" "560x340+60+80" \
    bash -c 'printf "Drag me\n\n"; ls -l /etc | head -n 14; exec sleep infinity'
  font=("${antialiased[@]}")
  sleep 1
  # One xdotool process runs the whole path: 200 steps about 20 ms apart (4 s), diagonally down to
  # the right across both terminals.
  local steps=() i dx=$(((w - 680) / 200)) dy=$(((h - 460) / 200))
  for ((i = 1; i <= 200; i++)); do
    # --sync makes xdotool flush each move; without it the moves pile up until it exits.
    steps+=(windowmove --sync "$wid" $((60 + i * dx)) $((80 + i * dy)) sleep 0.02)
  done
  spawn xdotool "${steps[@]}"
}

# A video player: GStreamer's ximagesink in a 480x270 window playing synthetic video (every
# pixel moves every frame) on a still desktop.
scenario_video() {
  local w=$1 h=$2
  terminal "notes" "$((w / 3))x$((h - 80))+20+40" \
    bash -c 'ls -l /usr/share/doc | head -n 50; exec env PS1="user@desk:~$ " bash --norc -i'
  # Colour bars scrolling under a slowly moving zone plate (smooth gradients), a bouncing
  # ball and a running timecode.
  spawn gst-launch-1.0 -q \
    compositor name=mix background=black sink_1::alpha=0.45 ! videoconvert ! ximagesink sync=true \
    videotestsrc is-live=true pattern=smpte75 horizontal-speed=2 ! \
    video/x-raw,width=480,height=270,framerate=30/1 ! mix. \
    videotestsrc is-live=true pattern=zone-plate kx2=6 ky2=6 kt2=1 ! \
    video/x-raw,width=480,height=270,framerate=30/1 ! mix. \
    videotestsrc is-live=true pattern=ball motion=wavy background-color=0x00000000 ! \
    video/x-raw,format=BGRA,width=480,height=270,framerate=30/1 ! \
    timeoverlay font-desc="Sans 24" ! mix.
  wid=$(xdotool search --sync --onlyvisible --name "^gst-launch-1.0\$" | head -n1)
  place "$wid" "480x270+$((w / 3 + 60))+$(((h - 270) / 2))"
  sleep 1
}

# An idle desktop: two terminals at a prompt; nothing changes (xterm's cursor does not blink).
scenario_idle() {
  local w=$1 h=$2
  terminal "one" "$((w / 2 - 30))x$((h / 2))+20+40"
  terminal "two" "$((w / 2 - 30))x$((h / 2))+$((w / 2 + 10))+$((h / 3))"
  sleep 1
}

# --- main ---------------------------------------------------------------------------------------
for scenario in "${scenarios[@]}"; do
  declare -F "scenario_$scenario" >/dev/null || die "unknown scenario $scenario"
done
for size in $sizes; do
  w=${size%x*}
  h=${size#*x}
  for scenario in "${scenarios[@]}"; do
    out="$here/$scenario-$size.png"
    echo "record.sh: $scenario at $size" >&2
    rm -f "$out"
    start_display "$size"
    "scenario_$scenario" "$w" "$h"
    clip_seconds=$seconds
    # Every pixel of the video window changes every frame: two seconds keep the corpus small.
    [ "$scenario" != video ] || clip_seconds=${VIDEO_SECONDS:-2}
    record "$out" "$clip_seconds"
    stop_all
  done
done
du -ch "$here"/*.png | tail -n1 >&2
