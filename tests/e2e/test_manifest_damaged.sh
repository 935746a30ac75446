#!/bin/bash
# A fetch whose media has a damaged manifest in the store pauses and
# gives up, rather than asking its peer for the manifest again as soon as
# each copy arrives. Creator T publishes a clip. Node K imports the clip
# without its media and, while stopped, gets a manifest of 2 bytes
# planted for the media's root. Then K follows T and connects to it. K
# must name the damaged manifest, and T's traffic to K must stay small
# and never reach K's input limit.
source "$(dirname "$0")/lib.sh"
: "${STORE_PLANT:?set STORE_PLANT to the store_plant binary}"

new_home T
new_home K
tkey=$(cm T key new tina)
clip=$(cm T publish "$SAMPLES/review-kettle.webm" --as tina \
	--product gtin:2000000001012 --title "Damaged manifest" --rating 4)
root=$(cm T show "$clip" --json |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["media"][0]["hash"])')
cm T export -o "$WORK/t.export" 2>/dev/null
cm K import "$WORK/t.export" >/dev/null
"$STORE_PLANT" "$WORK/K/store" manifests "$root" 0102 ||
	fail "planting the damaged manifest failed"
cm K follow "$tkey"

start T node
start K node --peer "$(addr_of T)"

# Without the pause, every manifest from T made K ask again at once, so
# within a second T's responses reached K's input limit. K is watched for
# a fixed 5 s because the check is that nothing floods in that time.
sleep 5
read -r bytes pauses < <(cm K status --json | python3 -c '
import json, sys
p = json.load(sys.stdin)["node"]["peers"][0]
print(p["bytes_in"], p["pauses"])')
[ "$pauses" -eq 0 ] || fail "K paused reading T $pauses times"
[ "$bytes" -lt 20000 ] || fail "K received $bytes bytes from T in 5 s"
pass "K does not ask for the manifest again at network speed"

wait_for 30 "K's warning about the damaged manifest" \
	grep -q "stored manifest of media=${root:0:8} is damaged" "$WORK/K.log"
pass "K names the damaged manifest"

finish
