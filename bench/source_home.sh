#!/bin/bash
# Prints the path of a clipmesh home that stores N generated clips (16
# authors, 4 products, one tag), and builds it first when it is missing:
# bench_gen writes the clips and `clipmesh import` stores them. The home
# is kept in /tmp/clipmesh-bench-catchup/N for bench/catchup.sh and
# bench/feed.sh; building 1,000,000 clips takes about 10 minutes on 2
# busy cores and 1.2 GB of disk. The file N/stamp holds the seconds the
# build took.
#
# usage: bench/source_home.sh N   (run from the repository root, after
#        building clipmesh and bench_gen in build-bench)
set -euo pipefail
n=$1
cache=/tmp/clipmesh-bench-catchup/$n
bin=$PWD/build-bench/cli/clipmesh

if [ ! -f "$cache/stamp" ]; then
	rm -rf "$cache"
	mkdir -p "$cache"
	echo "building a home of $n clips in $cache (once per N)" >&2
	start=$(date +%s)
	build-bench/bench/bench_gen "$n" "$cache/clips.export" >/dev/null
	"$bin" --home "$cache/source" init >/dev/null
	"$bin" --home "$cache/source" import "$cache/clips.export" \
		>"$cache/import.out"
	grep -q "accepted $n," "$cache/import.out" ||
		{ cat "$cache/import.out" >&2; exit 1; }
	rm -f "$cache/clips.export"
	echo $(($(date +%s) - start)) >"$cache/stamp"
	echo "built in $(cat "$cache/stamp") s" >&2
fi
echo "$cache/source"
