#!/bin/bash
# Feed pages of 50 clips by author, by product and by tag on a store of N
# clips, timed inside one process (bench_feed.c), beside the time to
# verify the same records, measured in the same run. Uses the home of
# bench/source_home.sh, which it builds when missing.
#
# usage: bench/feed.sh [N] [PAGES]   (defaults 1000000 and 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
pages=${2:-2000}

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j2 --target clipmesh bench_gen bench_feed \
	>/dev/null
home=$(bench/source_home.sh "$n")
build-bench/bench/bench_feed "$home/store" "$pages"
printf '\nstore of %s clips; load average %s\n' "$n" \
	"$(cut -d' ' -f1-3 /proc/loadavg)"
