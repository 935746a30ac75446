#!/bin/bash
# Hostile peers against real processes on 127.0.0.1: mirror M, creators H
# and A and a second mirror N, which connect to M one after the other. The
# hostile_peer client (HOSTILE) runs one scenario at a time against M.
# After each one M must still run, must have counted exactly the
# rejections that the client announced, under their reasons, and must
# store the records that the client lists as stored and none that it lists
# as absent. At the end N stores what M stored and nothing that M rejected,
# M still delivers an honest clip, and `clipmesh store check` passes on M.
# The recon scenario runs before those last checks, so they also show that
# broken reconciliation messages harmed nothing else.
source "$(dirname "$0")/lib.sh"

: "${HOSTILE:?set HOSTILE to the hostile_peer test client}"

# Succeeds while M's process and its control socket are alive.
m_alive() {
	kill -0 "${NODE_PID[M]}" 2>/dev/null && node_running M
}

# Checks M's rejection counters against the "expect REASON MIN MAX" lines
# of a client output. Each reason grew by its MIN..MAX, where the "*" lines
# (reason left open) may add to any reason, and all reasons together grew
# by the sum of all ranges. Prints what differs.
# Usage: check_rejections STATUS_BEFORE CLIENT_OUTPUT
check_rejections() {
	cm M status --json >"$WORK/after.json"
	python3 - "$1" "$WORK/after.json" "$2" <<'PY'
import json, sys

def rejected(path):
    node = json.load(open(path))["node"]
    return node["rejected"] if node else {}

before, after = rejected(sys.argv[1]), rejected(sys.argv[2])
low, high = {}, {}
for line in open(sys.argv[3]):
    words = line.split()
    if len(words) == 4 and words[0] == "expect":
        reason, minimum, maximum = words[1], int(words[2]), int(words[3])
        low[reason] = low.get(reason, 0) + minimum
        high[reason] = high.get(reason, 0) + maximum
delta = {}
for reason in set(before) | set(after):
    grown = after.get(reason, 0) - before.get(reason, 0)
    if grown:
        delta[reason] = grown
open_max = high.pop("*", 0)
low.pop("*", None)
errors = []
for reason in sorted(set(low) | set(delta)):
    got = delta.get(reason, 0)
    minimum, maximum = low.get(reason, 0), high.get(reason, 0) + open_max
    if not minimum <= got <= maximum:
        errors.append(f"{reason}: counted {got}, expected {minimum}..{maximum}")
total = sum(delta.values())
minimum, maximum = sum(low.values()), sum(high.values()) + open_max
if not minimum <= total <= maximum:
    errors.append(f"all reasons: counted {total} {delta}, expected "
                  f"{minimum}..{maximum}")
print("; ".join(errors))
sys.exit(1 if errors else 0)
PY
}

# Succeeds when home NAME stores record ID, verified and not retracted.
has_record() {
	cm "$1" show "$2" --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
sys.exit(0 if r.get("verified") and not r.get("retracted") else 1)'
}

# Succeeds when home NAME stores every record that a client output lists
# as stored.
has_stored_records() {
	local name=$1 kind id rest
	while read -r kind id rest; do
		[ "$kind" != stored ] || has_record "$name" "$id" || return 1
	done <"$2"
}

# Checks home NAME against the stored, absent and retracted lines of a
# client output. An absent clip may show as retracted, which keeps it out
# as well. Only M saw the retracted clips arrive, so only M can confirm
# their author's retraction; on other homes the retraction stays pending.
check_records() {
	local name=$1 kind id rest
	while read -r kind id rest; do
		case $kind in
		stored)
			has_record "$name" "$id" ||
				fail "$name lacks the verified record $id"
			;;
		absent)
			cm "$name" show "$id" --json >"$WORK/show.json" \
				2>/dev/null || continue
			grep -q '"retracted":true' "$WORK/show.json" ||
				fail "$name stores $id, which M had to reject"
			;;
		retracted)
			[ "$name" = M ] || continue
			cm "$name" show "$id" --json |
				grep -q '"retracted":true' ||
				fail "$name does not list clip $id as retracted"
			;;
		esac
	done <"$2"
}

# Runs one hostile_peer scenario against M and checks M's side.
# Usage: attack SCENARIO [OPTION...]
attack() {
	local scenario=$1 log=$WORK/hostile-$1.log status=0 problems
	shift
	cm M status --json >"$WORK/before.json"
	"$HOSTILE" "$@" "$scenario" "$maddr" >"$log" 2>&1 || status=$?
	[ "$status" -eq 0 ] || fail "hostile_peer $scenario exited $status:" \
		"$(grep hostile_peer: "$log")"
	m_alive || fail "M stopped during the $scenario scenario"
	problems=$(check_rejections "$WORK/before.json" "$log") ||
		fail "M's rejection counts after $scenario: $problems"
	check_records M "$log"
}

# Succeeds once the bad-media client printed "ready" or ended.
bad_peer_settled() {
	grep -qx ready "$bad_log" || ! kill -0 "${NODE_PID[X]}" 2>/dev/null
}

new_home M
new_home H
new_home A
new_home N
cm H key new hal >/dev/null
cm A key new alice >/dev/null

# M starts without peers: the others connect to it later.
start M mirror
maddr=$(addr_of M)

# bad-media: the client pushes H's clip to M while H is not connected yet,
# then serves a wrong manifest and a corrupted chunk. It runs first, while
# M has no links to peers that left, because M waits for responses from a
# peer that left until the link times out.
hclip=$(cm H publish "$SAMPLES/review-blender.mp4" --as hal \
	--product gtin:2000000001012 --title "Blender, served badly" --rating 3)
cm H export -o "$WORK/h.export" 2>/dev/null
bad_log=$WORK/hostile-bad-media.log
cm M status --json >"$WORK/before.json"
"$HOSTILE" --records "$WORK/h.export" --media "$SAMPLES/review-blender.mp4" \
	bad-media "$maddr" >"$bad_log" 2>&1 &
# Listed with the nodes, so that cleanup and stop() end it with SIGTERM.
NODE_PID[X]=$!
wait_for 90 "M to reject the bad manifest and chunk" bad_peer_settled
grep -qx ready "$bad_log" ||
	fail "hostile_peer bad-media: $(grep hostile_peer: "$bad_log")"
m_alive || fail "M stopped during the bad-media scenario"
problems=$(check_rejections "$WORK/before.json" "$bad_log") ||
	fail "M's rejection counts after bad-media: $problems"
cm M show "$hclip" --json >/dev/null ||
	fail "M lacks the clip that the bad peer pushed"
! has_media_of M "$hclip" || fail "M stores media that only the bad peer served"
cm M store check >"$WORK/check.out" ||
	fail "store check on M: $(cat "$WORK/check.out")"
pass "wrong manifest and corrupted chunk rejected, nothing of them stored"

start H node --peer "$maddr"
wait_for 60 "the blender media from H on M" has_media_of M "$hclip"
cm M media get "$hclip" -o "$WORK/blender.mp4"
cmp "$SAMPLES/review-blender.mp4" "$WORK/blender.mp4" ||
	fail "media on M differs from the blender sample"
stop X
pass "the media arrived from the honest peer H"

start A node --peer "$maddr"
start N mirror --peer "$maddr"
first=$(cm A publish "$SAMPLES/photo-backpack.jpg" --as alice \
	--product gtin:2000000004044 --title "Backpack, between the attacks" \
	--rating 5)
wait_for 30 "the first clip's media on M" has_media_of M "$first"
cm A export -o "$WORK/a.export" 2>/dev/null
pass "an honest clip and its media reached the mirror"

attack garbage
pass "garbage frames and truncated messages counted, M still serves"

attack hello-key
pass "HELLOs with a foreign key or another version rejected"

attack forged
pass "forged, non-canonical and future-dated records rejected by reason"

attack duplicate
dup_author=$(awk '$1 == "author" { print $2; exit }' \
	"$WORK/hostile-duplicate.log")
[ "$(cm M feed --author "$dup_author" --json | wc -l)" -eq 1 ] ||
	fail "a record pushed four times is not in M's feed exactly once"
pass "a record pushed four times is stored once"

attack retracted
pass "retracted clip stays out, forged retractions remove nothing"

attack not-found --records "$WORK/a.export"
pass "requests for missing things get NOT_FOUND, M keeps serving"

# From 127.0.0.2, so that the ban of the flooder's address does not hit
# the honest nodes on 127.0.0.1.
attack flood --source 127.0.0.2
flood_peer=$(awk '$1 == "peer" { print substr($2, 1, 8); exit }' \
	"$WORK/hostile-flood.log")
grep -q "banned peer=$flood_peer" "$WORK/M.log" ||
	fail "M did not log a ban of peer $flood_peer"
cm M status --json | python3 -c '
import json, sys
peers = json.load(sys.stdin)["node"]["peers"]
sys.exit(1 if any(p["peer"] == sys.argv[1] for p in peers) else 0)' \
	"$flood_peer" || fail "M still lists the banned peer $flood_peer"
pass "a flood of malformed messages gets its sender banned"

# A peer that reconnects with the same key while its forged records wait
# to be verified keeps the penalty for them and gets banned. From
# 127.0.0.4, so that the ban of its address hits no other client.
attack reconnect-forged --source 127.0.0.4
pass "forged records count against a key that reconnects before they are verified"

# A peer banned inside a burst: none of the valid records it sent after
# the ban point is stored, including those that waited to be verified.
# From 127.0.0.5, so that the ban of its address hits no other client.
attack ban-midstream --source 127.0.0.5
pass "records queued behind the ban point are dropped, not stored"

attack recon
n_peer=$(addr_of N | sed 's|clipmesh://\(........\).*|\1|')
cm M status --json | python3 -c '
import json, sys
peers = json.load(sys.stdin)["node"]["peers"]
sys.exit(0 if any(p["peer"] == sys.argv[1] and p["connected"]
                  for p in peers) else 1)' "$n_peer" ||
	fail "M lost its link to the honest mirror N during the recon attack"
pass "broken reconciliation messages rejected by reason, sender banned"

last=$(cm A publish "$SAMPLES/recensione-cuffie.mp4" --as alice \
	--product gtin:2000000002026 --title "Cuffie, dopo gli attacchi" \
	--rating 4 --lang it)
wait_for 30 "the last clip on M" has_record M "$last"
wait_for 60 "the last clip's media on M" has_media_of M "$last"
pass "M still delivers an honest clip after the attacks"

for log in "$WORK"/hostile-*.log; do
	wait_for 30 "N to store the records of $(basename "$log" .log)" \
		has_stored_records N "$log"
	check_records N "$log"
done
wait_for 30 "the last clip on N" has_record N "$last"
pass "N stores every record that M stored and none that M rejected"

cm M store check >"$WORK/check.out" ||
	fail "store check on M: $(cat "$WORK/check.out")"
pass "store check on M passes"

for home in N A H M; do
	stop "$home"
done
pass "every node stopped cleanly on SIGTERM"
finish
