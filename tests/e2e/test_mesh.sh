#!/bin/bash
# Gossip on a full mesh of four mirrors: clips imported into one reach
# every other, and each node receives each record body about once. Nodes
# announce ids and send bodies only on request, so duplicate bodies stay
# rare; pushing bodies to every peer would give each node three copies.
source "$(dirname "$0")/lib.sh"
: "${GEN:?set GEN to the bench_gen binary}"

nodes=4
clips=500
"$GEN" "$clips" "$WORK/clips.export" >/dev/null
for i in $(seq 0 $((nodes - 1))); do
	new_home "n$i"
done
for i in $(seq 0 $((nodes - 1))); do
	args=()
	for j in $(seq 0 $((i - 1))); do
		args+=(--peer "$(addr_of "n$j")")
	done
	start "n$i" mirror "${args[@]}"
done

links_up() {
	cm "$1" status --json | python3 -c '
import json, sys
peers = json.load(sys.stdin)["node"]["peers"]
up = {p["peer"] for p in peers if p["connected"] and p.get("role")}
sys.exit(0 if len(up) >= int(sys.argv[1]) else 1)' "$2"
}
for i in $(seq 0 $((nodes - 1))); do
	wait_for 30 "n$i to reach its $((nodes - 1)) peers" links_up "n$i" $((nodes - 1))
done

clips_of() {
	cm "$1" status --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["records"]["clips"])'
}
[ "$(cm n0 import "$WORK/clips.export")" = "accepted $clips, duplicate 0, rejected 0" ] ||
	fail "import into n0"
has_all() {
	[ "$(clips_of "$1")" -eq "$clips" ]
}
for i in $(seq 1 $((nodes - 1))); do
	wait_for 60 "n$i to hold $clips clips" has_all "n$i"
done
pass "$clips clips reached all $nodes nodes"

totals=$(for i in $(seq 0 $((nodes - 1))); do cm "n$i" status --json; done |
	python3 -c '
import json, sys
dec, text, pos = json.JSONDecoder(), sys.stdin.read(), 0
received = duplicates = announced = 0
while True:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos >= len(text):
        break
    obj, pos = dec.raw_decode(text, pos)
    for p in obj["node"]["peers"]:
        received += p["records_in"] + p["duplicates_in"]
        duplicates += p["duplicates_in"]
        announced += p["announced_in"]
print(received, duplicates, announced)')
read -r received duplicates announced <<<"$totals"
need=$(((nodes - 1) * clips))
echo "bodies received $received for $need needed, $duplicates duplicates, $announced ids announced"
[ "$announced" -ge "$need" ] || fail "only $announced ids announced for $need needed"
[ "$duplicates" -le $((need / 10)) ] ||
	fail "$duplicates duplicate bodies for $need needed (over 10%)"
pass "duplicate bodies at most 10% of those needed ($duplicates of $need)"
finish
