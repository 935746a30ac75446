#!/bin/bash
# A creator node whose store is lost gets its data back from its peers.
# Creator W publishes the four sample clips, a fifth clip that it then
# retracts, and a profile; mirror M (which dials W) and creator F (which
# follows W through M) take them. W stops, its store is deleted while
# node.key, keys/ and config stay, `init` makes an empty store, and W
# starts again. W must get back every record of its identity (the same
# set as before the wipe, and as M holds for that author), reject the
# retracted clip when it is offered again, and fetch the media of its own clips, byte for
# byte, with no peer named on its command line.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sync_lib.sh"

new_home W
new_home M
new_home F
wkey=$(cm W key new wendy)
cm F follow "$wkey"
start W node
start M mirror --peer "$(addr_of W)"
start F node --peer "$(addr_of M)"

publish_samples W wendy >"$WORK/ids"
[ "$(wc -l <"$WORK/ids")" -eq 4 ] || fail "expected 4 published ids"
withdrawn=$(cm W publish "$SAMPLES/photo-backpack.jpg" --as wendy \
	--product gtin:2000000004044 --title "Backpack, withdrawn")
# The withdrawn clip's own bytes, for offering it to W again later.
cm W export --author "$wkey" -o "$WORK/before-retraction.export" 2>/dev/null
cm W retract "$withdrawn" --as wendy >/dev/null
cm W profile set --as wendy --name "Wendy" \
	--bio "Reviews kitchen things" >/dev/null
wendy_set() {
	set_fingerprint "$1" --author "$wkey"
}
# 4 clips, the retraction and the profile.
own=$(wendy_set W)
[ "${own%% *}" -eq 6 ] || fail "W exports '$own' of its own, expected 6 records"
same_set_as_w() {
	[ "$(wendy_set "$1")" = "$own" ]
}
wait_for 60 "M to hold W's records" same_set_as_w M
wait_for 60 "F to hold W's records" same_set_as_w F
while read -r file id; do
	wait_for 60 "the media of $file on M" has_media_of M "$id"
done <"$WORK/ids"
pass "M and F hold W's 6 records and M its media"

stop W
rm -rf "$WORK/W/store"
cm W init >/dev/null
[ -f "$WORK/W/node.key" ] || fail "init replaced W's node.key"
[ "$(cm W key list | wc -l)" -eq 1 ] || fail "W lost its identity"
holds_clips W 0 || fail "W's store is not empty after the wipe"
start W node
pass "W restarted with an empty store and the same keys"

wait_for 60 "W to get its records back" same_set_as_w W
pass "W holds its 6 records again: $own"

status=0
out=$(cm W import "$WORK/before-retraction.export" 2>"$WORK/import.err") ||
	status=$?
[ "$status" -eq 1 ] && [ "$out" = "accepted 0, duplicate 4, rejected 1" ] ||
	fail "import of the clips before the retraction into W exited" \
		"$status: $out"
grep -q "retracted" "$WORK/import.err" ||
	fail "W rejected the withdrawn clip for another reason:" \
		"$(cat "$WORK/import.err")"
pass "W rejects the withdrawn clip as retracted"

while read -r file id; do
	wait_for 60 "the media of $file back on W" has_media_of W "$id"
	cm W media get "$id" -o "$WORK/back-$file"
	cmp "$SAMPLES/$file" "$WORK/back-$file" ||
		fail "media of $file on W differs from the original"
done <"$WORK/ids"
pass "W fetched the media of its 4 clips back, byte-identical"

for name in F M W; do
	stop "$name"
done
pass "every node stopped cleanly on SIGTERM"
finish
