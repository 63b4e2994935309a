#!/usr/bin/env bash
# Demo: a whole Sightline session on this machine, told step by step.
#
# A relay gets a fresh CA key and one operator account (oathtool plays the operator's phone
# for the two-factor code). The customer's desktop is a virtual display (Xvfb) with a terminal
# running `top` and a terminal with a shell. The operator's viewer logs in and gets a one-time
# code; the customer runs the help desk's own agent (`relay agent-bundle`: the relay and its key
# are inside, signed) and joins by typing only the code. The demo then plays the customer at the agent's
# terminal and says so: it allows viewing, allows control when the operator asks, and later
# takes control back and ends the session. Meanwhile the operator's viewer types a command into
# the customer's shell (its input script). Both sides print what happened and a summary.
# The help desk's policy requires recording: the customer is told, the viewer hands the
# encrypted recording to the relay, and at the end the demo plays the auditor: it fetches the
# recording, checks it against the agent's signatures and exports it to WebM.
#
# With a display ($DISPLAY or $WAYLAND_DISPLAY) the viewer opens its window; without one it runs
# headless, prints statistics every second and saves the last decoded picture of the
# customer's screen, banner included, to target/demo/last-frame.png.
#
# Usage: assets/demo.sh [SECONDS]   how long the operator keeps control before the customer
#                                   takes it back (default 10); Ctrl-C ends the demo early.
# Environment: SIGHTLINE_DEMO_DIR   where everything goes (default target/demo)
#              SIGHTLINE_BIN        the binaries (default target/debug; `just demo` builds them)
#              SIGHTLINE_DEMO_VIEWER  window or headless (default: window when a display exists)
set -euo pipefail
cd "$(dirname "$0")/.."

hold=${1:-10}
[[ "$hold" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
bin=${SIGHTLINE_BIN:-target/debug}
demo=${SIGHTLINE_DEMO_DIR:-target/demo}
viewer_mode=${SIGHTLINE_DEMO_VIEWER:-}
if [ -z "$viewer_mode" ]; then
  if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then viewer_mode=window; else viewer_mode=headless; fi
fi
case "$viewer_mode" in window|headless) ;; *) echo "SIGHTLINE_DEMO_VIEWER: window or headless" >&2; exit 2 ;; esac

for tool in Xvfb xterm xdotool oathtool openssl age-keygen; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is missing; ./dev demo installs it" >&2; exit 1; }
done
for b in relay viewer agent; do
  [ -x "$bin/$b" ] || { echo "demo: $bin/$b is missing; run ./dev demo (or just build)" >&2; exit 1; }
done

rm -rf "$demo"
mkdir -p "$demo"
demo=$(cd "$demo" && pwd)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
fail() {
  echo "demo: FAILED: $*" >&2
  for log in relay.log viewer.out agent.out; do
    [ -f "$demo/$log" ] && { echo "--- $log (last lines)" >&2; tail -n 20 "$demo/$log" >&2; }
  done
  exit 1
}
# wait_for FILE TEXT SECONDS [PID...]: until FILE has a line containing TEXT; gives up early
# when one of the processes PID has exited.
wait_for() {
  local i p
  for i in $(seq $(( $3 * 10 ))); do
    grep -qF -- "$2" "$1" 2>/dev/null && return 0
    for p in "${@:4}"; do kill -0 "$p" 2>/dev/null || return 1; done
    sleep 0.1
  done
  return 1
}

say "relay init (RSA-4096 CA key, database)"
"$bin/relay" --data-dir "$demo/relay" init | tee "$demo/init.txt"
fingerprint=$(tail -n 1 "$demo/init.txt")

say "the help desk's policy: every session recorded for the auditor (an age key)"
age-keygen -o "$demo/auditor-key.txt" 2> "$demo/auditor-key.pub.txt"
auditor=$(sed -n 's/^Public key: //p' "$demo/auditor-key.pub.txt")
printf '[recording]\nmode = "required"\nrecipients = ["%s"]\n' "$auditor" > "$demo/relay/policy.toml"
cat "$demo/relay/policy.toml"
echo "(the auditor's secret key stays with the auditor: $demo/auditor-key.txt)"

say "relay user add demo (password, and two-factor login enrolled)"
password="demo-$(openssl rand -hex 12)"
printf '%s\n' "$password" | "$bin/relay" --data-dir "$demo/relay" user add demo \
  --display-name "Dana Operator" --org "Sightline Demo Desk" --password-stdin --json \
  > "$demo/enrolment.json"
secret=$(sed -n 's/.*"secret":"\([A-Z2-7]*\)".*/\1/p' "$demo/enrolment.json")
sed -n 's/.*"otpauth_uri":"\([^"]*\)".*/authenticator: \1/p' "$demo/enrolment.json"
echo "(without --json, relay user add prints this as a QR code; here oathtool plays the phone)"
totp() { oathtool --totp -b "$secret"; }

say "relay serve"
"$bin/relay" --data-dir "$demo/relay" serve --listen 127.0.0.1:0 >"$demo/relay.out" 2>"$demo/relay.log" &
pids+=($!)
wait_for "$demo/relay.out" "listening on " 10 "${pids[-1]}" || fail "the relay did not start"
addr=$(sed -n 's/^listening on //p' "$demo/relay.out" | head -n 1)
echo "relay listening on $addr, key $fingerprint"

say "relay agent-bundle (the help desk's own agent: its name, the relay and its key inside, signed)"
"$bin/relay" --data-dir "$demo/relay" agent-bundle --name "Sightline Demo Desk" --relay "$addr" \
  --agent "$bin/agent" --out "$demo/sightline-support" || fail "agent-bundle failed"

say "the customer's desktop: a virtual display with top and a shell"
# A display number no other X server (or test run) holds.
n=$(( 6000 + RANDOM % 3000 ))
while [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ]; do n=$(( n + 1 )); done
display=":$n"
Xvfb "$display" -screen 0 1280x720x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X$n" ] && break; sleep 0.1; done
[ -e "/tmp/.X11-unix/X$n" ] || fail "Xvfb $display did not start"
# Below the banner the agent shows across the top while the screen is shared.
DISPLAY="$display" xterm -T "top" -geometry 110x16+20+50 -fa Monospace -fs 10 -e top \
  >/dev/null 2>&1 &
top_xterm=$!
pids+=($top_xterm)
# The customer's shell keeps its history in the demo folder: proof of what was typed into it.
DISPLAY="$display" HISTFILE="$demo/customer-shell-history" PROMPT_COMMAND='history -a' \
  PS1='customer@desk:~$ ' xterm -T "customer shell" -geometry 110x12+20+400 -fa Monospace \
  -fs 10 -e bash --norc --noprofile -i >/dev/null 2>&1 &
pids+=($!)
# (xterm's first start on a machine builds the font cache: up to half a minute.)
for _ in $(seq 400); do
  DISPLAY="$display" xdotool search --onlyvisible --name "customer shell" >/dev/null 2>&1 && break
  sleep 0.1
done
DISPLAY="$display" xdotool search --onlyvisible --name "customer shell" >/dev/null 2>&1 \
  || fail "the customer's shell window did not open on $display"
echo "customer display $display"

# The operator's hands: a script the viewer plays once the customer allows control. The
# pointer goes to the customer's shell (the middle of its window) and types a command there.
cat > "$demo/operator-input.txt" <<'EOF'
wait-frames 1
sleep 800
move 0.35 0.7
click left
sleep 300
type echo Hello from the help desk
key Enter
# Then keep control until the customer takes it back.
sleep 3600000
EOF

if [ "$viewer_mode" = window ]; then
  say "viewer window (the operator logs in and gets a code)"
  [ -n "${XDG_RUNTIME_DIR:-}" ] || { mkdir -p "$demo/xdg" && chmod 700 "$demo/xdg"; export XDG_RUNTIME_DIR="$demo/xdg"; }
  printf '%s\n%s\n' "$password" "$(totp)" | "$bin/viewer" --data-dir "$demo/viewer" \
    --relay "$addr" --relay-key "$fingerprint" --user demo --password-stdin --json \
    --send-input "$demo/operator-input.txt" \
    > >(tee "$demo/viewer.out" | sed -u 's/^/[viewer] /') 2>&1 &
  viewer_pid=$!
  pids+=($viewer_pid)
  wait_for "$demo/viewer.out" '"event":"code"' 90 "$viewer_pid" || fail "the viewer got no session code"
  code=$(sed -n 's/.*"grouped":"\([0-9 ]*\)".*/\1/p' "$demo/viewer.out" | head -n 1)
else
  say "viewer session, headless (the operator logs in and gets a code)"
  printf '%s\n%s\n' "$password" "$(totp)" | "$bin/viewer" --data-dir "$demo/viewer" session \
    --relay "$addr" --relay-key "$fingerprint" --user demo --password-stdin \
    --send-input "$demo/operator-input.txt" --save-frame "$demo/last-frame.png" \
    > >(tee "$demo/viewer.out" | sed -u 's/^/[viewer] /') 2>&1 &
  viewer_pid=$!
  pids+=($viewer_pid)
  wait_for "$demo/viewer.out" "Session code:" 90 "$viewer_pid" || fail "the viewer got no session code"
  code=$(sed -n 's/.*Session code: \([0-9]\{3\} [0-9]\{3\} [0-9]\{4\}\).*/\1/p' "$demo/viewer.out" | head -n 1)
fi
[ -n "$code" ] || fail "no session code"

say "sightline-support $code (the customer runs the help desk's agent and types the code the operator read out)"
# The agent reads the customer's answers from its terminal; here the demo types them into it
# (through a FIFO) and says so each time.
mkfifo "$demo/customer-keyboard"
# shellcheck disable=SC2086 # the code is three groups of digits, three arguments
# (enigo's notes about unused modifier keys would only distract here.)
env -u WAYLAND_DISPLAY DISPLAY="$display" RUST_LOG="${RUST_LOG:-warn,enigo=error}" "$demo/sightline-support" \
  --data-dir "$demo/agent" $code < "$demo/customer-keyboard" \
  > >(tee "$demo/agent.out" | sed -u 's/^/[agent]  /') 2>&1 &
agent_pid=$!
pids+=($agent_pid)
# Opening the FIFO for writing waits for the agent's side to open it for reading.
exec 3>"$demo/customer-keyboard"
# customer ANSWER WHY: the demo types ANSWER and Enter at the agent's terminal.
customer() {
  printf '%s[customer, played by the demo] types "%s" and Enter: %s%s\n' "$bold" "$1" "$2" "$plain"
  printf '%s\n' "$1" >&3
}

wait_for "$demo/agent.out" "wants to see your screen" 90 "$agent_pid" "$viewer_pid" || fail "the agent never asked the customer"
customer y "allows the operator to see the screen"
wait_for "$demo/agent.out" "asks to control your keyboard and mouse" 90 "$agent_pid" "$viewer_pid" \
  || fail "the operator never asked for control"
customer y "allows the operator to use keyboard and mouse"
wait_for "$demo/customer-shell-history" "echo Hello from the help desk" 60 "$agent_pid" \
  "$viewer_pid" || fail "the operator's typing did not reach the customer's shell"
say "the operator typed into the customer's shell; the operator keeps control for $hold s"
sleep "$hold"

say "the customer takes control back"
customer r "takes keyboard and mouse back"
wait_for "$demo/agent.out" "You took back control" 10 "$agent_pid" || fail "the agent did not confirm the revoke"
# `top` holds still from here to the end (it redraws every 3 s), so the screenshot below and
# the viewer's last picture show the same screen; it goes on once the session is over.
pkill -STOP -P "$top_xterm" 2>/dev/null || true
sleep 2
# What the customer's screen looks like now, for comparison with the viewer's last picture.
if command -v import >/dev/null; then
  DISPLAY="$display" import -window root "$demo/customer-screen.png"
fi

say "the customer ends the session"
customer e "ends the session"
agent_status=0
wait "$agent_pid" || agent_status=$?
pkill -CONT -P "$top_xterm" 2>/dev/null || true
viewer_status=0
if [ "$viewer_mode" = window ]; then
  wait_for "$demo/viewer.out" '"event":"closed"' 15 || fail "the viewer did not see the end"
  echo "The viewer window shows how the session ended; it closes in 10 s (or close it now)."
  for _ in $(seq 100); do kill -0 "$viewer_pid" 2>/dev/null || break; sleep 0.1; done
  kill "$viewer_pid" 2>/dev/null || true
else
  wait "$viewer_pid" || viewer_status=$?
fi
exec 3>&-
sleep 0.3

say "relay log"
cat "$demo/relay.log"
[ "$agent_status" -eq 0 ] || fail "the agent exited with status $agent_status"
[ "$viewer_status" -eq 0 ] || fail "the viewer exited with status $viewer_status"
if [ "$viewer_mode" = window ]; then ended='"reason":"ended by customer"'; else ended="Session ended: ended by customer"; fi
grep -qF -- "$ended" "$demo/viewer.out" || fail "the viewer did not see the customer's normal end"
say "the auditor fetches the recording from the relay (it holds ciphertext only)"
"$bin/relay" --data-dir "$demo/relay" recordings list
id=$("$bin/relay" --data-dir "$demo/relay" recordings list --json | grep -o '"session": *"[0-9a-f]\{32\}"' | grep -o '[0-9a-f]\{32\}' | head -n 1)
[ -n "$id" ] || fail "the relay holds no recording"
"$bin/relay" --data-dir "$demo/relay" recordings get "$id" --out "$demo/session.age"

say "viewer play --verify: the recording is what the customer's agent sent"
"$bin/viewer" play "$demo/session.age" --identity "$demo/auditor-key.txt" --verify \
  || fail "the recording does not verify"

say "viewer export: WebM for any player, and the operator's input as JSON lines"
"$bin/viewer" export "$demo/session.age" --identity "$demo/auditor-key.txt" \
  --out "$demo/session.webm" --input-log "$demo/operator-input.jsonl" || fail "export failed"
echo "watch it: viewer play $demo/session.age --identity $demo/auditor-key.txt (or any WebM player)"

say "done: the session ended normally and its recording verifies"
[ -f "$demo/last-frame.png" ] && echo "last decoded picture of the customer's screen: $demo/last-frame.png"
exit 0
