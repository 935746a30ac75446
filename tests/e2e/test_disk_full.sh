#!/bin/bash
# A full store: first a full LMDB map, then a full disk.
#
# Map: a mirror whose store_map_size setting is too small for what it
# syncs logs that the store is full, keeps serving reads, and takes every
# record once restarted with a larger map.
#
# Disk: a mirror whose home sits on a small tmpfs syncs from a node with
# more records than fit, and from a creator whose clip has more media
# than fits. Chunk requests pause while writes fail. When the disk
# fills, the failing write transaction aborts, the mirror logs one
# clear line, keeps running and serving reads, and counts what it
# dropped. Once the file system grows, the mirror takes records again
# and reconciliation brings it every record; the store check passes.
# Needs root to mount the tmpfs; skipped (exit 0 with a message) without.
source "$(dirname "$0")/lib.sh"
: "${GEN:?set GEN to the bench_gen binary}"

if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: mounting a tmpfs needs root"
	exit 0
fi

records=20000
small="$WORK/small"
mkdir "$small"
mount -t tmpfs -o size=12m clipmesh-test "$small"
unmount_small() {
	umount "$small" 2>/dev/null || umount -l "$small" 2>/dev/null || true
}
trap 'unmount_small; cleanup' EXIT

"$GEN" "$records" "$WORK/clips.export" >/dev/null
new_home A
[ "$(cm A import "$WORK/clips.export")" = "accepted $records, duplicate 0, rejected 0" ] ||
	fail "import into the source node"

clips_of() {
	cm "$1" status --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["records"]["clips"])'
}

# --- Map full --------------------------------------------------------
new_home P
start A node
start P mirror --set store_map_size=16M --peer "$(addr_of A)"
map_full_logged() {
	grep -q "store is full or failing.*MDB_MAP_FULL" "$WORK/P.log"
}
wait_for 120 "the mirror with a 16 MiB map to report a full map" map_full_logged
held=$(clips_of P)
[ "$held" -gt 0 ] && [ "$held" -lt "$records" ] ||
	fail "mirror holds $held clips at a full map, expected between 0 and $records"
cm P feed --json --limit 5 >"$WORK/feed.json"
[ "$(wc -l <"$WORK/feed.json")" -eq 5 ] || fail "no feed from the mirror at a full map"
pass "full map reported while $held clips were stored; reads go on"
stop P
start P mirror --set store_map_size=256M --peer "$(addr_of A)"
has_all_p() {
	[ "$(clips_of P)" -eq "$records" ]
}
wait_for 120 "the mirror with a larger map to get all $records clips" has_all_p
stop P
stop A
cm P store check >"$WORK/check.out" || fail "store check after the full map failed: $(cat "$WORK/check.out")"
pass "restarted with a larger map, the mirror gets every clip"

# --- Disk full -------------------------------------------------------
# The mirror's home is a link into the tmpfs so that lib.sh finds it.
mkdir "$small/M"
ln -s "$small/M" "$WORK/M"
new_home M

store_full_logged() {
	grep -q "store is full or failing" "$WORK/M.log"
}

# C's clip has 20 MiB of media, more than the disk takes.
new_home C
cm C key new carol >/dev/null
head -c 12 "$SAMPLES/review-blender.mp4" >"$WORK/big.mp4"
head -c $((20 * 1024 * 1024)) /dev/urandom >>"$WORK/big.mp4"
big=$(cm C publish "$WORK/big.mp4" --as carol --product gtin:2000000001012 \
	--title "Too big for the disk")
big_root=$(cm C show "$big" --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["media"][0]["hash"][:8])')

media_paused() {
	grep -q "storing fetched media failed; media fetches pause" "$WORK/M.log"
}

start A node
start C node
start M mirror --peer "$(addr_of A)" --peer "$(addr_of C)"
wait_for 120 "the mirror to report a full store" store_full_logged
wait_for 120 "the mirror to pause media fetches" media_paused
held=$(clips_of M)
[ "$held" -gt 0 ] && [ "$held" -lt "$records" ] ||
	fail "mirror holds $held clips when full, expected between 0 and $records"
pass "full disk reported while $held of $records clips were stored"

node_running M || fail "mirror stopped when its disk filled"
cm M feed --json --limit 5 >"$WORK/feed.json"
[ "$(wc -l <"$WORK/feed.json")" -eq 5 ] ||
	fail "mirror does not serve its feed when full"
dropped=$(cm M status --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["node"]["rejected"].get("store_full", 0))')
[ "$dropped" -gt 0 ] || fail "records dropped by the full store are not counted"
pass "mirror keeps running, serves reads and counts $dropped dropped records"

[ "$(grep -c "store is full or failing" "$WORK/M.log")" -eq 1 ] ||
	fail "full store logged more than once: $(grep -c "store is full or failing" "$WORK/M.log") lines"
pass "one log line for the full store"
# A write that gets through between failures starts a new pause line.
paused=$(grep -c "media fetches pause" "$WORK/M.log")
[ "$paused" -le 3 ] || fail "media pause logged $paused times, expected 1 to 3"
pass "$paused log line(s) for media that the full store did not take"

mount -o remount,size=256m "$small"
# A's clips and C's one.
has_all() {
	[ "$(clips_of M)" -eq $((records + 1)) ]
}
wait_for 180 "the mirror to get all $((records + 1)) clips once space returned" has_all
grep -q "store accepts records again" "$WORK/M.log" ||
	fail "no line saying the store accepts records again"
pass "mirror recovers once space returns and gets every clip"
wait_for 120 "the mirror to store the media of ${big:0:8}" has_media_of M "$big"
grep -q "media chunks are stored again" "$WORK/M.log" ||
	fail "no line saying media chunks are stored again"
# The media of A's generated clips exists nowhere, so only C's counts.
! grep -q "media=$big_root not fetched" "$WORK/M.log" ||
	fail "M gave up on the media of ${big:0:8}: $(grep "media=$big_root not fetched" "$WORK/M.log" | head -1)"
pass "media fetches resume once space returns, no peer was blamed"

stop M
stop C
stop A
cm M store check >"$WORK/check.out" || fail "store check failed: $(cat "$WORK/check.out")"
pass "store check passes after the full disk"
finish
