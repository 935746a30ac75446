#!/bin/bash
# The media scan of a mirror whose clips' media no peer has, on a real
# node on 127.0.0.1 with two fetch slots:
#  1. The scan walks more records than one part and queues the media of
#     the two newest clips.
#  2. While both slots have fetches that cannot progress, no further scan
#     walks the store, although each full scan requests another one
#     every sync_interval (1 s here).
source "$(dirname "$0")/lib.sh"
: "${GEN:?set GEN to the bench_gen binary}"

records=1500
"$GEN" "$records" "$WORK/clips.export" >/dev/null
new_home M
printf '[limits]\nmedia_fetches = 2\nsync_interval = 1s\n' >>"$WORK/M/config"
out=$(cm M import "$WORK/clips.export")
[ "$out" = "accepted $records, duplicate 0, rejected 0" ] ||
	fail "import: $out"

scans_done() {
	node_status_field M media_scans.done
}
scans_at_least() {
	[ "$(scans_done)" -ge "$1" ]
}

start M mirror
wait_for 60 "the first media scan" scans_at_least 1
visited=$(node_status_field M media_scans.records)
[ "$visited" -ge "$records" ] ||
	fail "the scan visited $visited records of $records"

# The media of the two newest clips, and of the two fetches, sorted.
newest=$(cm M feed --json --limit 2 | python3 -c '
import json, sys
print(" ".join(sorted(json.loads(line)["media"][0]["hash"] for line in sys.stdin)))')
fetching=$(cm M status --json | python3 -c '
import json, sys
print(" ".join(sorted(t["root"] for t in json.load(sys.stdin)["node"]["transfers"])))')
[ -n "$newest" ] && [ "$fetching" = "$newest" ] ||
	fail "fetching '$fetching', expected the newest clips' media '$newest'"
pass "a scan in parts queues the newest clips' media first"

# Four intervals with both slots busy: the scan count must stay.
first=$(scans_done)
deadline=$((SECONDS + 4))
while [ "$SECONDS" -lt "$deadline" ]; do
	now=$(scans_done)
	[ "$now" -eq "$first" ] ||
		fail "the store was scanned again ($now scans) with no free slot"
	sleep 0.5
done
[ "$(node_status_field M media_fetching)" -eq 2 ] ||
	fail "the two fetches ended: $(node_status_field M media_fetching)"
pass "no scan walks the store while every fetch slot is busy"

stop M
finish
