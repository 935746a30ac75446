#!/bin/bash
# Crashes: a mirror takes a steady stream of records by gossip and is
# killed with SIGKILL 50 times at random moments. After each kill the
# store reopens, every clip the mirror had reported before the kill is
# still there, and `store check` verifies every record and index entry.
# At the end the mirror has every record the source published.
source "$(dirname "$0")/lib.sh"
: "${GEN:?set GEN to the bench_gen binary}"

kills=${KILLS:-50}
parts=40
per_part=250

# One export file of parts * per_part records, cut into parts.
"$GEN" $((parts * per_part)) "$WORK/all.export" >/dev/null
split_export "$WORK/all.export" "$WORK/part" "$per_part"

clips_of() {
	cm "$1" status --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["records"]["clips"])'
}

new_home A
new_home M
start A node
peer=$(addr_of A)

# The feeder imports one part into the source every 2 s; the source
# pushes each to the mirror whenever the mirror is up.
(
	for file in "$WORK"/part.*; do
		cm A import "$file" >/dev/null
		sleep 2
	done
) &
feeder=$!

previous=0
growing=0
for round in $(seq 1 "$kills"); do
	start M mirror --peer "$peer"
	sleep "0.$((RANDOM % 8 + 2))"
	before=$(clips_of M)
	kill -KILL "${NODE_PID[M]}"
	wait "${NODE_PID[M]}" 2>/dev/null || true
	unset "NODE_PID[M]"
	after=$(clips_of M) || fail "round $round: store does not reopen"
	[ "$after" -ge "$before" ] ||
		fail "round $round: $before clips before the kill, $after after"
	[ "$after" -ge "$previous" ] ||
		fail "round $round: clip count fell from $previous to $after"
	[ "$after" -gt "$previous" ] && growing=$((growing + 1))
	previous=$after
	cm M store check >"$WORK/check.out" ||
		fail "round $round: store check failed: $(cat "$WORK/check.out")"
done
pass "$kills kills ($growing while the store grew): the store reopened each time and lost no clip"

wait "$feeder"
total=$((parts * per_part))
start M mirror --peer "$peer"
has_all() {
	[ "$(clips_of M)" -eq "$total" ]
}
wait_for 120 "the mirror to hold all $total clips" has_all
stop M
stop A
cm M store check >"$WORK/check.out" ||
	fail "final store check failed: $(cat "$WORK/check.out")"
pass "after the kills the mirror holds all $total clips and passes the check"
finish
