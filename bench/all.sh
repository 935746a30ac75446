#!/bin/bash
# Runs every benchmark and prints one table: each figure beside the limit
# it is compared with, measured in the same run, and the 1-minute load
# average when that benchmark started (other work may share the cores).
#
#   run.sh        import rate and publish-to-mirror latency
#   bench_recon   reconciliation traffic between two stores of N clips
#   media.sh      media transfer (ALL_MEDIA_MIB MiB, default 256)
#   catchup.sh    cold catch-up of a mirror from one peer with N clips
#   dissem.sh     publish-to-all latency and traffic on 32 nodes, 100 clips
#   feed.sh       feed pages by author, product and tag on N clips
#
# The stores of N clips are built once and cached under /tmp (about 10
# minutes each for 1,000,000 on 2 busy cores). Later runs take about 10
# minutes in all. Each benchmark's full output is printed first.
#
# usage: bench/all.sh [N]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
out=$(mktemp -d /tmp/clipmesh-all.XXXXXX)
trap 'rm -rf "$out"' EXIT

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j2 >/dev/null

# Runs one benchmark, keeps its output and the load when it started.
bench() {
	local name=$1
	shift
	echo "== $name: $*" >&2
	cut -d' ' -f1 /proc/loadavg >"$out/$name.load"
	"$@" >"$out/$name.out" 2>"$out/$name.err" || {
		cat "$out/$name.out" "$out/$name.err" >&2
		echo "all.sh: $name failed" >&2
		exit 1
	}
	cat "$out/$name.out"
}

# Prints the rows of the 4-column tables of NAME's output with its load
# as a fifth column.
rows() {
	grep '^| ' "$out/$1.out" | grep -v '^| benchmark' |
		sed "s/|\$/| $(cat "$out/$1.load") |/"
}

bench run bench/run.sh 100000 20
bench recon build-bench/bench/bench_recon "$n"
bench media bench/media.sh "${ALL_MEDIA_MIB:-256}"
bench catchup bench/catchup.sh "$n"
bench dissem bench/dissem.sh 32 100
bench feed bench/feed.sh "$n"

# bench_recon's rows: difference, bytes b->a and a->b, round trips, time,
# every id, ... (bench_recon.c).
recon_rows() {
	grep '^| [0-9]' "$out/recon.out" | awk -F'|' -v load="$(cat "$out/recon.load")" '{
		gsub(/ /, "", $2); gsub(/ /, "", $3); gsub(/ /, "", $4)
		gsub(/ /, "", $5); gsub(/ /, "", $7)
		printf "| reconciliation of a difference of %s | %d bytes, %s round trips | %s bytes, every id | %.3g | %s |\n",
			$2, $3 + $4, $5, $7, ($3 + $4) / $7, load
	}'
}

printf '\n| benchmark | figure | limit measured in the same run | ratio | load |\n'
printf '|---|---|---|---|---|\n'
rows run
recon_rows
rows media
rows catchup
rows dissem
rows feed
printf '\nN = %s; machine: %s cores, %s; %s\n' "$n" "$(nproc)" \
	"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
	"$(uptime)"
