#!/bin/bash
# Import of a file larger than one batch: batches are verified and stored
# in a pipeline, and every record must still be counted once, in order,
# with a rejection in the middle reported at its position.
source "$(dirname "$0")/lib.sh"
: "${GEN:?set GEN to the bench_gen binary}"

records=3000
"$GEN" "$records" "$WORK/clips.export" >/dev/null

new_home A
out=$(cm A import "$WORK/clips.export")
[ "$out" = "accepted $records, duplicate 0, rejected 0" ] || fail "first import: $out"
[ "$(cm A status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"]["clips"])')" -eq "$records" ] ||
	fail "store does not hold $records clips"
pass "$records records over several batches all stored"

out=$(cm A import "$WORK/clips.export")
[ "$out" = "accepted 0, duplicate $records, rejected 0" ] || fail "second import: $out"
pass "a second import finds every record a duplicate"

# Change one byte of the signature of record 1700 (after the magic, each
# record is a 4-byte length and its bytes; the signature ends a record).
python3 - "$WORK/clips.export" "$WORK/bad.export" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
pos = 16
for index in range(1, 1701):
    length = int.from_bytes(data[pos:pos + 4], "big")
    pos += 4 + length
data[pos - 1] ^= 0x01
open(sys.argv[2], "wb").write(data)
PY
new_home B
status=0
out=$(cm B import --json "$WORK/bad.export" 2>/dev/null) || status=$?
[ "$status" -eq 1 ] || fail "import with one bad record exited $status"
printf '%s\n' "$out" | grep -q '"record": *1700, "rejected": *"bad_signature"' ||
	printf '%s\n' "$out" | grep -q '"record":1700,"rejected":"bad_signature"' ||
	fail "record 1700 not reported as bad_signature: $(printf '%s\n' "$out" | head -3)"
printf '%s\n' "$out" | tail -n 1 | grep -q '"accepted": *2999' ||
	fail "expected 2999 accepted: $(printf '%s\n' "$out" | tail -n 1)"
pass "a bad record in the middle is reported at its position"
finish
