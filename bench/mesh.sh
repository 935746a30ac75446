#!/bin/bash
# Gossip on a mesh: NODES mirrors on loopback, each dialling DEGREE others
# chosen at random (a connected random graph: node i first dials node
# i-1), take CLIPS generated clips imported into node 0. Prints, summed
# over all nodes, the records received, the duplicates among them (a
# record a node already had), the record bytes received, and the time
# until every node holds every clip, beside the minimum: each node but
# the first has to receive each clip once.
#
# usage: bench/mesh.sh [NODES] [DEGREE] [CLIPS]   (defaults 12, 3, 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-12}
degree=${2:-3}
clips=${3:-2000}

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc)" --target clipmesh bench_gen >/dev/null
bin=$PWD/build-bench/cli/clipmesh
work=$(mktemp -d /tmp/clipmesh-mesh.XXXXXX)
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
clips_of() {
	"$bin" --home "$work/n$1" status --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["records"]["clips"])'
}

build-bench/bench/bench_gen "$clips" "$work/clips.export" >/dev/null
for i in $(seq 0 $((nodes - 1))); do
	"$bin" --home "$work/n$i" init >/dev/null
	printf 'listen = tcp://127.0.0.1:%s\n' "$(free_port)" >>"$work/n$i/config"
	# The topology below is the one measured: no links learned by
	# peer exchange on top of it.
	printf '[limits]\npeers_learned = 0\n' >>"$work/n$i/config"
done

# Node i dials node i-1 and DEGREE-1 other random earlier or later nodes.
RANDOM=7
for i in $(seq 0 $((nodes - 1))); do
	args=()
	if [ "$i" -gt 0 ]; then
		args+=(--peer "$("$bin" --home "$work/n$((i - 1))" id)")
		for _ in $(seq 2 "$degree"); do
			j=$((RANDOM % nodes))
			[ "$j" -eq "$i" ] || [ "$j" -eq $((i - 1)) ] && continue
			args+=(--peer "$("$bin" --home "$work/n$j" id)")
		done
	fi
	"$bin" --home "$work/n$i" mirror "${args[@]}" \
		>"$work/n$i.log" 2>&1 &
	pids+=($!)
done
for i in $(seq 0 $((nodes - 1))); do
	until "$bin" --home "$work/n$i" status --json 2>/dev/null |
		grep -q '"connected": *true\|"connected":true'; do
		sleep 0.1
	done
done

start=$(now)
"$bin" --home "$work/n0" import "$work/clips.export" >/dev/null
for i in $(seq 1 $((nodes - 1))); do
	until [ "$(clips_of "$i")" -eq "$clips" ]; do sleep 0.05; done
done
end=$(now)

for i in $(seq 0 $((nodes - 1))); do
	"$bin" --home "$work/n$i" status --json
done | python3 -c '
import json, sys
dec = json.JSONDecoder()
text = sys.stdin.read()
pos, received, duplicates, total_bytes, links = 0, 0, 0, 0, 0
while pos < len(text):
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos >= len(text):
        break
    obj, pos = dec.raw_decode(text, pos)
    for p in obj["node"]["peers"]:
        received += p["records_in"] + p["duplicates_in"]
        duplicates += p["duplicates_in"]
        total_bytes += p["bytes_in"]
        links += 1
nodes, clips, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
need = (nodes - 1) * clips
print("nodes %d, links seen %d, clips %d" % (nodes, links // 2, clips))
print("records received   %9d  (minimum %d, ratio %.2f)" % (received, need, received / need))
print("duplicates         %9d  (%.2f per needed record)" % (duplicates, duplicates / need))
print("bytes received     %9d  (%.0f per needed record)" % (total_bytes, total_bytes / need))
print("all nodes complete %9.2f s" % secs)
' "$nodes" "$clips" "$(python3 -c "print($end - $start)")"
