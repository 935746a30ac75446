#!/bin/bash
# A peer that connects to a running node ends the fetch backoff of the
# media it may serve, on real processes on 127.0.0.1:
#  1. Mirror M has a clip's record but not its media, which M gave up
#     on for an hour (a backoff planted in its store, as fetches that
#     failed for a while leave it). Its only peer E has the records and
#     no media.
#  2. Creator A, which published the clip, connects to M after M ran
#     for longer than one sync_interval: M fetches the media at once.
#  3. M restarted with a backoff for another clip: A and E connect within
#     its first sync_interval and the backoff stays.
source "$(dirname "$0")/lib.sh"
: "${STORE_PLANT:?set STORE_PLANT to the store_plant binary}"

new_home A
new_home E
new_home M
printf '[limits]\nsync_interval = 1s\n' >>"$WORK/M/config"
cm A key new alice >/dev/null

# Prints the media hash of clip $1 of A.
media_of() {
	cm A show "$1" --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["media"][0]["hash"])'
}

# Gives the stopped M a fetch backoff of an hour for media hash $1. The
# value: when it ends (ms since 1970, big-endian) and the failures so
# far (big-endian).
plant_backoff() {
	local until_ms=$(($(date +%s%3N) + 3600 * 1000))
	"$STORE_PLANT" "$WORK/M/store" meta "$(printf mfail | od -An -tx1 |
		tr -d ' \n')$1" "$(printf '%016x%08x' "$until_ms" 3)" ||
		fail "planting a backoff for media $1 failed"
}

clip=$(cm A publish "$SAMPLES/photo-backpack.jpg" --as alice \
	--product gtin:2000000004044 --title "Fetched late" --rating 4)
cm A export -o "$WORK/a.export" 2>/dev/null
cm E import "$WORK/a.export" >/dev/null
cm M import "$WORK/a.export" >/dev/null
plant_backoff "$(media_of "$clip")"
pass "M has the record of clip ${clip:0:8}, no media and a backoff of 1 h"

start E node --media none
start M mirror --peer "$(addr_of E)"

# True when M's link to E has been up for 2 s, so that M has run for
# longer than its sync_interval.
e_up_2s() {
	cm M status --json | python3 -c '
import datetime, json, sys
peers = [p for p in json.load(sys.stdin)["node"]["peers"] if p["connected"]]
now = datetime.datetime.now(datetime.timezone.utc)
sys.exit(0 if any((now - datetime.datetime.fromisoformat(
    p["connected_since"].replace("Z", "+00:00"))).total_seconds() >= 2
    for p in peers) else 1)'
}
wait_for 60 "M connected to E for 2 s" e_up_2s
! has_media_of M "$clip" || fail "M has the media before A connected"

start A node --peer "$(addr_of M)"
wait_for 60 "M to fetch the media once A connected" has_media_of M "$clip"
pass "A connecting to the running M ended the backoff: the media arrived"

# A restarted M keeps the backoffs: A and E connect within its first
# sync_interval (30 s here), which the backoffs were set with.
stop M
# Other media than the first clip's: a small MP4 of random bytes.
head -c 12 "$SAMPLES/review-blender.mp4" >"$WORK/kept.mp4"
head -c 30000 /dev/urandom >>"$WORK/kept.mp4"
clip2=$(cm A publish "$WORK/kept.mp4" --as alice \
	--product gtin:2000000004044 --title "Kept back" --rating 3)
cm A export -o "$WORK/a2.export" 2>/dev/null
cm M import "$WORK/a2.export" >/dev/null
plant_backoff "$(media_of "$clip2")"
: >"$WORK/M.log"
start M mirror --peer "$(addr_of E)" --peer "$(addr_of A)" \
	--set sync_interval=30s
connected_to_both() {
	[ "$(cm M status --json | python3 -c '
import json, sys
print(sum(p["connected"] for p in json.load(sys.stdin)["node"]["peers"]))')" -ge 2 ]
}
wait_for 60 "the restarted M to connect to A and E" connected_to_both
! grep -q "takes media in a fetch backoff" "$WORK/M.log" ||
	fail "peers that connected right after the restart ended the backoffs"
! has_media_of M "$clip2" || fail "M fetched media in a backoff after its restart"
pass "peers that connect right after a restart leave the backoffs"
stop A
stop M
stop E
