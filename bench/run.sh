#!/bin/bash
# Runs every clipmesh benchmark and prints a table of figures, each beside
# the limit it is compared with, measured in the same run.
#
#   import    clips per second imported from an export file of N generated
#             valid clips, and the raw libsodium verify rate over the same
#             signatures on all cores and on one core
#   latency   median and max time from `publish` returning to the clip being
#             in the mirror's feed, over RUNS publishes on loopback
#
# usage: bench/run.sh [N] [RUNS]   (defaults 100000 and 20)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
runs=${2:-20}

scripts/install-deps.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc)" --target clipmesh bench_gen >/dev/null
bin=$PWD/build-bench/cli/clipmesh
work=$(mktemp -d /tmp/clipmesh-bench.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- import rate -------------------------------------------------------
read -r _ verify verify_all < <(build-bench/bench/bench_gen "$n" "$work/clips.export")
"$bin" --home "$work/importer" init >/dev/null
start=$(now)
"$bin" --home "$work/importer" import "$work/clips.export" >"$work/import.out"
end=$(now)
grep -q "accepted $n," "$work/import.out" || { cat "$work/import.out"; exit 1; }
import_rate=$(python3 -c "print(round($n / ($end - $start)))")

# --- publish to mirror latency ------------------------------------------
for home in creator mirror; do
	"$bin" --home "$work/$home" init >/dev/null
	printf 'listen = tcp://127.0.0.1:%s\n' "$(free_port)" >>"$work/$home/config"
done
"$bin" --home "$work/creator" key new bench >/dev/null
"$bin" --home "$work/creator" node >"$work/creator.log" 2>&1 &
pids+=($!)
until "$bin" --home "$work/creator" status --json | grep -q '"node":{'; do sleep 0.05; done
"$bin" --home "$work/mirror" mirror --peer "$("$bin" --home "$work/creator" id)" \
	>"$work/mirror.log" 2>&1 &
pids+=($!)
until "$bin" --home "$work/mirror" status --json | grep -q '"peers":\[{'; do sleep 0.05; done

: >"$work/latency"
for i in $(seq 1 "$runs"); do
	start=$(now)
	id=$("$bin" --home "$work/creator" publish samples/photo-backpack.jpg \
		--as bench --product gtin:2000000004044 --title "Latency run $i")
	deadline=$((SECONDS + 30))
	until "$bin" --home "$work/mirror" feed --json --limit 1 2>/dev/null | grep -q "$id"; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "run $i timed out" >&2; exit 1; }
		sleep 0.005
	done
	end=$(now)
	python3 -c "print(round(($end - $start) * 1000, 1))" >>"$work/latency"
done
read -r median worst < <(python3 - "$work/latency" <<'PY'
import statistics, sys
values = [float(line) for line in open(sys.argv[1])]
print(round(statistics.median(values), 1), round(max(values), 1))
PY
)

printf '\n| benchmark | figure | limit measured in the same run | ratio |\n'
printf '|---|---|---|---|\n'
printf '| import of %s clips | %s clips/s | %s verifies/s (libsodium, %s cores) | %s |\n' \
	"$n" "$import_rate" "$verify_all" "$(nproc)" \
	"$(python3 -c "print(round($import_rate / $verify_all, 3))")"
printf '| (same) | | %s verifies/s (libsodium, 1 core) | %s |\n' \
	"$verify" "$(python3 -c "print(round($import_rate / $verify, 3))")"
printf '| publish to mirror feed, %s runs | median %s ms, max %s ms | - | - |\n' \
	"$runs" "$median" "$worst"
printf '\nmachine: %s cores, %s\n' "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
