#!/bin/bash
# Backup and restore: `store backup` runs while a mirror takes 1,000 clips
# by gossip. The copy is one consistent moment: it passes `store check`,
# its clip count equals its acceptance log head (every record accepted
# up to that moment, none after), and lies between the mirror's counts
# before and after the backup. Restored into a new home and started, it
# serves the same feed and media to a new mirror.
source "$(dirname "$0")/lib.sh"
: "${GEN:?set GEN to the bench_gen binary}"

parts=10
per_part=100
"$GEN" $((parts * per_part)) "$WORK/all.export" >/dev/null
split_export "$WORK/all.export" "$WORK/part" "$per_part"

field() {
	cm "$1" status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["records"]["clips"] if sys.argv[1] == "clips" else s["log_head"])' "$2"
}

new_home A
new_home M
cm M key new alice >/dev/null
photo=$(cm M publish "$SAMPLES/photo-backpack.jpg" --as alice \
	--product gtin:2000000004044 --title "Backpack before the backup")
start A node
start M mirror --peer "$(addr_of A)"

(
	for file in "$WORK"/part.*; do
		cm A import "$file" >/dev/null
		sleep 0.3
	done
) &
feeder=$!

# Back up once the stream of clips has started, while it goes on.
started() {
	[ "$(field M clips)" -gt 150 ]
}
wait_for 60 "the mirror to take clips" started
before=$(field M clips)
(umask 022 && cm M store backup "$WORK/backup" >/dev/null) ||
	fail "store backup failed"
after=$(field M clips)
wait "$feeder"
mode=$(stat -c %a "$WORK/backup/data.mdb")
[ "$mode" = 600 ] || fail "the backup's data.mdb has mode $mode, expected 600"

mkdir -p "$WORK/R/keys"
cp "$WORK/M/config" "$WORK/M/node.key" "$WORK/M/node.pub" "$WORK/R/"
cp "$WORK/M/keys/"* "$WORK/R/keys/"
chmod 700 "$WORK/R"
mv "$WORK/backup" "$WORK/R/store"
port=$(free_port)
printf 'listen = tcp://127.0.0.1:%s\n' "$port" >>"$WORK/R/config"

cm R store check >"$WORK/check.out" || fail "store check of the backup: $(cat "$WORK/check.out")"
clips=$(field R clips)
head=$(field R log_head)
# The photo clip was accepted first, so the head counts it too.
[ "$clips" -eq "$head" ] ||
	fail "backup holds $clips clips but its log head is $head"
[ "$clips" -ge "$before" ] && [ "$clips" -le "$after" ] ||
	fail "backup holds $clips clips, mirror had $before before and $after after"
pass "backup is consistent: $clips clips (mirror: $before before, $after after)"

cm R media get "$photo" -o "$WORK/photo.jpg" >/dev/null
cmp -s "$WORK/photo.jpg" "$SAMPLES/photo-backpack.jpg" || fail "restored media differs"
pass "restored media reads back byte for byte"

stop M
stop A
new_home N
start R mirror
start N mirror --peer "$(addr_of R)"
synced() {
	[ "$(field N clips)" -eq "$clips" ]
}
wait_for 60 "a new mirror to take the restored $clips clips" synced
wait_for 60 "the new mirror to fetch the photo" has_media_of N "$photo"
cm R feed --json --limit 1000 | python3 -c 'import json,sys; print(sorted(json.loads(l)["id"] for l in sys.stdin))' >"$WORK/r.ids"
cm N feed --json --limit 1000 | python3 -c 'import json,sys; print(sorted(json.loads(l)["id"] for l in sys.stdin))' >"$WORK/n.ids"
cmp -s "$WORK/r.ids" "$WORK/n.ids" || fail "new mirror's feed differs from the restored one"
pass "the restored home serves the same feed and media to a new mirror"
finish
