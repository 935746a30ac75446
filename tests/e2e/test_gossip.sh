#!/bin/bash
# Three real processes on 127.0.0.1: creator A, mirror M (peer of A) and
# creator B (peer of M, following A). Clips published on A must reach M
# and B with byte-identical media; retractions must remove them; M must
# catch up after a restart; import must agree with gossip.
source "$(dirname "$0")/lib.sh"

new_home A
new_home M
new_home B
akey=$(cm A key new alice)
cm B follow "$akey"

start A node
start M mirror --peer "$(addr_of A)"
start B node --peer "$(addr_of M)"

publish_samples A alice >"$WORK/ids"
[ "$(wc -l <"$WORK/ids")" -eq 4 ] || fail "expected 4 published ids"
pass "published 4 sample clips on A"

wait_for 30 "4 clips on M" has_clips M 4
pass "4 clips reached the mirror"
wait_for 30 "4 clips on B" has_clips B 4
pass "4 clips reached the follower B"

while read -r file id; do
	for home in M B; do
		wait_for 60 "media of $file on $home" has_media_of "$home" "$id"
		cm "$home" media get "$id" -o "$WORK/$home-$file"
		cmp "$SAMPLES/$file" "$WORK/$home-$file" ||
			fail "media of $file on $home differs from the original"
	done
done <"$WORK/ids"
pass "media on M and B is byte-identical to the samples"

# The same records arriving again by import are duplicates, stored once.
cm A export -o "$WORK/all.export" 2>/dev/null
out=$(cm M import "$WORK/all.export")
[ "$out" = "accepted 0, duplicate 4, rejected 0" ] || fail "import on M: $out"
has_clips M 4 || fail "import changed M's clip count"
pass "gossiped clips imported again are duplicates"

# A record with one changed byte is rejected with a reason; nothing of it
# is stored. The byte changed is inside the first record's body.
fresh_home=C
new_home "$fresh_home"
python3 - "$WORK/all.export" "$WORK/bad.export" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[16 + 4 + 40] ^= 0x01
open(sys.argv[2], "wb").write(data)
PY
status=0
out=$(cm C import "$WORK/bad.export" 2>"$WORK/import.err") || status=$?
[ "$status" -eq 1 ] || fail "import of a damaged file exited $status, expected 1"
[ "$out" = "accepted 3, duplicate 0, rejected 1" ] || fail "damaged import: $out"
grep -q "record 1 rejected" "$WORK/import.err" || fail "no reason printed: $(cat "$WORK/import.err")"
has_clips C 3 || fail "C should hold exactly the 3 intact clips"
pass "a record with one changed byte is rejected with a reason"

# Retraction on A removes the clip on M and B.
read -r file first_id <"$WORK/ids"
cm A retract "$first_id" --as alice >/dev/null
wait_for 30 "retraction on M" has_clips M 3
wait_for 30 "retraction on B" has_clips B 3
pass "retraction on A removed the clip on M and B"

# Importing the old clip again does not bring it back.
status=0
out=$(cm M import "$WORK/all.export" 2>"$WORK/import2.err") || status=$?
[ "$status" -eq 1 ] || fail "import of a retracted clip exited $status"
grep -q "retracted" "$WORK/import2.err" || fail "no 'retracted' reason: $(cat "$WORK/import2.err")"
has_clips M 3 || fail "retracted clip came back on M"
pass "a retracted clip does not come back by import"

# M restarted after A published more catches up.
stop M
more=$(cm A publish "$SAMPLES/photo-backpack.jpg" --as alice \
	--product gtin:2000000004044 --title "Backpack, second look" --rating 4)
start M mirror --peer "$(addr_of A)"
wait_for 30 "M to catch up" has_clips M 4
wait_for 60 "media of the new clip on M" has_media_of M "$more"
pass "restarted mirror caught up with the clip published while it was down"

# Status reports per-peer reconciliation and traffic.
recon_reported() {
	cm M status --json | python3 -c '
import json, sys
peers = json.load(sys.stdin)["node"]["peers"]
ok = any(p["reconciliation"]["sessions"] >= 1 and p["bytes_in"] > 0
         and "duplicates_in" in p and "last_error" in p for p in peers)
sys.exit(0 if ok else 1)'
}
wait_for 30 "M to report a finished reconciliation" recon_reported
pass "status reports reconciliation sessions per peer"

# Once the records are in, nothing waits to be verified or stored.
queues_empty() {
	cm M status --json | python3 -c '
import json, sys
q = json.load(sys.stdin)["node"]["queues"]
sys.exit(0 if q["verifying"] == 0 and q["storing"] == 0 else 1)'
}
wait_for 30 "M to report empty verify and store queues" queues_empty
pass "status reports the verify and store queues, empty when idle"

for home in A M B; do
	stop "$home"
done
pass "every node stopped cleanly on SIGTERM"
finish
