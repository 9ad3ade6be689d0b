#!/usr/bin/env bash
# The scaling run of `spalding simulate --auto-admit` at 3, 8, 16 and 32
# parties (release build): per run, the time from creating the VirtualClouds
# until every party is ready, the controller's API writes per party until
# then (the most of any party), the controller's writes and the partner
# documents fetched per party during the time at rest, and the peak RSS of the
# whole process (every party's API server, controller and servers) and its
# CPU seconds (user + sys), which decide the wall time on a small machine.
# Prints every run, then the medians per party count.
# Usage: benches/simulate-scaling.sh [parties...]   (default: 3 8 16 32)
# Environment: RUNS (default 3), LINGER (default 30s).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
linger=${LINGER:-30s}
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(3 8 16 32)
cargo build -q --release -p spalding-bin
bin=target/release/spalding
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

printf '%-8s %-4s %8s %14s %12s %12s %9s %7s\n' parties run ready_s writes/party rest_writes rest_fetches rss_MiB cpu_s
for n in "${sizes[@]}"; do
  for run in $(seq 1 "$runs"); do
    log="$out/$n-$run"
    /usr/bin/time -v "$bin" simulate --parties "$n" --auto-admit --linger "$linger" \
      --timeout 300 >"$log.out" 2>"$log.time" || true
    ready=$(awk '/parties ready/ {print $5}' "$log.out")
    writes=$(grep -oE '[0-9]+ API writes by the controller' "$log.out" | awk '{print $1}' | sort -n | tail -1)
    rest_writes=$(grep -oE '[0-9]+ writes, [0-9]+ partner documents fetched' "$log.out" | awk '{s+=$1} END {print s+0}')
    rest_fetches=$(grep -oE '[0-9]+ partner documents fetched' "$log.out" | awk '{print $1}' | sort -n | tail -1)
    rss=$(awk '/Maximum resident set size/ {printf "%.1f", $6/1024}' "$log.time")
    cpu=$(awk '/User time|System time/ {s+=$NF} END {printf "%.2f", s}' "$log.time")
    printf '%-8s %-4s %8s %14s %12s %12s %9s %7s\n' "$n" "$run" "${ready:--}" "${writes:--}" \
      "$rest_writes" "${rest_fetches:--}" "$rss" "$cpu"
    echo "$n ${ready:-nan} ${writes:-nan} $rest_writes ${rest_fetches:-nan} $rss $cpu" >>"$out/all"
  done
done
echo
echo "medians of $runs runs (rest: $linger after settling; rest_writes summed over parties, rest_fetches the most any party fetched)"
printf '%-8s %8s %14s %12s %12s %9s %7s\n' parties ready_s writes/party rest_writes rest_fetches rss_MiB cpu_s
for n in "${sizes[@]}"; do
  col() { awk -v n="$n" -v c="$1" '$1==n {print $c}' "$out/all" | median; }
  printf '%-8s %8s %14s %12s %12s %9s %7s\n' "$n" "$(col 2)" "$(col 3)" "$(col 4)" "$(col 5)" "$(col 6)" "$(col 7)"
done
