#!/bin/bash
# A damaged LMDB meta page in HOME/store/data.mdb. Every command that
# opens the store, 'store check' and 'doctor' included, exits 1 with a
# message that names the file, the damaged page and the restore fix. It
# does not end with SIGBUS inside mdb_env_open. One damaged page is
# rejected too, because LMDB could pick it.
#
# Layout (LMDB 0.9, x86-64): meta page 0 is at byte 0 and meta page 1 at
# the page size (4096 here). In each, the magic is at +16, the page size
# at +40 and the transaction id at +144. LMDB maps the file with the page size of
# the page with the higher transaction id.
source "$(dirname "$0")/lib.sh"

new_home A
cm A key new alice >/dev/null
publish_samples A alice >/dev/null
data="$WORK/A/store/data.mdb"

# Prints the number (0 or 1) of the meta page with the higher transaction
# id, the one LMDB maps the file with.
newest_meta() {
	python3 - "$data" <<'EOF'
import struct, sys
with open(sys.argv[1], "rb") as f:
    data = f.read(8192)
psize = struct.unpack_from("<I", data, 40)[0]
txn = [struct.unpack_from("<Q", data, page * psize + 144)[0] for page in (0, 1)]
print(0 if txn[0] > txn[1] else 1)
EOF
}

# Writes byte 0xdd at OFFSET of the data file.
damage() {
	printf '\xdd' | dd of="$data" bs=1 seek="$1" conv=notrunc 2>/dev/null
}

# Runs clipmesh "$@" on home A and sets OUT (stdout and stderr) and
# STATUS. Fails the test on a crash.
run_a() {
	STATUS=0
	OUT=$(cm A "$@" 2>&1) || STATUS=$?
	[ "$STATUS" -lt 128 ] || fail "'$*' ended with signal $((STATUS - 128)): $OUT"
	! grep -q "AddressSanitizer\|Bus error" <<<"$OUT" ||
		fail "'$*' crashed: $OUT"
}

# Fails unless OUT names the file, TEXT and the restore fix.
expect_damage() {
	local text=$1
	grep -qF "store file $data is damaged" <<<"$OUT" ||
		fail "no damaged-file message naming $data: $OUT"
	grep -qF -- "$text" <<<"$OUT" || fail "no '$text' in: $OUT"
	grep -qF "restore the store from a backup made with 'clipmesh store backup'" \
		<<<"$OUT" || fail "no restore fix in: $OUT"
}

# Each commit writes the older meta page, so one more commit (storing a
# peer address, with no node running) makes page 1 the newest.
if [ "$(newest_meta)" -eq 0 ]; then
	new_home B
	cm A peer add "$(cm B id)" >/dev/null 2>&1
fi
[ "$(newest_meta)" -eq 1 ] || fail "meta page 1 is not the newest"
cp "$data" "$WORK/intact.mdb"
psize=4096

# Byte 4139: the page size of meta page 1, which LMDB maps with. Before
# the check, each command ended with SIGBUS here.
damage $((psize + 43))
for command in "store check" status "feed --limit 1" doctor; do
	# shellcheck disable=SC2086 # the command is split on purpose
	run_a $command
	[ "$STATUS" -eq 1 ] || fail "'$command' exited $STATUS: $OUT"
	expect_damage "meta page 1 has page size 3707768832, not a power of two"
	expect_damage "Meta page 0 is intact"
done
pass "a damaged page size in the newest meta page: exit 1 with the fix"

# The older page alone: LMDB reads meta page 1 at the damaged size of
# page 0, and after the next commit page 0 would be the newest.
cp "$WORK/intact.mdb" "$data"
damage 43
run_a store check
[ "$STATUS" -eq 1 ] || fail "'store check' exited $STATUS: $OUT"
expect_damage "meta page 0 has page size 3707768832"
expect_damage "Meta page 1 is intact"
pass "a damaged page size in the older meta page is rejected too"

cp "$WORK/intact.mdb" "$data"
damage 16
run_a status
[ "$STATUS" -eq 1 ] || fail "status exited $STATUS: $OUT"
expect_damage "meta page 0 has magic 0xbeefc0dd instead of 0xbeefc0de"
pass "a damaged magic is named"

# Both pages: doctor gives the restore fix once, not the disk and owner
# advice of an unreadable folder.
cp "$WORK/intact.mdb" "$data"
damage 43
damage $((psize + 43))
run_a doctor
[ "$STATUS" -eq 1 ] || fail "doctor exited $STATUS: $OUT"
expect_damage "damaged in both LMDB meta pages"
grep -E '^FAIL +store ' <<<"$OUT" |
	grep -qF "; fix: restore the store from a backup made with 'clipmesh store backup'" ||
	fail "doctor gives no restore fix: $OUT"
[ "$(grep -o "restore the store" <<<"$OUT" | wc -l)" -eq 1 ] ||
	fail "doctor repeats the fix: $OUT"
! grep -q "free disk space" <<<"$OUT" || fail "doctor blames the disk: $OUT"
pass "both meta pages damaged: doctor gives the restore fix"

# A file cut inside the second meta page.
cp "$WORK/intact.mdb" "$data"
truncate -s 6000 "$data"
run_a store check
[ "$STATUS" -eq 1 ] || fail "'store check' exited $STATUS: $OUT"
grep -qF "is 6000 bytes, shorter than its two LMDB meta pages" <<<"$OUT" ||
	fail "no cut-short message: $OUT"
pass "a file shorter than two pages is named as cut short"

# The intact file opens, and the store check passes.
cp "$WORK/intact.mdb" "$data"
run_a store check
[ "$STATUS" -eq 0 ] || fail "'store check' of the intact file exited $STATUS: $OUT"
pass "the intact file opens"
finish
