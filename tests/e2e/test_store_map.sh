#!/bin/bash
# store_map_size set wrong for the store. Smaller than the data: LMDB
# maps the pages in use, so a write that needs new pages fails. The error
# and one warning at open name the setting to raise, and a write that
# fits in the free pages succeeds. Larger than the process's address
# space: the store does not open, and the error names the setting and
# the limit.
source "$(dirname "$0")/lib.sh"

new_home A
cm A key new alice >/dev/null
# 20 MB of media: more than the smallest map of 16M.
head -c 20000000 /dev/urandom >"$WORK/body"
printf '\xff\xd8\xff\xe0' | cat - "$WORK/body" >"$WORK/big.jpg"
cm A publish "$WORK/big.jpg" --as alice --product gtin:2000000001012 \
	--title "Big" >/dev/null || fail "publishing 20 MB failed"
# A retracted clip of 3 MB leaves its pages free for later writes.
head -c 3000000 /dev/urandom >"$WORK/body"
printf '\xff\xd8\xff\xe0' | cat - "$WORK/body" >"$WORK/gone.jpg"
gone=$(cm A publish "$WORK/gone.jpg" --as alice \
	--product gtin:2000000001012 --title "Gone") ||
	fail "publishing 3 MB failed"
cm A retract "$gone" --as alice >/dev/null || fail "retracting $gone failed"

printf '[limits]\nstore_map_size = 16M\n' >>"$WORK/A/config"
# 6 MB of media: more than the free pages.
head -c 6000000 /dev/urandom >"$WORK/body"
printf '\xff\xd8\xff\xe0' | cat - "$WORK/body" >"$WORK/more.jpg"
status=0
cm A publish "$WORK/more.jpg" --as alice \
	--product gtin:2000000004044 --title "More" >"$WORK/out" \
	2>"$WORK/err" || status=$?
[ "$status" -eq 1 ] || fail "publish into a full map exited $status"
grep -q "more than store_map_size" "$WORK/err" ||
	fail "no warning at open about the map: $(cat "$WORK/err")"
grep -q "MDB_MAP_FULL.*raise store_map_size" "$WORK/err" ||
	fail "map-full error names no setting: $(cat "$WORK/err")"
pass "a map smaller than the store is named with the setting to raise"

grep -qE "so LMDB maps the [0-9]+ bytes in use: writes that do not fit in the store's free pages fail with MDB_MAP_FULL; raise store_map_size in HOME/config above [0-9]+ bytes" \
	"$WORK/err" || fail "the warning misstates what fails: $(cat "$WORK/err")"
[ "$(grep -c "more than store_map_size" "$WORK/err")" -eq 1 ] ||
	fail "the warning is printed more than once: $(cat "$WORK/err")"
pass "one warning says which writes fail"

# A profile is one small record, which fits in the pages that the
# retraction freed.
cm A profile set --as alice --name Alice >"$WORK/out" 2>"$WORK/err" ||
	fail "a small write into the store failed: $(cat "$WORK/err")"
[ "$(grep -c "more than store_map_size" "$WORK/err")" -eq 1 ] ||
	fail "no single warning for the small write: $(cat "$WORK/err")"
pass "a write that fits in the free pages succeeds"

# An ASan build reserves terabytes of shadow memory at start and cannot
# run under an address-space limit; then this part is skipped.
limit_kb=$((40 * 1024 * 1024))
if bash -c 'ulimit -v "$1" && "$2" --version; exit $?' _ \
	"$limit_kb" "$CLIPMESH" >/dev/null 2>&1; then
	sed -i 's/^store_map_size = .*/store_map_size = 8T/' "$WORK/A/config"
	status=0
	(ulimit -v "$limit_kb" && cm A status) >"$WORK/out" 2>"$WORK/err" ||
		status=$?
	[ "$status" -ne 0 ] || fail "an 8T map opened under a 40 GiB limit"
	grep -q "lower store_map_size in HOME/config or raise the limit" \
		"$WORK/err" || fail "no hint for the map size: $(cat "$WORK/err")"
	pass "a map over the address-space limit is named with the fix"
else
	echo "skip: this build does not start under an address-space limit"
fi
finish
