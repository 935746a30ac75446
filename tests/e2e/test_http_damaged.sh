#!/bin/bash
# The HTTP API on a store that a damaged disk changed. Mirror M stores a
# clip of a small photo, then, while stopped, gets the clip's title
# changed by one byte and the photo's chunk changed by one byte, as a
# disk could leave them. M must not serve either: the clip's route
# returns 500 instead of "verified": true, feed pages leave the clip out,
# and the media route returns 500 instead of the changed bytes under the
# media's ETag.
source "$(dirname "$0")/lib.sh"
: "${STORE_PLANT:?set STORE_PLANT to the store_plant binary}"

http_up() {
	curl -sf "$1/healthz" >/dev/null
}

# Prints the HTTP status of GET URL, and writes the body to FILE.
http_status() {
	curl -s -o "$2" -w '%{http_code}' "$1"
}

new_home M
cm M key new alice >/dev/null
# A chunk of 20,000 bytes fits on store_plant's command line as hex.
head -c 20000 "$SAMPLES/photo-backpack.jpg" >"$WORK/small.jpg"
clip=$(cm M publish "$WORK/small.jpg" --as alice \
	--product gtin:2000000004044 --title "Countertop blender")
root=$(cm M show "$clip" --json |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["media"][0]["hash"])')

port=$(free_port)
base="http://127.0.0.1:$port"
start M mirror --http "$port"
wait_for 30 "HTTP API on port $port" http_up "$base"
[ "$(http_status "$base/api/v1/clips/$clip" "$WORK/clip.json")" = 200 ] ||
	fail "the intact clip is not served: $(cat "$WORK/clip.json")"
curl -sf -o "$WORK/record.raw" "$base/api/v1/records/$clip/raw" ||
	fail "the raw record is not served"
stop M
pass "M served the intact clip"

change_title "$WORK/record.raw"
python3 - "$WORK" <<'PY'
import hashlib, sys
work = sys.argv[1]
chunk = open(work + "/small.jpg", "rb").read()
open(work + "/chunk.key", "w").write(
    hashlib.blake2b(chunk, digest_size=32).hexdigest())
damaged = chunk[:1000] + bytes([chunk[1000] ^ 1]) + chunk[1001:]
open(work + "/chunk.hex", "w").write(damaged.hex())
PY
"$STORE_PLANT" "$WORK/M/store" records "$clip" "$(cat "$WORK/record.raw.hex")" ||
	fail "planting the changed record failed"
"$STORE_PLANT" "$WORK/M/store" chunks "$(cat "$WORK/chunk.key")" \
	"$(cat "$WORK/chunk.hex")" || fail "planting the changed chunk failed"

start M mirror --http "$port"
wait_for 30 "HTTP API on port $port" http_up "$base"

status=$(http_status "$base/api/v1/clips/$clip" "$WORK/damaged.json")
[ "$status" = 500 ] ||
	fail "the changed clip answered $status: $(cat "$WORK/damaged.json")"
grep -q Xountertop "$WORK/damaged.json" &&
	fail "the changed title reached the client: $(cat "$WORK/damaged.json")"
grep -q "fails verification" "$WORK/M.log" ||
	fail "M's log does not name the failed verification"
pass "the clip's route answers 500 for a record that fails verification"

curl -sf -o "$WORK/page.json" "$base/api/v1/clips" || fail "no feed page"
python3 - "$WORK/page.json" "$clip" <<'PY' || fail "the feed page served the changed clip"
import json, sys
page = json.load(open(sys.argv[1]))
sys.exit(1 if any(c["id"] == sys.argv[2] for c in page["clips"]) else 0)
PY
grep -q "left a record out of a feed page" "$WORK/M.log" ||
	fail "M's log does not name the record left out"
pass "feed pages leave the changed record out"

curl -s -D "$WORK/media.headers" -o "$WORK/media.body" \
	"$base/api/v1/media/$root" >/dev/null || true
status=$(sed -n '1s/^HTTP[^ ]* \([0-9]*\).*/\1/p' "$WORK/media.headers")
[ "$status" = 500 ] || fail "the changed media answered $status"
grep -qi '^cache-control:.*immutable' "$WORK/media.headers" &&
	fail "the changed media was marked immutable"
grep -q "stored chunk 0 is corrupt" "$WORK/M.log" ||
	fail "M's log does not name the corrupt chunk"
pass "the media route answers 500 for a chunk that fails its hash"
stop M
