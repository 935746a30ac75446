#!/bin/bash
# Partition and heal: two groups of two mirrors on 127.0.0.1 (a1 a2 and
# b1 b2), joined only through the bridge mirror X, all starting
# with the same BASE clips. X stops, each group takes new clips of its
# own, and X starts again. Every node must end with the identical set
# (the sorted ids of `export`), which is the base and both groups' clips,
# and the reconciliation traffic of the heal must follow the difference:
# less than one list of every id of the store, and at most
# BYTES_PER_DIFFERENCE per new clip.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sync_lib.sh"
: "${GEN:?set GEN to the bench_gen binary}"

base=10000
d1=150
d2=100
# bench_recon measures about 250 bytes per difference for one session in
# a store of a million; the heal runs several sessions per difference
# (X with a1 and with b1, in both directions) and the periodic ones.
bytes_per_difference=2000
group_a="a1 a2"
group_b="b1 b2"
all="$group_a $group_b X"

"$GEN" "$base" "$WORK/base.export" >/dev/null
"$GEN" "$d1" "$WORK/d1.export" >/dev/null
"$GEN" "$d2" "$WORK/d2.export" >/dev/null
for name in $all; do
	new_home "$name"
done
[ "$(cm a1 import "$WORK/base.export")" = \
	"accepted $base, duplicate 0, rejected 0" ] || fail "import into a1"
# The other homes start from a copy of a1's store: the same base, quickly.
for name in a2 b1 b2 X; do
	cp "$WORK/a1/store/data.mdb" "$WORK/$name/store/data.mdb"
done

start a1 mirror
start a2 mirror --peer "$(addr_of a1)"
start b1 mirror
start b2 mirror --peer "$(addr_of b1)"
bridge_peers=(--peer "$(addr_of a1)" --peer "$(addr_of b1)")
start X mirror "${bridge_peers[@]}"
for name in a1 b1 X; do
	wait_for 30 "$name to reach its 2 peers" links_up "$name" 2
done
for name in a2 b2; do
	wait_for 30 "$name to reach its peer" links_up "$name" 1
done
pass "5 mirrors with $base clips each, groups joined through X"

stop X
[ "$(cm a2 import "$WORK/d1.export")" = \
	"accepted $d1, duplicate 0, rejected 0" ] || fail "import into a2"
[ "$(cm b2 import "$WORK/d2.export")" = \
	"accepted $d2, duplicate 0, rejected 0" ] || fail "import into b2"
for name in $group_a; do
	wait_for 60 "$name to hold the clips of group a" \
		holds_clips "$name" $((base + d1))
done
for name in $group_b; do
	wait_for 60 "$name to hold the clips of group b" \
		holds_clips "$name" $((base + d2))
done
holds_clips X "$base" || fail "X took clips while it was stopped"
pass "each group spread its own $d1 and $d2 clips while cut off"

for name in $group_a $group_b; do
	recon_counters "$name" "$WORK/$name.before.json"
done
heal_start=$SECONDS
start X mirror "${bridge_peers[@]}"
for name in $all; do
	wait_for 60 "$name to hold every clip after the heal" \
		holds_clips "$name" $((base + d1 + d2))
done
heal_seconds=$((SECONDS - heal_start))
pass "all 5 nodes hold $((base + d1 + d2)) clips ${heal_seconds}s after X started"

cat "$WORK/base.export" >"$WORK/expected.export"
tail -c +17 "$WORK/d1.export" >>"$WORK/expected.export"
tail -c +17 "$WORK/d2.export" >>"$WORK/expected.export"
export_ids "$WORK/expected.export" >"$WORK/expected.ids"
expected="$(wc -l <"$WORK/expected.ids") $(sha256sum <"$WORK/expected.ids" | cut -c1-64)"
for name in $all; do
	got=$(set_fingerprint "$name")
	[ "$got" = "$expected" ] ||
		fail "$name holds the set '$got', expected '$expected';" \
			"$(comm -3 "$WORK/expected.ids" "$WORK/$name.set.ids" |
				head -3 | tr '\n' ' ')"
done
pass "all 5 nodes hold the identical set: $expected"

after=()
for name in $all; do
	recon_counters "$name" "$WORK/$name.after.json"
	after+=("$WORK/$name.after.json")
done
heal_bytes=$(recon_growth "$(ls "$WORK"/*.before.json | tr '\n' ' ')" \
	"${after[@]}")
difference=$((d1 + d2))
every_id=$((32 * (base + difference)))
echo "heal: $heal_bytes reconciliation bytes" \
	"for $difference differences ($((heal_bytes / difference)) per" \
	"difference); every id of the store once: $every_id bytes"
[ "$heal_bytes" -lt "$every_id" ] ||
	fail "the heal cost $heal_bytes reconciliation bytes, not less than" \
		"every id of the store once ($every_id)"
[ "$heal_bytes" -le $((bytes_per_difference * difference)) ] ||
	fail "the heal cost $heal_bytes reconciliation bytes for" \
		"$difference differences, over $bytes_per_difference each"
pass "reconciliation of the heal follows the difference"

for name in $all; do
	stop "$name"
done
pass "every node stopped cleanly on SIGTERM"
finish
