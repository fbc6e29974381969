#!/usr/bin/env bash
# One step of `make run`, timed: `step.sh LOG NAME CMD...` runs CMD, appends NAME, its wall time (ms)
# and its exit code to LOG, and exits as CMD did. `step.sh --table LOG` prints the timing table
# (also printed when a step fails, so the run up to the failure is on screen).
set -u
table() {
    awk -F'\t' 'BEGIN { printf "\n%-14s %9s  %s\n", "step", "seconds", "" }
                { total += $2 / 1000; printf "%-14s %9.1f  %s\n", $1, $2 / 1000, ($3 == 0 ? "" : "FAILED (exit " $3 ")") }
                END { printf "%-14s %9.1f\n", "total", total }' "$1"
}
if [ "$1" = "--table" ]; then
    table "$2"
    exit 0
fi
log=$1 name=$2
shift 2
mkdir -p "$(dirname "$log")"
printf '\n\033[1m== %s:\033[0m %s\n' "$name" "$*"
start=$(date +%s%N)
"$@"
rc=$?
printf '%s\t%s\t%s\n' "$name" "$(( ($(date +%s%N) - start) / 1000000 ))" "$rc" >> "$log"
[ "$rc" -eq 0 ] || table "$log"
exit "$rc"
