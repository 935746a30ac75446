#!/bin/bash
# Cold catch-up: a new mirror with an empty store connects to one peer
# that stores N clips and syncs all of them (reconciliation, then WANT and
# RECORDS), both real processes on 127.0.0.1. Prints clips per second
# beside the raw libsodium verify rate on the same cores, measured in the
# same run by bench_gen over 100,000 fresh signatures.
#
# The source home comes from bench/source_home.sh, which builds it once
# per N and keeps it under /tmp; later runs reuse it.
#
# usage: bench/catchup.sh [N]   (default 1000000)
# env:   CATCHUP_PERF=1 records the mirror with `perf record -g` into
#        the work folder and prints `perf report` top entries.
#        CATCHUP_BIN=FILE runs the mirror from that clipmesh binary (an
#        older build, to compare with in the same conditions).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
verify_n=100000

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j2 --target clipmesh bench_gen >/dev/null
bin=$PWD/build-bench/cli/clipmesh
work=$(mktemp -d /tmp/clipmesh-catchup.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "${CATCHUP_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# Prints the clips that home $1 stores. It runs every 0.2 s during the
# catch-up, so it parses with sed: starting python3 five times a second
# took about 0.4 of a core (80 ms of CPU each) from the two cores measured.
clips_of() {
	local clips
	clips=$("$bin" --home "$1" status --json |
		sed -n 's/^{"records":{"clips":\([0-9]*\),.*/\1/p')
	echo "${clips:-0}"
}
# Prints the user plus system CPU seconds of process PID.
cpu_seconds() {
	python3 - "$1" <<'PY'
import os, sys
fields = open("/proc/%s/stat" % sys.argv[1]).read().rsplit(")", 1)[1].split()
print(round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1))
PY
}
# Prints the anonymous resident memory of process PID in MiB (the LMDB
# map is file-backed and left out).
anon_rss_mib() {
	awk '/RssAnon/ { printf "%.0f\n", $2 / 1024 }' "/proc/$1/status"
}
# Prints the user plus system CPU seconds of each live thread of process
# PID by thread name, and the rest (threads that ended, such as the
# verifiers of each message) as "ended".
thread_cpu() {
	python3 - "$1" <<'PY'
import collections, os, sys
tick = os.sysconf("SC_CLK_TCK")
def cpu(path):
    text = open(path).read()
    name = text[text.index("(") + 1:text.rindex(")")]
    f = text.rsplit(")", 1)[1].split()
    return name, (int(f[11]) + int(f[12])) / tick
_, total = cpu("/proc/%s/stat" % sys.argv[1])
by_name = collections.Counter()
for tid in os.listdir("/proc/%s/task" % sys.argv[1]):
    name, seconds = cpu("/proc/%s/task/%s/stat" % (sys.argv[1], tid))
    by_name[name] += seconds
by_name["ended"] = total - sum(by_name.values())
print(", ".join("%s %.1f" % kv for kv in by_name.most_common()))
PY
}
# Prints the bytes that process PID passed to write system calls.
written_bytes() {
	awk '/^wchar/ { print $2 }' "/proc/$1/io"
}
# Prints the seconds that the threads of process PID waited for a CPU.
cpu_wait_seconds() {
	cat /proc/"$1"/task/*/schedstat |
		awk '{ sum += $2 } END { printf "%.1f\n", sum / 1e9 }'
}

# --- the cached source home ----------------------------------------------
source_home=$(bench/source_home.sh "$n")
build_seconds=$(cat "$(dirname "$source_home")/stamp")

# --- the verify limit, in this run -----------------------------------------
read -r _ verify_one verify_all < <(build-bench/bench/bench_gen "$verify_n" \
	/dev/null)

# --- catch-up -------------------------------------------------------------
source_ep=tcp://127.0.0.1:$(free_port)
"$bin" --home "$source_home" mirror --listen "$source_ep" --log-level warn \
	>"$work/source.log" 2>&1 &
source_pid=$!
pids+=("$source_pid")
until "$bin" --home "$source_home" status --json 2>/dev/null |
	grep -q '"node":{'; do sleep 0.1; done
source_addr=$("$bin" --home "$source_home" id --listen "$source_ep")
[ "$(clips_of "$source_home")" -eq "$n" ] ||
	{ echo "catchup.sh: the source home stores $(clips_of "$source_home") clips, expected $n; delete $(dirname "$source_home") to rebuild it" >&2; exit 1; }

"$bin" --home "$work/mirror" init >/dev/null
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
source_cpu_before=$(cpu_seconds "$source_pid")
start=$(now)
"${CATCHUP_BIN:-$bin}" --home "$work/mirror" mirror --listen "tcp://127.0.0.1:$(free_port)" \
	--peer "$source_addr" --log-level "${CATCHUP_LOG:-warn}" >"$work/mirror.log" 2>&1 &
mirror_pid=$!
pids+=("$mirror_pid")
if [ "${CATCHUP_PERF:-0}" = 1 ]; then
	perf record -g -o "$work/perf.data" -p "$mirror_pid" \
		>"$work/perf.log" 2>&1 &
	perf_pid=$!
fi
deadline=$((SECONDS + 3600))
progress=0
until [ "$(clips_of "$work/mirror" 2>/dev/null || echo 0)" -ge "$n" ]; do
	[ "$SECONDS" -lt "$deadline" ] ||
		{ echo "catchup.sh: catch-up timed out after an hour at $(clips_of "$work/mirror") clips" >&2; exit 1; }
	if [ $((SECONDS - progress)) -ge 30 ]; then
		progress=$SECONDS
		echo "  $(clips_of "$work/mirror") clips after $(python3 -c "print(round($(now) - $start))") s" >&2
	fi
	sleep 0.2
done
end=$(now)
mirror_cpu=$(cpu_seconds "$mirror_pid")
mirror_threads=$(thread_cpu "$mirror_pid")
mirror_written=$(written_bytes "$mirror_pid")
source_cpu=$(python3 -c "print(round($(cpu_seconds "$source_pid") - $source_cpu_before, 1))")
mirror_rss=$(anon_rss_mib "$mirror_pid")
mirror_wait=$(cpu_wait_seconds "$mirror_pid")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -n "${perf_pid:-}" ]; then
	kill -INT "$perf_pid"
	wait "$perf_pid" || true
	# head ends the pipe early, which pipefail would count as a failure.
	perf report -i "$work/perf.data" --no-children --sort comm,dso \
		-g none --stdio 2>/dev/null | grep -v '^#' | grep '%' |
		head -20 >&2 || true
	perf report -i "$work/perf.data" --no-children --sort dso,symbol \
		-g none --stdio 2>/dev/null | grep -v '^#' | grep '%' |
		head -40 >&2 || true
fi
"$bin" --home "$work/mirror" status --json >"$work/status.json"
read -r rounds sessions recon_bytes < <(python3 - "$work/status.json" <<'PY'
import json, sys
peers = json.load(open(sys.argv[1]))["node"]["peers"]
r = [p["reconciliation"] for p in peers]
print(sum(x["rounds"] for x in r), sum(x["sessions"] for x in r),
      sum(x["bytes_in"] + x["bytes_out"] for x in r))
PY
)

seconds=$(python3 -c "print(round($end - $start, 1))")
rate=$(python3 -c "print(round($n / ($end - $start)))")
printf '\n| benchmark | figure | limit measured in the same run | ratio |\n'
printf '|---|---|---|---|\n'
printf '| cold catch-up of %s clips from one peer | %s clips/s (%s s) | %s verifies/s (libsodium, %s cores) | %s |\n' \
	"$n" "$rate" "$seconds" "$verify_all" "$(nproc)" \
	"$(python3 -c "print(round($rate / $verify_all, 3))")"
printf '| (same) | | %s verifies/s (libsodium, 1 core) | %s |\n' \
	"$verify_one" "$(python3 -c "print(round($rate / $verify_one, 3))")"
printf '\nmirror: %s CPU s, %s s waiting for a CPU, %s MiB anonymous RSS;' \
	"$mirror_cpu" "$mirror_wait" "$mirror_rss"
printf ' CPU s by thread: %s; %s bytes written per clip;' \
	"$mirror_threads" "$((mirror_written / n))"
printf ' source: %s CPU s;' "$source_cpu"
printf ' reconciliation: %s sessions, %s rounds, %s bytes\n' \
	"$sessions" "$rounds" "$recon_bytes"
printf 'source home built once in %s s (bench/source_home.sh); load average %s before, %s after\n' \
	"$build_seconds" "$load_before" "$load_after"
