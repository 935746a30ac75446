#!/bin/bash
# Measures how fast one large media file moves between clipmesh nodes on
# 127.0.0.1, beside the limits measured in the same run, and prints a
# markdown table.
#
#   one seeder     creator node A publishes a MIB MiB video/mp4 file (the
#                  first 12 bytes of samples/review-blender.mp4, then random
#                  bytes). Node B follows A's creator key and starts with
#                  --peer A. The time runs from B's start until B logs
#                  "media complete", which B does after the last chunk's
#                  write transaction committed. The timestamp (ms) of that
#                  line is the end. `clipmesh show ID --json` on B then
#                  confirms every media item present. Node C then fetches
#                  the same way, as a second one-seeder run.
#   three seeders  fresh node D fetches the clip from A, B and C at once.
#   limits         bench_zmq_raw moves the same bytes over raw ZeroMQ in
#                  256 KiB replies with 8 requests in flight, with and
#                  without CURVE, and hashes them with BLAKE2b; dd
#                  then writes as many bytes to a file in the work
#                  folder in 4 MiB writes, each synced to the disk
#                  (oflag=dsync), as a node commits fetched chunks
#                  (CM_MEDIA_WRITE_BATCH chunks of CM_CHUNK_SIZE). It runs
#                  before B and again after D, and the ratios use the mean
#                  of the two runs, so that a load that changes during the
#                  run affects both sides.
#
# MB is 10^6 bytes. Peak RSS is VmHWM from /proc/PID/status, read just
# before each node is stopped. CPU time is user and system time from
# /proc/PID/stat. For node B it is B's whole run plus what A used while B
# fetched, and it stands beside the CPU time of both sides of the raw
# transfer. Other work on the machine changes CPU times much less than
# rates. The load column is the 1-minute load
# average when the transfer started, since other work on the machine
# changes the figures.
#
# usage: bench/media.sh [MIB]   (default 1024)
# env:   MEDIA_DIR=DIR puts the homes and the disk test in DIR instead
#        of /tmp: a tmpfs such as /dev/shm takes the disk out of the run.
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
work=$(mktemp -d "${MEDIA_DIR:-/tmp}/clipmesh-media.XXXXXX")
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
	"$bin" --home "$work/$home" --log-level info node "$@" \
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

# Prints the UTC time, in seconds since the epoch, of the "media
# complete" line for media $2 in the log of home $1, or nothing.
complete_time() {
	local line
	line=$(grep -m1 "media complete media=${2:0:8}" "$work/$1.log") ||
		return 0
	python3 -c 'import datetime, sys
t = datetime.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%S.%fZ")
print(t.replace(tzinfo=datetime.timezone.utc).timestamp())' "${line%% *}"
}

# Waits until home $1 logs that it completed media $2, sets `finished` to
# the time of that line, and checks with `show` that every media item of
# clip $clip is present.
wait_media_complete() {
	local deadline=$((SECONDS + timeout_s)) out
	until finished=$(complete_time "$1" "$2") && [ -n "$finished" ]; do
		[ "$SECONDS" -lt "$deadline" ] || {
			echo "media.sh: $1 did not fetch media $2 in ${timeout_s}s" >&2
			tail -n 20 "$work/$1.log" >&2
			exit 1
		}
		sleep 0.2
	done
	out=$("$bin" --home "$work/$1" show "$clip" --json)
	if ! grep -q '"present":true' <<<"$out" ||
		grep -q '"present":false' <<<"$out"; then
		echo "media.sh: $1 logged media $2 complete, but show reports it incomplete:" >&2
		echo "$out" >&2
		exit 1
	fi
}

# Prints the CPU time (user and system) that the node of home $1 used so
# far, in seconds.
cpu_seconds() {
	awk -v tck="$(getconf CLK_TCK)" '{print ($14 + $15) / tck}' \
		"/proc/${pid_of[$1]}/stat"
}

# Prints the peak RSS of the node of home $1 in MiB.
peak_rss_mib() {
	local kib
	kib=$(awk '/^VmHWM:/ {print $2}' "/proc/${pid_of[$1]}/status")
	calc "round($kib / 1024)"
}

# Starts home $1 as a follower of the creator with --peer for each of the
# homes after it, and sets `elapsed` to the seconds until it stores the
# media and `load` to the load average at the start. It runs in this shell, not in $(...), so that pid_of keeps the pid.
fetch_from() {
	local home=$1 start peers=()
	shift
	make_home "$home"
	"$bin" --home "$work/$home" follow "$creator_key" >/dev/null
	for seeder in "$@"; do
		peers+=(--peer "$("$bin" --home "$work/$seeder" id)")
	done
	load=$(cut -d' ' -f1 /proc/loadavg)
	start=$(now)
	start_node "$home" "${peers[@]}" --media-max "$((mib + 1))M"
	wait_media_complete "$home" "$root"
	elapsed=$(calc "$finished - $start")
}

# Runs bench_zmq_raw and the synced disk writes, and appends their
# figures and the load average at its start to the arrays raw_curve,
# raw_plain, blake2b, raw_cpu, disk and raw_load.
raw_curve=() raw_plain=() blake2b=() raw_cpu=() disk=() raw_load=()
measure_limits() {
	local curve plain hash cpu start
	raw_load+=("$(cut -d' ' -f1 /proc/loadavg)")
	read -r _ curve plain hash cpu <<<"$("$build/bench/bench_zmq_raw" "$bytes")"
	raw_curve+=("$curve")
	raw_plain+=("$plain")
	blake2b+=("$hash")
	raw_cpu+=("$cpu")
	start=$(now)
	dd if=/dev/zero of="$work/disk.test" bs=4M count=$((mib / 4 + 1)) \
		oflag=dsync status=none
	disk+=("$(calc "round($(((mib / 4 + 1) * 4 * 1048576)) / 1e6 / ($(now) - $start), 1)")")
	rm -f "$work/disk.test"
}

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
measure_limits
root=$("$bin" --home "$work/a" show "$clip" --json |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["media"][0]["hash"])')
cpu_a=$(cpu_seconds a)
fetch_from b a
seconds_b=$elapsed load_b=$load
cpu_b=$(calc "$(cpu_seconds b) + $(cpu_seconds a) - $cpu_a")
rss_a=$(peak_rss_mib a)
rss_b=$(peak_rss_mib b)
fetch_from c a
seconds_c=$elapsed load_c=$load
fetch_from d a b c
seconds_d=$elapsed load_d=$load
rss_d=$(peak_rss_mib d)
rss_a_end=$(peak_rss_mib a)
measure_limits

mbps() { calc "round($bytes / 1e6 / $1, 1)"; }
ratio() { calc "round($1 / $2, 3)"; }
mean() { calc "round(($1 + $2) / 2, 1)"; }
curve=$(mean "${raw_curve[@]}")
plain=$(mean "${raw_plain[@]}")
hash=$(mean "${blake2b[@]}")
disk_rate=$(mean "${disk[@]}")
cpu_raw=$(calc "round((${raw_cpu[0]} + ${raw_cpu[1]}) / 2, 2)")
node_b=$(mbps "$seconds_b")
node_c=$(mbps "$seconds_c")
node_d=$(mbps "$seconds_d")

printf '\n| benchmark (%s MiB) | figure | load | limit measured in the same run | ratio |\n' "$mib"
printf '|---|---|---|---|---|\n'
printf '| node B from A | %s MB/s (%.2f s) | %s | %s MB/s raw ZeroMQ, CURVE | %s |\n' \
	"$node_b" "$seconds_b" "$load_b" "$curve" "$(ratio "$node_b" "$curve")"
printf '| (same) | | | %s MB/s raw ZeroMQ, no CURVE | %s |\n' \
	"$plain" "$(ratio "$node_b" "$plain")"
printf '| (same) | | | %s MB/s BLAKE2b, 256 KiB blocks, 1 core | %s |\n' \
	"$hash" "$(ratio "$node_b" "$hash")"
printf '| (same) | | | %s MB/s synced 4 MiB writes to the same disk | %s |\n' \
	"$disk_rate" "$(ratio "$node_b" "$disk_rate")"
printf '| node C from A (repeat) | %s MB/s (%.2f s) | %s | %s MB/s raw ZeroMQ, CURVE | %s |\n' \
	"$node_c" "$seconds_c" "$load_c" "$curve" "$(ratio "$node_c" "$curve")"
printf '| node D from A, B and C | %s MB/s (%.2f s) | %s | %s MB/s raw ZeroMQ, CURVE | %s |\n' \
	"$node_d" "$seconds_d" "$load_d" "$curve" "$(ratio "$node_d" "$curve")"
printf '| CPU time, A and B while B fetched | %.2f s | | %s s raw ZeroMQ, CURVE, both sides | %s |\n' \
	"$cpu_b" "$cpu_raw" "$(ratio "$cpu_raw" "$cpu_b")"
printf '| peak RSS, seeder A | %s MiB after B, %s MiB at the end | | - | - |\n' \
	"$rss_a" "$rss_a_end"
printf '| peak RSS, fetcher B | %s MiB | | - | - |\n' "$rss_b"
printf '| peak RSS, fetcher D | %s MiB | | - | - |\n' "$rss_d"
printf '\nlimits, before B / after D (load): raw ZeroMQ with CURVE %s / %s MB/s, ' \
	"${raw_curve[0]}" "${raw_curve[1]}"
printf 'without %s / %s MB/s, BLAKE2b %s / %s MB/s, synced disk writes %s / %s MB/s, CPU time with CURVE %s / %s s (load %s / %s)\n' \
	"${raw_plain[0]}" "${raw_plain[1]}" "${blake2b[0]}" "${blake2b[1]}" \
	"${disk[0]}" "${disk[1]}" \
	"${raw_cpu[0]}" "${raw_cpu[1]}" "${raw_load[0]}" "${raw_load[1]}"
printf 'machine: %s cores, %s\n' "$(nproc)" \
	"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
