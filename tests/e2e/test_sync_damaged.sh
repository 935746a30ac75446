#!/bin/bash
# A node does not send peers a record that a damaged disk changed.
# Mirror S stores two clips. While S is stopped, one clip's title is
# changed by one byte in its store, as a disk could leave it. Mirror R
# then syncs from S: it gets the intact clip only, rejects nothing (S
# sent nothing that R could reject and count against S), and S names
# the changed record in its log.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sync_lib.sh"
: "${STORE_PLANT:?set STORE_PLANT to the store_plant binary}"

http_up() {
	curl -sf "$1/healthz" >/dev/null
}

new_home S
new_home R
cm S key new alice >/dev/null
damaged=$(cm S publish "$SAMPLES/photo-backpack.jpg" --as alice \
	--product gtin:2000000004044 --title "Countertop blender")
intact=$(cm S publish "$SAMPLES/photo-backpack.jpg" --as alice \
	--product gtin:2000000004044 --title "Backpack, second week")

port=$(free_port)
start S mirror --http "$port"
wait_for 30 "HTTP API on port $port" http_up "http://127.0.0.1:$port"
curl -sf -o "$WORK/record.raw" \
	"http://127.0.0.1:$port/api/v1/records/$damaged/raw" ||
	fail "the raw record is not served"
stop S

change_title "$WORK/record.raw"
"$STORE_PLANT" "$WORK/S/store" records "$damaged" "$(cat "$WORK/record.raw.hex")" ||
	fail "planting the changed record failed"

start S mirror
start R mirror --peer "$(addr_of S)"
wait_for 60 "R to get the intact clip" holds_clips R 1
logged() {
	grep -q "stored record ${damaged:0:16} no longer hashes to its id, not sent" \
		"$WORK/S.log"
}
wait_for 60 "S to name the changed record" logged
cm R show "$intact" >/dev/null || fail "R lacks the intact clip"
cm R show "$damaged" >/dev/null 2>&1 && fail "R stores the changed clip"
rejected=$(cm R status --json | python3 -c '
import json, sys
print(sum(json.load(sys.stdin)["node"]["rejected"].values()))')
[ "$rejected" = 0 ] || fail "R rejected $rejected records from S"
pass "S sent the intact clip only and named the changed one"

stop R
stop S
