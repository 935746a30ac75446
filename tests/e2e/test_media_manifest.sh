#!/bin/bash
# A seeder that stalls before it is asked for a manifest must not hold
# the fetch for the 10 s after which a silent peer is dropped. Creator T
# and mirror U both store a small clip's media. Node K stores the clip
# (imported, so without its media) but does not follow T at first, and
# connects to both. The seeder that K requests the manifest from, the
# first of its peers, is stopped with SIGSTOP. Then K follows T, so it
# fetches the media and sends the manifest request to the stopped seeder. That request must time out
# after the seeder's request timeout (3 s before any response was
# measured), and K must complete the fetch from the other seeder well
# within 10 s of starting it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sync_lib.sh"

CHUNK=262144

new_home T
new_home U
new_home K
tkey=$(cm T key new tina)
{
	head -c 12 "$SAMPLES/review-blender.mp4"
	head -c $((4 * CHUNK - 12)) /dev/urandom
} >"$WORK/clip.mp4"
clip=$(cm T publish "$WORK/clip.mp4" --as tina --product gtin:2000000004044 \
	--title "Manifest stall" --rating 4)
root=$(cm T show "$clip" --json |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["media"][0]["hash"])')

start T node
start U mirror --peer "$(addr_of T)"
wait_for 60 "the clip's media on U" has_media_of U "$clip"
pass "T and U both store the media"

cm T export -o "$WORK/t.export" 2>/dev/null
cm K import "$WORK/t.export" >/dev/null
has_clips K 1 || fail "K holds $(feed_count K) clips after the import, expected 1"
# A short sync interval lets K's media scan run soon after it follows T.
printf '[limits]\nsync_interval = 1s\n' >>"$WORK/K/config"
start K node --peer "$(addr_of T)" --peer "$(addr_of U)"
wait_for 60 "K to reach T and U" links_up K 2

# K requests the manifest from the first usable peer of its list, so
# that peer is the one to stop.
first=$(cm K status --json | python3 -c '
import json, sys
peers = json.load(sys.stdin)["node"]["peers"]
print(next(p["peer"] for p in peers if p["connected"] and p.get("role")))')
case $first in
"$(addr_of T | sed -e 's|clipmesh://||' | cut -c1-8)") stalled=T other=U ;;
"$(addr_of U | sed -e 's|clipmesh://||' | cut -c1-8)") stalled=U other=T ;;
*) fail "K's first peer $first is neither T nor U" ;;
esac
kill -STOP "${NODE_PID[$stalled]}"
cm K follow "$tkey"

wait_for 60 "the clip's media on K while $stalled is stopped" \
	has_media_of K "$clip"
kill -CONT "${NODE_PID[$stalled]}"

timeout_line=$(grep -m1 "manifest of media=${root:0:8} timed out at peer=$first" \
	"$WORK/K.log") ||
	fail "K never asked the stopped $stalled ($first) for the manifest"
waited_ms=$(sed -e 's/.* after \([0-9]*\) ms.*/\1/' <<<"$timeout_line")
[ "$waited_ms" -lt 5000 ] ||
	fail "K waited $waited_ms ms for the manifest from the stopped $stalled; expected under 5000"
pass "the manifest request to the stopped $stalled timed out after $waited_ms ms"

seconds=$(sed -n -e "s/.*media complete media=${root:0:8} .*seconds=\([0-9.]*\).*/\1/p" \
	"$WORK/K.log" | head -n 1)
[ -n "$seconds" ] || fail "K did not log the media of the clip complete"
# The fetch must not wait until the stopped seeder is dropped after 10 s
# of silence. The order of the two log lines shows that without a
# limit on the fetch's time, which a loaded machine could break.
complete_at=$(grep -n -m1 "media complete media=${root:0:8}" "$WORK/K.log" |
	cut -d: -f1)
# Only K's own link to the seeder counts: the seeder's short check of
# where K listens shows as an inbound link that ends at once.
dropped_at=$(grep -n -m1 "peer disconnected peer=$first endpoint=tcp://" \
	"$WORK/K.log" | cut -d: -f1 || true)
[ -z "$dropped_at" ] || [ "$dropped_at" -gt "$complete_at" ] ||
	fail "K dropped the stopped $stalled before it completed the fetch"
cm K media get "$clip" -o "$WORK/k-clip.mp4"
cmp "$WORK/clip.mp4" "$WORK/k-clip.mp4" || fail "the media on K differs"
pass "K fetched the media from $other in $seconds s"

for name in K U T; do
	stop "$name"
done
pass "every node stopped cleanly on SIGTERM"
finish
