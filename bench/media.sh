#!/bin/bash
# Measures how fast one large media file moves between clipmesh nodes on
# 127.0.0.1, beside the limits measured in the same run, and prints a
# markdown table.
#
#   one seeder     creator node A publishes a MIB MiB video/mp4 file (the
#                  first 12 bytes of samples/review-blender.mp4, then random
#                  bytes). Node B follows A's creator key and starts with
#                  --peer A. The time runs from B's start until
#                  `clipmesh show ID --json` on B reports every media item
#                  present, polled every 50 ms. Node C then fetches the
#                  same way, as a second one-seeder run.
#   three seeders  fresh node D fetches the clip from A, B and C at once.
#   limits         bench_zmq_raw moves the same bytes over raw ZeroMQ in
#                  256 KiB replies with 8 requests in flight, with and
#                  without CURVE, and hashes them with BLAKE2b.
#
# MB is 10^6 bytes. Peak RSS is VmHWM from /proc/PID/status, read just
# before each node is stopped.
#
# usage: bench/media.sh [MIB]   (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
if ! [[ $mib =~ ^[0-9]+$ ]] || [ "$mib" -lt 1 ] || [ "$mib" -gt 4095 ]; then
	echo "media.sh: invalid size '$mib': expected MiB from 1 to 4095" >&2
	exit 2
fi
bytes=$((mib * 1024 * 1024))
timeout_s=$((60 + mib)) # generous: a fetch at 1 MB/s would still finish

build=build-mediabench
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target clipmesh bench_zmq_raw >/dev/null
bin=$PWD/$build/cli/clipmesh
work=$(mktemp -d /tmp/clipmesh-media.XXXXXX)
declare -A pid_of=()
cleanup() {
	for pid in "${pid_of[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
calc() { python3 -c "print($1)"; }

# Creates home $1 that listens on a free loopback port.
make_home() {
	"$bin" --home "$work/$1" init >/dev/null
	printf 'listen = tcp://127.0.0.1:%s\n' "$(free_port)" >>"$work/$1/config"
}

# Starts the node of home $1 with the remaining arguments, in the
# background, and records its pid.
start_node() {
	local home=$1
	shift
	"$bin" --home "$work/$home" --log-level warn node "$@" \
		>"$work/$home.log" 2>&1 &
	pid_of[$home]=$!
}

wait_node_up() {
	local deadline=$((SECONDS + 30))
	until "$bin" --home "$work/$1" status --json 2>/dev/null |
		grep -q '"node":{'; do
		[ "$SECONDS" -lt "$deadline" ] || {
			echo "media.sh: node $1 did not start" >&2
			cat "$work/$1.log" >&2
			exit 1
		}
		sleep 0.05
	done
}

# Waits until home $1 stores clip $2 with every media item present.
wait_media_present() {
	local deadline=$((SECONDS + timeout_s)) out
	while :; do
		out=$("$bin" --home "$work/$1" show "$2" --json 2>/dev/null) || out=
		if grep -q '"present":true' <<<"$out" &&
			! grep -q '"present":false' <<<"$out"; then
			return 0
		fi
		[ "$SECONDS" -lt "$deadline" ] || {
			echo "media.sh: $1 did not fetch clip $2 in ${timeout_s}s" >&2
			echo "$out" >&2
			tail -n 20 "$work/$1.log" >&2
			exit 1
		}
		sleep 0.05
	done
}

# Prints the peak RSS of the node of home $1 in MiB.
peak_rss_mib() {
	local kib
	kib=$(awk '/^VmHWM:/ {print $2}' "/proc/${pid_of[$1]}/status")
	calc "round($kib / 1024)"
}

# Starts home $1 as a follower of the creator with --peer for each of the
# homes after it, and sets `elapsed` to the seconds until it stores the
# clip. It runs in this shell, not in $(...), so that pid_of keeps the pid.
fetch_from() {
	local home=$1 start peers=()
	shift
	make_home "$home"
	"$bin" --home "$work/$home" follow "$creator_key" >/dev/null
	for seeder in "$@"; do
		peers+=(--peer "$("$bin" --home "$work/$seeder" id)")
	done
	start=$(now)
	start_node "$home" "${peers[@]}" --media-max "$((mib + 1))M"
	wait_media_present "$home" "$clip"
	elapsed=$(calc "$(now) - $start")
}

# --- limits ------------------------------------------------------------
raw=$("$build/bench/bench_zmq_raw" "$bytes")
read -r _ raw_curve raw_plain blake2b <<<"$raw"

# --- test file and creator ----------------------------------------------
{
	head -c 12 samples/review-blender.mp4
	head -c $((bytes - 12)) /dev/urandom
} >"$work/clip.mp4"
make_home a
"$bin" --home "$work/a" key new bench >/dev/null
creator_key=$("$bin" --home "$work/a" key list | awk '$1 == "bench" {print $2}')
start_node a
wait_node_up a
clip=$("$bin" --home "$work/a" publish "$work/clip.mp4" --as bench \
	--product gtin:2000000004044 --title "Media benchmark, $mib MiB")
rm -f "$work/clip.mp4"

# --- one seeder, then three -----------------------------------------------
fetch_from b a
seconds_b=$elapsed
rss_a=$(peak_rss_mib a)
rss_b=$(peak_rss_mib b)
fetch_from c a
seconds_c=$elapsed
fetch_from d a b c
seconds_d=$elapsed
rss_d=$(peak_rss_mib d)
rss_a_end=$(peak_rss_mib a)

mbps() { calc "round($bytes / 1e6 / $1, 1)"; }
ratio() { calc "round($1 / $2, 3)"; }
node_b=$(mbps "$seconds_b")
node_c=$(mbps "$seconds_c")
node_d=$(mbps "$seconds_d")

printf '\n| benchmark (%s MiB) | figure | limit measured in the same run | ratio |\n' "$mib"
printf '|---|---|---|---|\n'
printf '| node B from A | %s MB/s (%.2f s) | %s MB/s raw ZeroMQ, CURVE | %s |\n' \
	"$node_b" "$seconds_b" "$raw_curve" "$(ratio "$node_b" "$raw_curve")"
printf '| (same) | | %s MB/s raw ZeroMQ, no CURVE | %s |\n' \
	"$raw_plain" "$(ratio "$node_b" "$raw_plain")"
printf '| (same) | | %s MB/s BLAKE2b, 256 KiB blocks, 1 core | %s |\n' \
	"$blake2b" "$(ratio "$node_b" "$blake2b")"
printf '| node C from A (repeat) | %s MB/s (%.2f s) | %s MB/s raw ZeroMQ, CURVE | %s |\n' \
	"$node_c" "$seconds_c" "$raw_curve" "$(ratio "$node_c" "$raw_curve")"
printf '| node D from A, B and C | %s MB/s (%.2f s) | %s MB/s raw ZeroMQ, CURVE | %s |\n' \
	"$node_d" "$seconds_d" "$raw_curve" "$(ratio "$node_d" "$raw_curve")"
printf '| peak RSS, seeder A | %s MiB after B, %s MiB at the end | - | - |\n' \
	"$rss_a" "$rss_a_end"
printf '| peak RSS, fetcher B | %s MiB | - | - |\n' "$rss_b"
printf '| peak RSS, fetcher D | %s MiB | - | - |\n' "$rss_d"
printf '\nmachine: %s cores, %s\n' "$(nproc)" \
	"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
