#!/bin/bash
# A stuck media fetch that makes room for newer media comes back soon, so
# that a relay which gets the media a moment later serves it. Real
# processes on 127.0.0.1:
#  1. Mirror R has the record of clip 1 (20 MiB of media) but not its
#     media. Creator node X follows the author, has R as its only peer
#     and one fetch slot: its fetch of clip 1's media is stuck.
#  2. Creator A, which has the media, connects to R and brings clip 2.
#     R gossips clip 2 to X, whose fetch of clip 1 makes room for it,
#     and R fetches both media from A.
#  3. X gets clip 1's media from R after a pause of 10 s and the next
#     media scan, well before the backoff of a minute that a failed fetch
#     gets.
source "$(dirname "$0")/lib.sh"

new_home A
new_home R
new_home X
cm A key new alice >/dev/null
alice=$(cm A key list | awk '$1 == "alice" {print $2}')

# Writes to $1 the first 12 bytes of a sample MP4, then $2 random bytes.
random_mp4() {
	head -c 12 "$SAMPLES/review-blender.mp4" >"$1"
	head -c "$2" /dev/urandom >>"$1"
}

# Prints the first 8 hex digits of the media hash of A's clip $1.
short_media_of() {
	cm A show "$1" --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["media"][0]["hash"][:8])'
}

random_mp4 "$WORK/big.mp4" $((20 * 1024 * 1024))
clip1=$(cm A publish "$WORK/big.mp4" --as alice \
	--product gtin:2000000004044 --title "Relayed late" --rating 4)
media1=$(short_media_of "$clip1")
cm A export -o "$WORK/a.export" 2>/dev/null
cm R import "$WORK/a.export" >/dev/null
cm X follow "$alice" >/dev/null

start R mirror
# Media scans, which take paused media again, are at most one
# sync_interval apart.
start X node --peer "$(addr_of R)" --set media_fetches=1 \
	--set peers_learned=0 --set sync_interval=2s
wait_for 60 "X to learn that R lacks clip 1's media" \
	grep -q "lacks the manifest of media=$media1" "$WORK/X.log"
! has_media_of X "$clip1" || fail "X has clip 1's media before A started"
pass "X's fetch of clip 1's media is stuck: R lacks it"

random_mp4 "$WORK/small.mp4" 30000
clip2=$(cm A publish "$WORK/small.mp4" --as alice \
	--product gtin:2000000004044 --title "Newer" --rating 5)
start A node --peer "$(addr_of R)"
wait_for 60 "X's fetch of clip 1's media to make room" \
	grep -q "media=$media1 not fetched: stuck, making room" "$WORK/X.log"
made_room=$SECONDS
grep -q "media=$media1 not fetched: .*retrying in 10 s (failure 1)" \
	"$WORK/X.log" || fail "clip 1's media got another pause than 10 s"
wait_for 60 "clip 2's media on X" has_media_of X "$clip2"
pass "clip 2's media arrived while clip 1's waits 10 s"

# A minute of backoff would fail here: the deadline is 40 s after the
# fetch made room.
wait_for 40 "clip 1's media on X from R" has_media_of X "$clip1"
pass "X fetched clip 1's media from R $((SECONDS - made_room)) s after it made room"
cmp -s <(cm X media get "$clip1" -o - 2>/dev/null) "$WORK/big.mp4" ||
	fail "clip 1's media on X differs from the published file"
pass "clip 1's media on X is byte-identical"

stop A
stop X
stop R
finish
