#!/bin/bash
# A clip that declares a wrong size for someone else's media neither
# blocks that media nor gets it past the size limit. Real processes on
# 127.0.0.1:
#  1. Creator A publishes a 2 MiB clip and also stores a newer clip,
#     signed by another key, that names the same media with a size of
#     1 byte.
#  2. Mirror M, which has the forged clip before it starts, so that its
#     fetch starts with the forged size, fetches the media: the size
#     that the media root commits to wins over the forged one.
#  3. Mirror L, with --media-max 1M, fetches nothing: the forged 1 byte
#     does not get the 2 MiB media past its limit.
source "$(dirname "$0")/lib.sh"

new_home A
new_home M
new_home L
cm A key new alice >/dev/null

head -c 12 "$SAMPLES/review-blender.mp4" >"$WORK/real.mp4"
head -c $((2 * 1024 * 1024)) /dev/urandom >>"$WORK/real.mp4"
real=$(cm A publish "$WORK/real.mp4" --as alice \
	--product gtin:2000000004044 --title "Real size" --rating 4)
root=$(cm A show "$real" --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["media"][0]["hash"])')
forged=$(python3 "$(dirname "$0")/forge_clip.py" "$root" 1 video/mp4 \
	"$WORK/forged.export") || fail "forging a clip failed"
cm A import "$WORK/forged.export" >/dev/null ||
	fail "A did not import the forged clip"
cm A show "$forged" >/dev/null || fail "A does not store the forged clip"
pass "A stores clip ${forged:0:8}, which declares its media as 1 byte"

cm M import "$WORK/forged.export" >/dev/null
cm L import "$WORK/forged.export" >/dev/null
start A node
start M mirror --peer "$(addr_of A)"
wait_for 60 "M to fetch the media despite the forged size" \
	has_media_of M "$real"
grep -q "media=${root:0:8} is $((2 * 1024 * 1024 + 12)) bytes, not the 1 that a clip declares" \
	"$WORK/M.log" || fail "M did not log the size that differs"
cmp -s <(cm M media get "$real" -o - 2>/dev/null) "$WORK/real.mp4" ||
	fail "M's copy of the media differs from the published file"
pass "M fetched the media with the size its root commits to"

start L mirror --peer "$(addr_of A)" --media-max 1M
wait_for 60 "L to give up on the media over its limit" grep -q \
	"media=${root:0:8} not fetched: it is $((2 * 1024 * 1024 + 12)) bytes, over the limit of 1048576" \
	"$WORK/L.log"
! has_media_of L "$forged" || fail "L fetched media over its size limit"
[ "$(cm L status --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["media"]["bytes"])')" -eq 0 ] ||
	fail "L stored chunks of media over its size limit"
pass "the forged size did not get the media past L's limit"

stop L
stop M
stop A
finish
