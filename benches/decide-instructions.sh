#!/usr/bin/env bash
# Instructions per call of `decide` at rest for 3, 16 and 64 partners, counted
# by callgrind (independent of machine load): the count inside `decide` with
# 1000 calls after the set-up minus the count with none, divided by 1000.
# Needs valgrind. Usage: benches/decide-instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -q -p benches --bench decide_count --no-run 2>/dev/null
binary=$(ls -t target/release/deps/decide_count-* | grep -v '\.d$' | head -n 1)
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    --toggle-collect='spalding_core::machine::decide::decide' "$binary" "$1" "$2" 2>&1 \
    | awk '/Collected/ {print $4}'
}
printf '%-9s %s\n' partners instructions/decide
for partners in 3 16 64; do
  base=$(count "$partners" 0)
  loaded=$(count "$partners" 1000)
  printf '%-9s %s\n' "$partners" $(( (loaded - base) / 1000 ))
done
