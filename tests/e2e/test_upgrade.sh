#!/bin/bash
# Upgrades: a home written by clipmesh 0.1 (store format 1, kept as a
# fixture) opens with this release, is migrated once, passes the store
# check, keeps its clips, retraction and profile, and syncs to a new
# mirror. A store of a newer format is rejected by the unit tests
# (test_store: format_newer_refused), which can write its format key.
source "$(dirname "$0")/lib.sh"

fixture="$(dirname "$0")/../fixtures/home-format1.tar.gz"
mkdir "$WORK/old"
tar -C "$WORK/old" -xzf "$fixture"
chmod 700 "$WORK/old"
port=$(free_port)
sed -i "s|^listen = .*|listen = tcp://127.0.0.1:$port|" "$WORK/old/config"

# The clip that the fixture's author published and then retracted.
retracted=738eba10f5e76291421154d507bb130002a71999d0c7e182a8a6870f85d4fa25

cm old --log-level info store check >"$WORK/check.out" 2>"$WORK/check.err" ||
	fail "store check of the old home failed: $(cat "$WORK/check.out" "$WORK/check.err")"
grep -q "records 44, .* problems 0" "$WORK/check.out" ||
	fail "unexpected store check result: $(cat "$WORK/check.out")"
grep -q "from format 1 to 3: 44 records" "$WORK/check.err" ||
	fail "no migration line: $(cat "$WORK/check.err")"
pass "format 1 store migrated and checked"

cm old --log-level info status >/dev/null 2>"$WORK/again.err"
if grep -q "migrated" "$WORK/again.err"; then
	fail "migrated a second time"
fi
pass "migration runs once"

counts=$(cm old status --json | python3 -c '
import json, sys
r = json.load(sys.stdin)["records"]
print(r["clips"], r["retractions"], r["profiles"])')
[ "$counts" = "42 1 1" ] || fail "counts after upgrade: $counts"
has_clips old 42 || fail "feed holds $(feed_count old) clips, expected 42"
cm old feed --json --limit 1000 >"$WORK/feed.json"
grep -q '"author_name":"Alice Reviews"' "$WORK/feed.json" ||
	fail "profile name lost"
pass "clips, retraction and profile kept"

if cm old show "$retracted" >"$WORK/show.out" 2>&1 &&
	! grep -qi retracted "$WORK/show.out"; then
	fail "retracted clip shown as live: $(cat "$WORK/show.out")"
fi
pass "retracted clip stays retracted"

backpack=$(cm old feed --json --product gtin:2000000001012 |
	python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["id"])')
cm old media get "$backpack" -o "$WORK/backpack.jpg" >/dev/null
cmp -s "$WORK/backpack.jpg" "$SAMPLES/photo-backpack.jpg" ||
	fail "media of the old store differs from the sample"
pass "old media reads back byte for byte"

# The upgraded home serves a new mirror, which gets every clip.
new_home M
start old node
start M mirror --peer "$(addr_of old)"
wait_for 60 "mirror to get the 42 clips" has_clips M 42
wait_for 60 "mirror to get the photo" has_media_of M "$backpack"
pass "upgraded home syncs to a new mirror"

stop M
stop old
cm old store check >/dev/null || fail "store check after the sync failed"
pass "store check passes after use"
finish
