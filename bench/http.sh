#!/bin/bash
# Measures the mirror's HTTP API on 127.0.0.1 and prints a markdown table.
#
#   feed    wrk (2 threads, 16 connections, 15 s) against GET
#           /api/v1/clips (20 clips a page) and GET /api/v1/clips?limit=100
#           on a mirror holding CLIPS generated clips: requests/s and the
#           99th percentile latency. wrk shares the 2 cores with the mirror.
#   media   GET /api/v1/media/HASH of one MIB MiB video with curl to
#           /dev/null, the first download (which hashes every chunk) and
#           the best of 3, as a ratio to bench_chunk_read reading
#           the same chunks straight from LMDB with store_chunk_get in the
#           same run, best of 3.
#
# The home with the clips and the media is kept in CACHE (default
# ~/.cache/clipmesh/http-bench), because generating and importing a
# million clips takes minutes. Delete the folder to rebuild it. The
# mirror runs with the default access log (one line per request) written
# to a file, and --http-rate high enough that wrk is never limited.
# MB is 10^6 bytes.
#
# usage: bench/http.sh [CLIPS] [MIB]   (defaults 1000000 and 256)
set -euo pipefail
cd "$(dirname "$0")/.."
clips=${1:-1000000}
mib=${2:-256}
if ! [[ $clips =~ ^[0-9]+$ && $mib =~ ^[0-9]+$ ]] || [ "$clips" -lt 100 ] ||
	[ "$mib" -lt 1 ] || [ "$mib" -gt 4095 ]; then
	echo "http.sh: usage: bench/http.sh [CLIPS >= 100] [MIB 1..4095]" >&2
	exit 2
fi
for tool in wrk curl; do
	command -v "$tool" >/dev/null || {
		echo "http.sh: $tool is missing; run scripts/install-deps.sh" >&2
		exit 1
	}
done

build=build-httpbench
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target clipmesh bench_gen bench_chunk_read \
	>/dev/null
bin=$PWD/$build/cli/clipmesh
cache=${CACHE:-$HOME/.cache/clipmesh/http-bench}/c$clips-m$mib
home=$cache/home
work=$(mktemp -d /tmp/clipmesh-httpbench.XXXXXX)
mirror_pid=
cleanup() {
	[ -n "$mirror_pid" ] && kill -TERM "$mirror_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
calc() { python3 -c "print($1)"; }

# --- The cached home ----------------------------------------------------
if [ ! -f "$cache/ready" ]; then
	echo "http.sh: building $cache (once)" >&2
	rm -rf "$cache"
	mkdir -p "$cache"
	"$bin" --home "$home" init >/dev/null
	"$build/bench/bench_gen" "$clips" "$work/clips.export" >/dev/null
	"$bin" --home "$home" import "$work/clips.export" >&2
	rm -f "$work/clips.export"
	"$bin" --home "$home" key new bench >/dev/null
	{
		head -c 12 samples/review-blender.mp4
		head -c $((mib * 1024 * 1024 - 12)) /dev/urandom
	} >"$work/large.mp4"
	id=$("$bin" --home "$home" publish "$work/large.mp4" --as bench \
		--product gtin:2000000001012 --title "Large media")
	"$bin" --home "$home" show "$id" --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["media"][0]["hash"])' \
			>"$cache/media"
	rm -f "$work/large.mp4"
	touch "$cache/ready"
fi
media=$(cat "$cache/media")

# --- The mirror ---------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
listen=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" --home "$home" mirror --listen "tcp://127.0.0.1:$listen" \
	--http "$port" --http-rate 1000000 >"$work/mirror.log" 2>&1 &
mirror_pid=$!
for _ in $(seq 300); do
	curl -sf "$base/healthz" >/dev/null && break
	sleep 0.1
done
curl -sf "$base/healthz" >/dev/null || {
	echo "http.sh: the mirror did not serve HTTP within 30 s" >&2
	tail -20 "$work/mirror.log" >&2
	exit 1
}

# Prints "requests/s p99_ms" of one wrk run against URL.
wrk_run() {
	wrk -t2 -c16 -d15s --latency "$1" >"$work/wrk.out"
	python3 - "$work/wrk.out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", text).groups()
p99 = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if errors:
    sys.exit("wrk saw %s error responses" % errors.group(1))
print("%.0f %.2f" % (rps, p99))
PY
}

read -r feed_rps feed_p99 < <(wrk_run "$base/api/v1/clips")
read -r page_rps page_p99 < <(wrk_run "$base/api/v1/clips?limit=100")

# The first download hashes every chunk. The mirror keeps their hashes
# as intact, so the later two are sent without hashing.
best_http=0
for i in 1 2 3; do
	rate=$(curl -sf -o /dev/null -w '%{speed_download}' \
		"$base/api/v1/media/$media")
	[ "$i" -gt 1 ] || first_http=$(calc "$rate / 1e6")
	best_http=$(calc "max($best_http, $rate / 1e6)")
done
read -r _ best_raw < <("$build/bench/bench_chunk_read" "$home/store" \
	"$media" 3)
errors=$(grep -c " error " "$work/mirror.log" || true)

cat <<EOF
| benchmark | figure | limit measured in the same run | ratio |
|---|---|---|---|
| GET /api/v1/clips (20 a page), $clips clips | $feed_rps requests/s, p99 $feed_p99 ms | - | - |
| GET /api/v1/clips?limit=100 | $page_rps requests/s, p99 $page_p99 ms | - | - |
| media over HTTP, $mib MiB, first download (chunks hashed) | $(calc "round($first_http, 1)") MB/s | $best_raw MB/s store_chunk_get | $(calc "round($first_http / $best_raw, 2)") |
| media over HTTP, $mib MiB, best of 3 | $(calc "round($best_http, 1)") MB/s | $best_raw MB/s store_chunk_get | $(calc "round($best_http / $best_raw, 2)") |
EOF
echo "mirror log lines at level error: $errors" >&2
