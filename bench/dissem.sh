#!/bin/bash
# Dissemination on a mesh: NODES creator nodes on 127.0.0.1 in a random
# connected topology where every node has 4 to 6 peers. Each node has an
# identity and follows every other, so each clip is wanted everywhere,
# and fetches no media (--media none), so that only record traffic counts.
# CLIPS clips (a 21 KB photo) are published with `clipmesh publish` from
# random nodes, one after another. Prints:
#
#   - publish-to-all latency: from the clip's creation time (set when
#     `publish` signs it) to the time of the log line of the last node
#     that stored it; median and p99 over the clips;
#   - bytes received per node and clip (application bytes of every
#     message, as `status` counts them) divided by the clip's encoded
#     size, with and without the traffic that flows without clips (pings
#     and periodic reconciliation), measured after the clips;
#   - file descriptors, threads and memory of the node processes.
#
# usage: bench/dissem.sh [NODES] [CLIPS] [SEED]   (defaults 32, 100, 1)
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-32}
clips=${2:-100}
seed=${3:-1}

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j2 --target clipmesh >/dev/null
bin=$PWD/build-bench/cli/clipmesh
work=$(mktemp -d /tmp/clipmesh-dissem.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "${DISSEM_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
cm() {
	local i=$1
	shift
	"$bin" --home "$work/n$i" "$@"
}

# Prints the sum of bytes received over all links of all nodes.
bytes_in_all() {
	for i in $(seq 0 $((nodes - 1))); do
		cm "$i" status --json
	done | python3 -c '
import json, sys
dec, text, pos, total = json.JSONDecoder(), sys.stdin.read(), 0, 0
while pos < len(text):
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos >= len(text):
        break
    obj, pos = dec.raw_decode(text, pos)
    total += sum(p["bytes_in"] for p in obj["node"]["peers"])
print(total)'
}

# --- homes, identities, follows and topology ------------------------------
keys=()
for i in $(seq 0 $((nodes - 1))); do
	cm "$i" init >/dev/null
	printf 'listen = tcp://127.0.0.1:%s\n' "$(free_port)" >>"$work/n$i/config"
	# The topology below is the one measured: no links learned by
	# peer exchange on top of it.
	printf '[limits]\npeers_learned = 0\n' >>"$work/n$i/config"
	keys+=("$(cm "$i" key new "creator$i")")
done
for i in $(seq 0 $((nodes - 1))); do
	for key in "${keys[@]}"; do
		cm "$i" follow "$key" >/dev/null
	done
done
# One line per node: the nodes it dials. A ring keeps the graph connected;
# random chords then raise every degree to at least 4, none above 6.
python3 - "$nodes" "$seed" >"$work/topology" <<'PY'
import random, sys
n, seed = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(seed)
edges = {(i, (i + 1) % n) if i < (i + 1) % n else ((i + 1) % n, i) for i in range(n)}
degree = [2] * n
for _ in range(100000):
    low = [i for i in range(n) if degree[i] < 4]
    if not low:
        break
    a = rng.choice(low)
    b = rng.choice([j for j in range(n) if j != a and degree[j] < 6])
    e = (min(a, b), max(a, b))
    if e in edges:
        continue
    edges.add(e)
    degree[a] += 1
    degree[b] += 1
assert all(4 <= d <= 6 for d in degree), degree
dials = [[] for _ in range(n)]
for a, b in sorted(edges):
    dials[b].append(a)   # the later node dials the earlier one
for d in dials:
    print(" ".join(map(str, d)))
print("links %d, degree %d..%d" % (len(edges), min(degree), max(degree)),
      file=sys.stderr)
PY

# --- start the nodes -------------------------------------------------------
i=0
while read -r line; do
	args=()
	for j in $line; do
		args+=(--peer "$(cm "$j" id)")
	done
	# Started directly, not through cm(), so that $! is clipmesh itself.
	"$bin" --home "$work/n$i" node --media none --log-level debug \
		"${args[@]}" >"$work/n$i.log" 2>&1 &
	pids+=($!)
	i=$((i + 1))
done <"$work/topology"
for i in $(seq 0 $((nodes - 1))); do
	until cm "$i" status --json 2>/dev/null | grep -q '"node":{'; do
		sleep 0.1
	done
done
# Every link up: each node lists as many connected peers as it has links.
python3 - "$work/topology" >"$work/degrees" <<'PY'
import sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1])]
deg = [0] * len(rows)
for i, row in enumerate(rows):
    for j in row:
        deg[i] += 1
        deg[j] += 1
print("\n".join(map(str, deg)))
PY
mapfile -t degree <"$work/degrees"
deadline=$((SECONDS + 120))
for i in $(seq 0 $((nodes - 1))); do
	until [ "$(cm "$i" status --json | python3 -c '
import json, sys
print(sum(1 for p in json.load(sys.stdin)["node"]["peers"]
          if p["connected"] and p.get("role")))')" -ge "${degree[$i]}" ]; do
		[ "$SECONDS" -lt "$deadline" ] ||
			{ echo "dissem.sh: node $i did not reach its ${degree[$i]} peers in 120 s" >&2; exit 1; }
		sleep 0.2
	done
done

# --- the clips --------------------------------------------------------------
# One clip at a time from a random node; prints each clip's publish-to-all
# latency in milliseconds.
publish_start=$(now)
bytes_before=$(bytes_in_all)
python3 - "$bin" "$work" "$nodes" "$clips" "$seed" >"$work/latency" <<'PY'
import datetime, json, os, random, re, subprocess, sys, time
binary, work = sys.argv[1], sys.argv[2]
nodes, clips, seed = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(seed)
stored = re.compile(r"^(\S+)Z debug node: stored \d+ records from peer=")
logs = ["%s/n%d.log" % (work, i) for i in range(nodes)]

def cm(i, *args):
    return subprocess.run([binary, "--home", "%s/n%d" % (work, i)] + list(args),
                          check=True, capture_output=True, text=True).stdout

def ms(stamp):
    t = datetime.datetime.fromisoformat(stamp)
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)

for k in range(clips):
    origin = rng.randrange(nodes)
    offsets = [os.path.getsize(p) for p in logs]
    clip = cm(origin, "publish", "samples/photo-backpack.jpg", "--as",
              "creator%d" % origin, "--product", "gtin:2000000004044",
              "--title", "Dissemination run %d" % k).strip()
    created = json.loads(cm(origin, "show", clip, "--json"))["created_ms"]
    waiting, last, deadline = set(range(nodes)) - {origin}, 0, time.time() + 60
    while waiting:
        for i in sorted(waiting):
            with open(logs[i]) as f:
                f.seek(offsets[i])
                for line in f:
                    match = stored.match(line)
                    if match:
                        last = max(last, ms(match.group(1)))
                        waiting.discard(i)
                        break
        if waiting and time.time() > deadline:
            sys.exit("clip %d did not reach nodes %s within 60 s"
                     % (k, sorted(waiting)))
        if waiting:
            time.sleep(0.01)
    print(last - created, flush=True)
PY
publish_bytes=$(($(bytes_in_all) - bytes_before))
publish_seconds=$(python3 -c "print($(now) - $publish_start)")

# The traffic that flows anyway (pings every 2 s, reconciliation every
# 30 s per link), over as long as the clips took, but 30 to 60 s so that
# it covers one reconciliation interval.
quiet_start=$(now)
bytes_before=$(bytes_in_all)
python3 -c "import time; time.sleep(min(60, max(30, $publish_seconds)))"
quiet_bytes=$(($(bytes_in_all) - bytes_before))
quiet_seconds=$(python3 -c "print($(now) - $quiet_start)")

# The encoded size of each clip: its record's bytes in an export file.
cm 0 export -o "$work/all.export" 2>/dev/null
python3 - "$work/all.export" >"$work/sizes" <<'PY'
import sys
data, pos = open(sys.argv[1], "rb").read(), 16
while pos < len(data):
    length = int.from_bytes(data[pos:pos + 4], "big")
    print(length)
    pos += 4 + length
PY

# --- descriptors, threads and memory ---------------------------------------
for pid in "${pids[@]}"; do
	echo "$(ls /proc/"$pid"/fd | wc -l)" \
		"$(awk '/^Threads/ { print $2 }' /proc/"$pid"/status)" \
		"$(awk '/^VmRSS/ { print $2 }' /proc/"$pid"/status)" \
		"$(awk '/^VmHWM/ { print $2 }' /proc/"$pid"/status)" \
		"$(awk '/^RssAnon/ { print $2 }' /proc/"$pid"/status)"
done >"$work/procs"

python3 - "$work/latency" "$work/sizes" "$work/procs" "$nodes" "$clips" \
	"$publish_bytes" "$publish_seconds" "$quiet_bytes" "$quiet_seconds" <<'PY'
import math, statistics, sys
latency = sorted(int(l) for l in open(sys.argv[1]))
sizes = [int(l) for l in open(sys.argv[2])]
procs = [list(map(int, l.split())) for l in open(sys.argv[3])]
nodes, clips = int(sys.argv[4]), int(sys.argv[5])
pub_bytes, pub_s = int(sys.argv[6]), float(sys.argv[7])
quiet_bytes, quiet_s = int(sys.argv[8]), float(sys.argv[9])
p99 = latency[math.ceil(0.99 * len(latency)) - 1]
size = statistics.mean(sizes)
receivers = clips * (nodes - 1)
gross = pub_bytes / receivers / size
net = (pub_bytes - quiet_bytes * pub_s / quiet_s) / receivers / size
fds = [p[0] for p in procs]
threads = [p[1] for p in procs]
hwm = [p[3] / 1024 for p in procs]
anon = [p[4] / 1024 for p in procs]
print()
print("| benchmark | figure | limit | ratio |")
print("|---|---|---|---|")
print("| publish to all %d nodes, %d clips, p99 | %d ms | 1000 ms (aim) | %.2f |"
      % (nodes, clips, p99, p99 / 1000))
print("| (same), median | %d ms | 1000 ms (aim) | %.2f |"
      % (statistics.median(latency), statistics.median(latency) / 1000))
print("| bytes received per node and clip, all traffic | %.0f B | encoded clip %.0f B | %.2f |"
      % (pub_bytes / receivers, size, gross))
print("| (same), less the traffic without clips | %.0f B | encoded clip %.0f B | %.2f |"
      % (net * size, size, net))
print()
print("latency ms: min %d, median %d, p99 %d, max %d"
      % (latency[0], statistics.median(latency), p99, latency[-1]))
print("publishing took %.1f s; without clips all nodes together receive "
      "%.0f B/s (%.0f s measured)" % (pub_s, quiet_bytes / quiet_s, quiet_s))
print("per node: %d..%d descriptors, %d..%d threads, peak RSS %.0f..%.0f MiB "
      "(anonymous %.0f..%.0f MiB); all %d nodes: %d descriptors, %.0f MiB peak RSS"
      % (min(fds), max(fds), min(threads), max(threads), min(hwm), max(hwm),
         min(anon), max(anon), len(procs), sum(fds), sum(hwm)))
PY
printf 'load average %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
