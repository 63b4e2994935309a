#!/usr/bin/env bash
# Demo: a relay, an operator's viewer and a customer's agent on this machine.
# The relay gets a fresh CA key and one operator account; the viewer logs in and gets a
# one-time code; the agent joins with it and shares a screen: a virtual display (Xvfb) running
# a terminal with `top`, the customer's desktop. Both sides show the verified peer and the same
# verification code. With a display ($DISPLAY set) the viewer opens its window; without one it
# runs headless, prints frame statistics and saves the last decoded picture to
# target/demo/last-frame.png. After a while the customer ends the session.
# Usage: assets/demo.sh [SECONDS_TO_HOLD]   (default 15; Ctrl-C ends it early)
set -euo pipefail
cd "$(dirname "$0")/.."
hold=${1:-15}
bin=target/debug
demo=target/demo
rm -rf "$demo"
mkdir -p "$demo"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "relay init (RSA-4096 CA key, database)"
"$bin/relay" --data-dir "$demo/relay" init | tee "$demo/init.txt"
fingerprint=$(tail -n 1 "$demo/init.txt")

say "relay user add demo (password, and two-factor login enrolled)"
password="demo-$(openssl rand -hex 12)"
printf '%s\n' "$password" | "$bin/relay" --data-dir "$demo/relay" user add demo \
  --display-name "Dana Operator" --org "Sightline Demo Desk" --password-stdin --json \
  > "$demo/enrolment.json"
secret=$(sed -n 's/.*"secret":"\([A-Z2-7]*\)".*/\1/p' "$demo/enrolment.json")
sed -n 's/.*"otpauth_uri":"\([^"]*\)".*/authenticator: \1/p' "$demo/enrolment.json"
echo "(without --json, relay user add prints this as a QR code; here oathtool plays the phone)"
# The operator's authenticator app: the current 6-digit code.
totp() { oathtool --totp -b "$secret"; }

say "relay serve"
"$bin/relay" --data-dir "$demo/relay" serve --listen 127.0.0.1:0 >"$demo/relay.out" 2>"$demo/relay.log" &
pids+=($!)
for _ in $(seq 100); do grep -q '^listening on ' "$demo/relay.out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$demo/relay.out" | head -n 1)
[ -n "$addr" ] || { echo "relay did not start:"; cat "$demo/relay.log"; exit 1; }
echo "relay listening on $addr, key $fingerprint"

say "the customer's screen: Xvfb with a terminal running top"
display=":$(( 90 + RANDOM % 100 ))"
Xvfb "$display" -screen 0 1280x720x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X${display#:}" ] && break; sleep 0.1; done
DISPLAY="$display" xterm -geometry 120x40+20+20 -fa Monospace -fs 11 -e top >/dev/null 2>&1 &
pids+=($!)
echo "customer display $display"

if [ -n "${DISPLAY:-}" ]; then
  say "viewer window (operator logs in and gets a code)"
  mkdir -p "$demo/xdg" && chmod 700 "$demo/xdg"
  printf '%s\n%s\n' "$password" "$(totp)" | XDG_RUNTIME_DIR="$demo/xdg" "$bin/viewer" --data-dir "$demo/viewer" \
    --relay "$addr" --relay-key "$fingerprint" --user demo --password-stdin --json \
    > >(tee "$demo/viewer.out" | sed -u 's/^/[viewer] /') 2>&1 &
  viewer_pid=$!
  pids+=($viewer_pid)
  for _ in $(seq 600); do grep -q '"event":"code"' "$demo/viewer.out" 2>/dev/null && break; sleep 0.1; done
  code=$(sed -n 's/.*"grouped":"\([0-9 ]*\)".*/\1/p' "$demo/viewer.out" | head -n 1)
else
  say "viewer session, headless (operator logs in and gets a code)"
  printf '%s\n%s\n' "$password" "$(totp)" | "$bin/viewer" --data-dir "$demo/viewer" session \
    --relay "$addr" --relay-key "$fingerprint" --user demo --password-stdin \
    --save-frame "$demo/last-frame.png" \
    > >(sed -u 's/^/[viewer] /' | tee "$demo/viewer.out") 2>&1 &
  viewer_pid=$!
  pids+=($viewer_pid)
  for _ in $(seq 600); do grep -q 'Session code:' "$demo/viewer.out" 2>/dev/null && break; sleep 0.1; done
  code=$(sed -n 's/.*Session code: \([0-9]\{3\} [0-9]\{3\} [0-9]\{4\}\).*/\1/p' "$demo/viewer.out" | head -n 1)
fi
[ -n "$code" ] || { echo "no session code"; exit 1; }

say "agent $code (the customer types the code)"
DISPLAY="$display" "$bin/agent" --data-dir "$demo/agent" --relay "$addr" --relay-key "$fingerprint" $code \
  > >(sed -u 's/^/[agent]  /') 2>&1 &
pids+=($!)
agent_pid=$!

sleep "$hold"
say "the customer ends the session"
kill -TERM "$agent_pid" 2>/dev/null || true
wait "$agent_pid" 2>/dev/null || true
wait "$viewer_pid" 2>/dev/null || true
sleep 0.3
say "relay log"
cat "$demo/relay.log"
[ -f "$demo/last-frame.png" ] && echo "last decoded picture: $demo/last-frame.png"
true
