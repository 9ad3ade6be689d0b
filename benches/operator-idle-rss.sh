#!/usr/bin/env bash
# Idle RSS of `spalding operator` (release build) against the in-memory API
# server in a process of its own (`spalding apiserver`, hidden): the operator
# creates its identity Secret, reaches /readyz, then idles with no
# VirtualCloud; VmRSS and VmHWM are read from /proc after IDLE seconds.
# Usage: benches/operator-idle-rss.sh   Environment: IDLE (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
idle=${IDLE:-30}
cargo build -q --release -p spalding-bin
bin=target/release/spalding
dir=$(mktemp -d)
api_pid=
op_pid=
cleanup() {
  [ -n "$op_pid" ] && kill "$op_pid" 2>/dev/null || true
  [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
"$bin" apiserver --kubeconfig "$dir/kubeconfig" 2>"$dir/apiserver.log" &
api_pid=$!
for _ in $(seq 50); do [ -s "$dir/kubeconfig" ] && break; sleep 0.1; done
KUBECONFIG="$dir/kubeconfig" RUST_LOG=warn "$bin" operator \
  --party party-a --endpoint https://127.0.0.1:18443 \
  --partner-info-address 127.0.0.1:18443 --health-address 127.0.0.1:18080 \
  --identity-secret-namespace default --simulate-key-generation \
  >"$dir/operator.log" 2>&1 &
op_pid=$!
for _ in $(seq 100); do
  curl -fs http://127.0.0.1:18080/readyz >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs http://127.0.0.1:18080/readyz >/dev/null || { cat "$dir/operator.log"; exit 1; }
sleep "$idle"
echo "spalding operator after ${idle} s idle:"
grep -E 'VmRSS|VmHWM' "/proc/$op_pid/status"
