#!/bin/bash
# A publish that stops half-way leaves nothing in the store for good:
# - a publish killed with SIGKILL while it copies chunks leaves media
#   that `store check` reports as a note, and that a node start frees;
#   a second one is freed by the next publish;
# - a publish stopped with SIGSTOP while it copies chunks keeps its
#   media through a node start, and once continued it completes and
#   `media get` returns the same bytes;
# - a publish whose file changes or shrinks between its hashing pass
#   and its copying pass fails with a message that names the cause and
#   leaves no chunk bytes.
#
# store_hold holds the store's write lock, which stops a publish at its
# next write transaction, so no step waits a fixed time. MEDIA_MB
# (default 200) sets the size of the big files.
source "$(dirname "$0")/lib.sh"

: "${STORE_HOLD:?set STORE_HOLD to the store_hold test helper}"
MEDIA_MB=${MEDIA_MB:-200}
CHUNK=262144

# Writes a file of BYTES random bytes that starts with the MP4 header of
# the blender sample, so that publish detects video/mp4.
make_mp4() {
	{
		head -c 12 "$SAMPLES/review-blender.mp4"
		head -c $(($2 - 12)) /dev/urandom
	} >"$1"
}

# Prints the chunk bytes that home A's status reports.
chunk_bytes() {
	cm A status --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["media"]["bytes"])'
}

# Succeeds when home A stores more than N chunk bytes.
bytes_above() {
	[ "$(chunk_bytes)" -gt "$1" ]
}

# Succeeds when home A stores exactly N chunk bytes.
bytes_are() {
	[ "$(chunk_bytes)" -eq "$1" ]
}

# Prints the number of publish lock files in home A.
lock_files() {
	find "$WORK/A/store/publish" -type f 2>/dev/null | wc -l
}

has_lock_file() {
	[ "$(lock_files)" -gt 0 ]
}

# Starts a publish of FILE on home A in the background, with its output
# in $WORK/publish.out and $WORK/publish.err; sets PUBLISH_PID.
publish_bg() {
	"$CLIPMESH" --home "$WORK/A" publish "$1" --as alice \
		--product gtin:2000000001012 --title "$2" \
		>"$WORK/publish.out" 2>"$WORK/publish.err" &
	PUBLISH_PID=$!
}

# Takes the write lock of home A's store; sets HOLD_PID.
hold_store() {
	"$STORE_HOLD" "$WORK/A/store" >"$WORK/hold.out" &
	HOLD_PID=$!
	wait_for 30 "the store's write lock" grep -q '^held$' "$WORK/hold.out"
}

release_store() {
	kill -TERM "$HOLD_PID"
	wait "$HOLD_PID" || fail "store_hold exited with status $?"
}

# Usage: publish_until_copying FILE BASE TITLE
# Starts a publish of FILE on a home that stores BASE chunk bytes, and
# returns once the publish stored some but not all of its chunks and
# waits for the store's write lock, which the caller releases. Sets
# COPIED to the chunk bytes stored then.
publish_until_copying() {
	local file=$1 base=$2 size
	size=$(stat -c %s "$file")
	publish_bg "$file" "$3"
	wait_for 120 "the publish to store chunks" bytes_above "$base"
	hold_store
	COPIED=$(chunk_bytes)
	[ "$COPIED" -lt $((base + size)) ] ||
		fail "the publish stored all $size bytes before it was held"
}

new_home A
cm A key new alice >/dev/null

# A first clip builds the media index of the new store. Later publishes
# then need no write transaction before their first step, which the
# held write lock would otherwise block.
make_mp4 "$WORK/small.mp4" $((2 * CHUNK))
cm A publish "$WORK/small.mp4" --as alice --product gtin:2000000001012 \
	--title small >/dev/null
base=$(chunk_bytes)
[ "$base" -gt 0 ] || fail "the first clip stored no chunk bytes"
pass "first clip stores $base chunk bytes"

# --- SIGKILL while copying, freed by a node start ---------------------

make_mp4 "$WORK/big1.mp4" $((MEDIA_MB * 1024 * 1024))
publish_until_copying "$WORK/big1.mp4" "$base" killed
kill -KILL "$PUBLISH_PID"
wait "$PUBLISH_PID" 2>/dev/null || true
release_store
pass "publish killed after storing $((COPIED - base)) of $((MEDIA_MB * 1024 * 1024)) bytes"

cm A store check >"$WORK/check.out" ||
	fail "store check failed on the leftovers of a killed publish: $(cat "$WORK/check.out")"
grep -q '^note: a publish stopped and left 1 media' "$WORK/check.out" ||
	fail "store check did not note the killed publish: $(cat "$WORK/check.out")"
grep -q 'problems 0, notes 1$' "$WORK/check.out" ||
	fail "store check counts the leftovers as a problem: $(cat "$WORK/check.out")"
pass "store check notes the killed publish"

cm A doctor >"$WORK/doctor.out" 2>&1 || true
grep -q '^OK    store .* 0 problems, 1 note$' "$WORK/doctor.out" ||
	fail "doctor fails the store for the leftovers: $(cat "$WORK/doctor.out")"
if grep -q "restore the store from a backup" "$WORK/doctor.out"; then
	fail "doctor advises a backup for the leftovers"
fi
pass "doctor passes the store with a killed publish's leftovers"

start A node
wait_for 30 "the node start to free the killed publish" bytes_are "$base"
stop A
[ "$(lock_files)" -eq 0 ] || fail "$(lock_files) lock files remain"
cm A store check >"$WORK/check.out" ||
	fail "store check after the node start: $(cat "$WORK/check.out")"
pass "node start frees the killed publish's chunks and lock file"

# --- SIGKILL while copying, freed by the next publish -----------------

publish_until_copying "$WORK/big1.mp4" "$base" killed
kill -KILL "$PUBLISH_PID"
wait "$PUBLISH_PID" 2>/dev/null || true
release_store
make_mp4 "$WORK/small2.mp4" $((CHUNK + 100))
cm A publish "$WORK/small2.mp4" --as alice --product gtin:2000000001012 \
	--title small2 >/dev/null
base=$((base + CHUNK + 100))
bytes_are "$base" || fail "the next publish left $(chunk_bytes) bytes, expected $base"
[ "$(lock_files)" -eq 0 ] || fail "$(lock_files) lock files remain"
cm A store check >"$WORK/check.out" ||
	fail "store check after the next publish: $(cat "$WORK/check.out")"
pass "next publish frees the killed publish's chunks"

# --- SIGSTOP while copying: a sweep keeps it, SIGCONT completes it ----

make_mp4 "$WORK/big2.mp4" $((MEDIA_MB * 1024 * 1024))
publish_until_copying "$WORK/big2.mp4" "$base" stopped
kill -STOP "$PUBLISH_PID"
release_store
start A node
bytes_are "$COPIED" || fail "the node start changed the chunk bytes of a stopped publish from $COPIED to $(chunk_bytes)"
cm A store check >"$WORK/check.out" ||
	fail "store check with a stopped publish: $(cat "$WORK/check.out")"
pass "node start keeps the $COPIED bytes of a stopped publish"

kill -CONT "$PUBLISH_PID"
wait "$PUBLISH_PID" || fail "the continued publish failed: $(cat "$WORK/publish.err")"
id=$(cat "$WORK/publish.out")
cm A media get "$id" -o "$WORK/big2.out"
cmp "$WORK/big2.mp4" "$WORK/big2.out" || fail "media of the continued publish differs"
stop A
base=$((base + MEDIA_MB * 1024 * 1024))
bytes_are "$base" || fail "chunk bytes are $(chunk_bytes), expected $base"
pass "continued publish completes and media get returns the same bytes"

# Releases the held store, waits for the background publish, and checks
# that it failed with MESSAGE on stderr and left no chunk bytes and no
# lock files. Usage: publish_fails_cleanly WHAT MESSAGE
publish_fails_cleanly() {
	local what=$1 message=$2 status=0
	release_store
	wait "$PUBLISH_PID" || status=$?
	[ "$status" -eq 1 ] || fail "publish of $what exited with $status"
	grep -qF -- "$message" "$WORK/publish.err" ||
		fail "publish of $what printed another error: $(cat "$WORK/publish.err")"
	bytes_are "$base" || fail "the failed publish left $(($(chunk_bytes) - base)) chunk bytes"
	[ "$(lock_files)" -eq 0 ] || fail "$(lock_files) lock files remain"
}

# --- file changed between hashing and copying -------------------------

make_mp4 "$WORK/big3.mp4" $((8 * 1024 * 1024))
hold_store
publish_bg "$WORK/big3.mp4" changed
# The lock file is made after the hashing pass, and the publish then
# waits for the held write lock before it copies a chunk. Chunk 20 is in
# the second batch of 16, so the first batch is stored before the
# publish finds the change.
wait_for 60 "the publish to finish hashing" has_lock_file
printf 'X' | dd of="$WORK/big3.mp4" bs=1 seek=$((20 * CHUNK)) conv=notrunc status=none
publish_fails_cleanly "a changed file" \
	'changed while it was being published; publish it again'
cm A store check >"$WORK/check.out" ||
	fail "store check after the failed publish: $(cat "$WORK/check.out")"
pass "publish of a changed file fails and leaves no chunk bytes"

# --- file shrank between hashing and copying --------------------------

make_mp4 "$WORK/big4.mp4" $((8 * 1024 * 1024))
hold_store
publish_bg "$WORK/big4.mp4" shrank
wait_for 60 "the publish to finish hashing" has_lock_file
truncate -s $((20 * CHUNK)) "$WORK/big4.mp4"
publish_fails_cleanly "a shrunk file" \
	"$WORK/big4.mp4 shrank while it was being published; publish it again"
pass "publish of a file that shrank while storing names the cause"

finish
