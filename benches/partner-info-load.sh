#!/usr/bin/env bash
# Partner-info load test (not CI; issue 8): the real partner-info server
# (`spalding serve-document`, release build) under bounded loopback load for
# DURATION seconds per phase, over TLS:
#   1. keep-alive: CONNECTIONS connections reusing their TLS sessions;
#   2. churn: every request on a new connection (full TLS handshake),
#      which exercises accept, the connection limit and the handshake path.
# Every request must be answered 200 (no socket errors, no non-2xx), and the
# server's resident memory is sampled every 5 s: it must stay flat (the
# final RSS at most RSS_SLACK_KIB above the RSS after the first 5 s of the
# first phase). Prints requests/s, errors and RSS; exits non-zero otherwise.
# Needs wrk (apt-get install -y wrk).
#
#   benches/partner-info-load.sh [seconds] [connections] [threads]
#   SPALDING_BIN=target/debug/spalding benches/partner-info-load.sh   # no release build
set -euo pipefail

DURATION="${1:-30}"
CONNECTIONS="${2:-64}"
THREADS="${3:-2}"
RSS_SLACK_KIB="${RSS_SLACK_KIB:-8192}"
PORT=18445
VC=load
URL="https://127.0.0.1:$PORT/v1/virtual-clouds/$VC"

command -v wrk >/dev/null || { echo "wrk not installed (apt-get install -y wrk)" >&2; exit 1; }

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
PID=""
SAMPLER=""
cleanup() {
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# SPALDING_BIN runs an already built binary instead (e.g. a debug build).
BIN="${SPALDING_BIN:-$ROOT/target/release/spalding}"
if [ -z "${SPALDING_BIN:-}" ]; then
    cargo build --release -q -p spalding-bin --manifest-path "$ROOT/Cargo.toml"
fi
"$BIN" serve-document --listen "127.0.0.1:$PORT" \
    --virtual-cloud "$VC" --write-dir "$WORK" >/dev/null &
PID=$!
for _ in $(seq 100); do [ -f "$WORK/document.json" ] && break; sleep 0.1; done
sleep 0.5

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
RSS_START=$(rss)
( while kill -0 "$PID" 2>/dev/null; do echo "$(date +%s) $(rss)"; sleep 5; done ) > "$WORK/rss.log" &
SAMPLER=$!

# One line per phase: requests, requests/s, socket errors, non-2xx answers.
load() {
    local name="$1"; shift
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" "$@" "$URL" > "$WORK/$name.txt"
    awk -v name="$name" '
        /requests in/ {requests = $1}
        /Requests\/sec/ {rps = $2}
        /Socket errors/ {errors = $0; sub(/.*Socket errors: */, "", errors)}
        /Non-2xx/ {non2xx = $NF}
        END {
            printf "%s: %s requests, %s requests/s, socket errors: %s, non-2xx: %s\n",
                name, requests, rps, (errors == "" ? "none" : errors), (non2xx == "" ? 0 : non2xx)
            exit (errors == "" && non2xx == "" ? 0 : 1)
        }' "$WORK/$name.txt"
}

status=0
load keep-alive || status=1
RSS_AFTER_FIRST=$(rss)
load churn -H "Connection: close" || status=1
sleep 1
RSS_END=$(rss)
kill "$SAMPLER" 2>/dev/null || true
SAMPLER=""

# The baseline: the first sample taken under load (buffers and TLS state warmed up).
RSS_WARM=$(awk 'NR == 2 {print $2}' "$WORK/rss.log")
RSS_WARM="${RSS_WARM:-$RSS_START}"
RSS_MAX=$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$WORK/rss.log")
echo "document: $(wc -c < "$WORK/document.json") bytes; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s per phase (HTTP/1.1 over TLS)"
echo "RSS KiB: idle $RSS_START, warm $RSS_WARM, after keep-alive $RSS_AFTER_FIRST, after churn $RSS_END, max $RSS_MAX"
echo "RSS samples (every 5 s): $(awk '{printf "%s ", $2}' "$WORK/rss.log")"
if [ "$RSS_END" -gt $((RSS_WARM + RSS_SLACK_KIB)) ]; then
    echo "memory grew by more than $RSS_SLACK_KIB KiB under load" >&2
    status=1
fi
exit "$status"
