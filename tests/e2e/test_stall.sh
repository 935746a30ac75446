#!/bin/bash
# A peer that stops reading must not slow down the others. Creator A
# publishes clips that mirror B (which dials A) takes. The delivery time
# of each runs from the clip's creation time, which `publish` sets when it
# signs, to the time of B's log line that it stored the clip, so process
# start-up and polling do not count. Then a stalled client
# (hostile_peer stall) connects to A and another to B: each says HELLO,
# requests every record of A and their media and every id again and
# again, and never reads. The median delivery time with the stalled
# clients must stay within twice the median without them.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sync_lib.sh"
: "${HOSTILE:?set HOSTILE to the hostile_peer test client}"
: "${GEN:?set GEN to the bench_gen binary}"

runs=12
records=2000
# Log times have millisecond resolution and the two cores are shared with
# other work, so a difference of this many milliseconds counts as noise.
noise_ms=20

new_home A
new_home B
cm A key new alice >/dev/null
"$GEN" "$records" "$WORK/many.export" >/dev/null
[ "$(cm A import "$WORK/many.export")" = \
	"accepted $records, duplicate 0, rejected 0" ] || fail "import into A"
start A node
start B mirror --peer "$(addr_of A)"
wait_for 30 "B to reach A" links_up B 1
wait_for 60 "B to hold A's $records clips" holds_clips B "$records"

# Prints the milliseconds of a log line's UTC time stamp.
log_ms() {
	python3 -c '
import datetime, sys
stamp = sys.argv[1].split()[0].rstrip("Z")
t = datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.timezone.utc)
print(int(t.timestamp() * 1000))' "$1"
}

# Publishes RUNS clips on A, one after another, and appends each one's
# delivery time in milliseconds to FILE.
measure() {
	local file=$1 i id b_at b_line created clips
	clips=$(clips_of B)
	for i in $(seq 1 "$runs"); do
		b_at=$(wc -l <"$WORK/B.log")
		id=$(cm A publish "$SAMPLES/photo-backpack.jpg" --as alice \
			--product gtin:2000000004044 --title "Delivery $file $i")
		clips=$((clips + 1))
		wait_for 30 "clip $i ($file) on B" holds_clips B "$clips"
		created=$(cm A show "$id" --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["created_ms"])')
		b_line=$(tail -n +$((b_at + 1)) "$WORK/B.log" |
			grep -m1 "stored 1 records from peer=") ||
			fail "B did not log storing clip $id"
		echo $(($(log_ms "$b_line") - created)) >>"$file"
	done
}

median() {
	sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

measure "$WORK/quiet.ms"
quiet=$(median "$WORK/quiet.ms")
pass "median delivery time without stalled peers: $quiet ms"

cm A export -o "$WORK/a.export" 2>/dev/null
for target in A B; do
	"$HOSTILE" --records "$WORK/a.export" stall "$(addr_of "$target")" \
		>"$WORK/stall-$target.log" 2>&1 &
	NODE_PID[stall-$target]=$!
done

# Succeeds once the stalled client is ready and more than 1 MiB that the
# node sent it is unread, so that the node's queue towards it is full.
backed_up() {
	local target=$1 peer
	grep -qx ready "$WORK/stall-$target.log" || return 1
	peer=$(awk '$1 == "peer" { print substr($2, 1, 8); exit }' \
		"$WORK/stall-$target.log")
	cm "$target" status --json | python3 -c '
import json, sys
peers = json.load(sys.stdin)["node"]["peers"]
sys.exit(0 if any(p["peer"] == sys.argv[1] and p["queued_bytes"] > 1 << 20
                  for p in peers) else 1)' "$peer"
}
for target in A B; do
	wait_for 60 "A's and B's queues towards the stalled $target client" \
		backed_up "$target"
done
pass "a stalled client holds more than 1 MiB of A's and B's output"

measure "$WORK/stalled.ms"
stalled=$(median "$WORK/stalled.ms")
echo "delivery times without stalled peers (ms): $(sort -n "$WORK/quiet.ms" | tr '\n' ' ')"
echo "delivery times with stalled peers (ms): $(sort -n "$WORK/stalled.ms" | tr '\n' ' ')"
limit=$((2 * quiet > quiet + noise_ms ? 2 * quiet : quiet + noise_ms))
[ "$stalled" -le "$limit" ] ||
	fail "median delivery time with stalled peers is $stalled ms," \
		"over $limit ms (twice $quiet ms, at least $noise_ms ms more)"
pass "median delivery time with stalled peers: $stalled ms (limit $limit)"

for target in A B; do
	kill -0 "${NODE_PID[stall-$target]}" 2>/dev/null ||
		fail "the stalled client of $target ended early:" \
			"$(cat "$WORK/stall-$target.log")"
done

# A stops while the stalled client still holds its output: the GOODBYE
# to that client cannot leave, and must not hold up the stop. B, which
# reads, drops its link to A on A's GOODBYE.
key_a=$(addr_of A | sed 's|^clipmesh://\(........\).*|\1|')
pid_a=${NODE_PID[A]}
kill -TERM "$pid_a"
wait_for 60 "A to exit while the stalled client holds its output" \
	exited "$pid_a"
status=0
wait "$pid_a" || status=$?
unset "NODE_PID[A]"
[ "$status" -eq 0 ] || fail "A exited with status $status"
goodbye_line=$(grep -m1 'sent GOODBYE' "$WORK/A.log") ||
	fail "A did not log its GOODBYEs"
stopped_line=$(grep -m1 'node: stopped' "$WORK/A.log") ||
	fail "A did not log its stop"
echo "A: ${goodbye_line#* node: }; stopped" \
	"$(($(log_ms "$stopped_line") - $(log_ms "$goodbye_line"))) ms later"
pass "A stopped while a stalled client held its output"
b_dropped_a() {
	grep -q "peer disconnected peer=$key_a .*reason=goodbye" "$WORK/B.log"
}
wait_for 30 "B to drop A on its GOODBYE" b_dropped_a
pass "B dropped its link to A on A's GOODBYE"

for target in A B; do
	stop "stall-$target"
done
stop B
pass "every node stopped cleanly on SIGTERM"
finish
