#!/bin/bash
# Media at scale with real processes on 127.0.0.1:
# - a receiver R fetches a big clip from two seeders at once (creator A
#   and mirror M), is killed with SIGKILL at random points of the
#   transfer, resumes from the chunks it stored, and ends byte-identical;
# - `show` in another process reads the store of a node while it fetches
#   (held half done by stopping the seeder) and sees a consistent state
#   every time;
# - a hostile seeder that corrupts chunks is rejected, and the media comes
#   from an honest seeder;
# - two clips that share one file store its chunks once;
# - a creator node with --media none stores no chunks and still serves
#   the records;
# - retracting one of two clips that share a file keeps its chunks, and
#   retracting both frees them;
# - 40 clips whose media nobody can serve do not keep a mirror from
#   fetching the media of a newer clip, and their backoff survives a
#   restart;
# - a mirror with --media-budget evicts others' media and keeps its own.
#
# MEDIA_MB (default 40) sets the size of the big clip and KILLS (default
# 3) the number of SIGKILLs; a local run can use MEDIA_MB=200 KILLS=10.
source "$(dirname "$0")/lib.sh"

: "${HOSTILE:?set HOSTILE to the hostile_peer test client}"
MEDIA_MB=${MEDIA_MB:-40}
KILLS=${KILLS:-3}
CHUNK=262144

# Writes a file of MB mebibytes (or BYTES with a "b" suffix) of random
# bytes that starts with the MP4 header of the blender sample, so that
# publish detects video/mp4.
make_mp4() {
	local path=$1 size=$2 bytes
	case $size in
	*b) bytes=${size%b} ;;
	*) bytes=$((size * 1024 * 1024)) ;;
	esac
	{
		head -c 12 "$SAMPLES/review-blender.mp4"
		head -c $((bytes - 12)) /dev/urandom
	} >"$path"
}

# Prints one value of home NAME's status JSON, given as a Python
# expression over `s`.
status_value() {
	cm "$1" status --json | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"
}

chunks_of() {
	status_value "$1" 's["media"]["chunks"]'
}

# Succeeds when home NAME stores at least N chunks.
has_chunks() {
	[ "$(chunks_of "$1")" -ge "$2" ]
}

# Prints the bytes that home NAME's node sent to the peer with the short
# key PEER.
bytes_sent_to() {
	status_value "$1" "sum(p['bytes_out'] for p in s['node']['peers'] if p['peer'] == '$2')"
}

short_key() {
	addr_of "$1" | sed -e 's|clipmesh://||' | cut -c1-8
}

new_home A
new_home M
akey=$(cm A key new alice)

# --- several sources, SIGKILL and resume ------------------------------

make_mp4 "$WORK/big.mp4" "$MEDIA_MB"
total=$(((MEDIA_MB * 1024 * 1024 + CHUNK - 1) / CHUNK))
big=$(cm A publish "$WORK/big.mp4" --as alice --product gtin:2000000001012 \
	--title "Big review" --rating 4)
has_chunks A "$total" || fail "A stores $(chunks_of A) chunks, expected $total"
pass "published a $MEDIA_MB MiB clip in $total chunks"

start A node --media-max 1G
begin=$(date +%s%N)
start M mirror --peer "$(addr_of A)" --media-max 1G
wait_for 60 "the big media on M" has_media_of M "$big"
took_ms=$((($(date +%s%N) - begin) / 1000000))
pass "mirror M fetched the big media from A in $took_ms ms"

# A fresh follower fetches from both seeders at once.
new_home F
cm F follow "$akey"
fkey=$(short_key F)
begin=$(date +%s%N)
start F node --peer "$(addr_of A)" --peer "$(addr_of M)" --media-max 1G
wait_for 60 "the big media on F" has_media_of F "$big"
took_ms=$((($(date +%s%N) - begin) / 1000000))
from_a=$(bytes_sent_to A "$fkey")
from_m=$(bytes_sent_to M "$fkey")
[ "$from_a" -gt $((CHUNK * 8)) ] || fail "A sent F only $from_a bytes"
[ "$from_m" -gt $((CHUNK * 8)) ] || fail "M sent F only $from_m bytes"
[ $((from_a + from_m)) -lt $(((total + total / 10) * CHUNK)) ] ||
	fail "A and M sent F $((from_a + from_m)) bytes for $total chunks"
pass "F fetched from both seeders (A: $from_a bytes, M: $from_m bytes)"
stop F

# --- a seeder that stalls mid-transfer ----------------------------------

# H fetches from A and M; once H stored a few chunks, M is stopped with
# SIGSTOP. The chunks that H requested from M must time out, or move to
# A, after the timeout that H measured for M. That timeout stays far
# below the 10 s after which a silent peer is dropped, and H completes
# from A while M is still stopped. When H completed before the stop took
# effect, or M had no request of H in flight, H starts over empty (at
# most five rounds). The size of H's store file shows the first chunks
# sooner than `status` does, which matters when the whole transfer takes
# about a second.

# Waits until the store file of home $1 is larger than $2 bytes.
wait_store_over() {
	local deadline=$((SECONDS + 60)) file="$WORK/$1/store/data.mdb"
	until [ "$(stat -c %s "$file" 2>/dev/null || echo 0)" -gt "$2" ]; do
		[ "$SECONDS" -lt "$deadline" ] ||
			fail "timed out after 60s waiting for $1's store to pass $2 bytes"
		sleep 0.01
	done
}

# Prints the longest wait in ms after which H gave up a request to the
# peer with short key $1 (0 when none did).
longest_stall_wait() {
	sed -n -e "s/.* at peer=$1 after \([0-9]*\) ms.*/\1/p" \
		-e "s/.* from peer=$1 after \([0-9]*\) ms.*/\1/p" \
		"$WORK/H.log" | sort -n | tail -n 1 | grep . || echo 0
}

mkey=$(short_key M)
stall_ms=0
for ((round = 1; round <= 5 && stall_ms == 0; round++)); do
	rm -rf "$WORK/H" "$WORK/H.log"
	new_home H
	cm H follow "$akey"
	# Started directly, not with start(), whose wait for the node's
	# `status` reply can outlast a whole transfer.
	"$CLIPMESH" --home "$WORK/H" node --log-level debug --media-max 1G \
		--peer "$(addr_of A)" --peer "$(addr_of M)" >>"$WORK/H.log" 2>&1 &
	NODE_PID[H]=$!
	wait_store_over H $((4 * CHUNK))
	kill -STOP "${NODE_PID[M]}"
	held=$(($(stat -c %s "$WORK/H/store/data.mdb") / CHUNK))
	wait_for 60 "the big media on H while M is stopped" has_media_of H "$big"
	kill -CONT "${NODE_PID[M]}"
	stall_ms=$(longest_stall_wait "$mkey")
	echo "# round $round: M stopped at about $held of $total chunks," \
		"requests to M given up after at most $stall_ms ms"
	stop H
done
[ "$stall_ms" -gt 0 ] || fail "H never had a request in flight at the stopped M"
[ "$stall_ms" -lt 5000 ] ||
	fail "H waited $stall_ms ms for the stopped M; expected under 5000"
pass "requests to a stopped seeder moved to the other after $stall_ms ms"

# --- show while a fetch runs --------------------------------------------

# Runs `show` on home $1 for clip $2 in a loop until its media is present
# and appends one line per read to file $3: "partial" when the fetch was
# half done, else "read", then "done". Fails when a read fails after the
# clip arrived, when the stored chunk count goes down, or when the media
# is reported present without every chunk.
show_while_fetching() {
	python3 - "$CLIPMESH" "$WORK/$1" "$2" "$3" <<'PY'
import json, subprocess, sys, time

cli, home, clip, out = sys.argv[1:5]
seen = None
reads = 0
deadline = time.time() + 120
with open(out, "a", buffering=1) as log:
    while time.time() < deadline:
        run = subprocess.run([cli, "--home", home, "show", clip, "--json"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            if seen is None:
                time.sleep(0.05)
                continue
            sys.exit(f"show failed after {reads} reads: {run.stderr.strip()}")
        media = json.loads(run.stdout)["media"][0]
        reads += 1
        # chunks is null until the manifest is stored. show reads
        # "present" before the counts, so a chunk stored in between can
        # make the counts complete while present is still false, never
        # the other way round.
        chunks = media["chunks"] or 0
        total = media["chunks_total"] or 0
        if seen is not None and chunks < seen:
            sys.exit(f"stored chunks went down from {seen} to {chunks}")
        if media["present"] and chunks != total:
            sys.exit(f"present with {chunks} of {total} chunks")
        seen = chunks
        log.write("partial\n" if 0 < chunks < total else "read\n")
        if media["present"]:
            log.write("done\n")
            sys.exit(0)
sys.exit(f"media not present after {reads} reads in 120 s")
PY
}

# G fetches the big clip from A while show reads G's store in a loop.
# Once G stored some chunks, A is stopped with SIGSTOP, which keeps the
# fetch half done until show has seen it so. Then A continues and G
# completes. G starts as H did, and its store file shows the first
# chunks.
new_home G
cm G follow "$akey"
: >"$WORK/show.out"
"$CLIPMESH" --home "$WORK/G" node --log-level debug --media-max 1G \
	--peer "$(addr_of A)" >>"$WORK/G.log" 2>&1 &
NODE_PID[G]=$!
show_while_fetching G "$big" "$WORK/show.out" 2>"$WORK/show.err" &
reader=$!
wait_store_over G $((4 * CHUNK))
kill -STOP "${NODE_PID[A]}"
held=$(chunks_of G)
[ "$held" -lt "$total" ] ||
	fail "G stored all $total chunks before A was stopped"
wait_for 60 "show to see G's fetch half done" grep -q partial "$WORK/show.out"
kill -CONT "${NODE_PID[A]}"
wait "$reader" || fail "show on G during the fetch: $(cat "$WORK/show.err")"
has_media_of G "$big" || fail "G lacks the big media after show saw it present"
reads=$(grep -c -v done "$WORK/show.out")
partial=$(grep -c partial "$WORK/show.out" || true)
pass "show read G's store consistently $reads times, $partial mid-transfer (A stopped at $held of $total chunks)"
stop G

# After each start, R is killed once its store file grew by a chunk, at a
# random delay of up to 60% of the time that F took for the chunks R
# still lacks. This repeats until KILLS kills landed mid-transfer, in at
# most 4 * KILLS rounds. A kill lands when R stored chunks since its start and not all
# of them. When R completed before a kill, its home starts over empty so
# that the next kill has a transfer to interrupt, and the delays halve,
# so that a machine faster than during F's fetch still gets kills
# mid-transfer.
# Waits until R stored a chunk since its start: its store file grew past
# $1 bytes or, checked every half second, it stores more than $2 chunks.
# A commit cut short by the previous kill may have grown the file
# already, and then the file can keep its size until R completes.
wait_r_progress() {
	local deadline=$((SECONDS + 60)) polls=0
	until [ "$(stat -c %s "$WORK/R/store/data.mdb" 2>/dev/null || echo 0)" -gt "$1" ]; do
		polls=$((polls + 1))
		if [ $((polls % 50)) -eq 0 ] && [ "$(chunks_of R)" -gt "$2" ]; then
			return 0
		fi
		[ "$SECONDS" -lt "$deadline" ] ||
			fail "timed out after 60s waiting for R to store a chunk"
		sleep 0.01
	done
}

# Succeeds once R.log holds more fetch starts than N.
fetch_started() {
	[ "$(grep -c "fetching media=" "$WORK/R.log" || true)" -gt "$1" ]
}

new_home R
cm R follow "$akey"
landed=0
got=0
scale=100
for ((k = 1; k <= 4 * KILLS && landed < KILLS; k++)); do
	if [ "$got" -eq "$total" ]; then
		rm -rf "$WORK/R"
		new_home R
		cm R follow "$akey"
		got=0
	fi
	before=$got
	size=$(stat -c %s "$WORK/R/store/data.mdb" 2>/dev/null || echo 0)
	touch "$WORK/R.log"
	fetches=$(grep -c "fetching media=" "$WORK/R.log" || true)
	"$CLIPMESH" --home "$WORK/R" node --log-level debug --media-max 1G \
		--peer "$(addr_of A)" --peer "$(addr_of M)" \
		>>"$WORK/R.log" 2>&1 &
	pid=$!
	# So that a failure below stops R too, instead of waiting for it.
	NODE_PID[R]=$pid
	wait_for 30 "R to start fetching" fetch_started "$fetches"
	wait_r_progress $((size + CHUNK)) "$got"
	delay_ms=$((took_ms * (total - got) / total * (RANDOM % 60) / 100 \
		* scale / 100))
	sleep "$((delay_ms / 1000)).$(printf %03d $((delay_ms % 1000)))"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	unset "NODE_PID[R]"
	got=$(chunks_of R)
	[ "$got" -gt "$before" ] && [ "$got" -lt "$total" ] &&
		landed=$((landed + 1))
	[ "$got" -eq "$total" ] && scale=$((scale / 2 > 1 ? scale / 2 : 1))
	echo "# kill $k after $delay_ms ms at $got of $total chunks"
done
start R node --peer "$(addr_of A)" --peer "$(addr_of M)" --media-max 1G
wait_for 90 "the big media on R" has_media_of R "$big"
cm R media get "$big" -o "$WORK/r-big.mp4"
cmp "$WORK/big.mp4" "$WORK/r-big.mp4" || fail "media on R differs after the kills"
[ "$landed" -ge "$KILLS" ] ||
	fail "only $landed of $KILLS kills landed mid-transfer in $((k - 1)) rounds"
pass "R resumed after $landed SIGKILLs mid-transfer and is byte-identical"
grep -q "resuming media=" "$WORK/R.log" ||
	fail "R never reported resuming from stored chunks"
pass "R resumed from the chunks it had stored"

# --- a corrupting seeder ----------------------------------------------

# Q starts without peers, so the hostile client is its first source. The
# client serves a wrong manifest once and corrupts every chunk it is
# asked for the first time. Then the honest author C connects.
new_home Q
new_home C
cm C key new carol >/dev/null
make_mp4 "$WORK/small.mp4" $((6 * CHUNK))b
small=$(cm C publish "$WORK/small.mp4" --as carol --product gtin:2000000002026 \
	--title "Six chunks" --rating 3)
cm C export -o "$WORK/c.export" 2>/dev/null
start Q mirror
"$HOSTILE" --records "$WORK/c.export" --media "$WORK/small.mp4" \
	bad-media "$(addr_of Q)" >"$WORK/hostile.log" 2>&1 &
NODE_PID[X]=$!
bad_chunk_counted() {
	[ "$(status_value Q 's["node"]["rejected"].get("bad_chunk", 0)')" -ge 1 ]
}
# Succeeds once Q counted a bad chunk or the client ended.
bad_peer_settled() {
	bad_chunk_counted || ! kill -0 "${NODE_PID[X]}" 2>/dev/null
}
wait_for 60 "Q to reject a corrupted chunk" bad_peer_settled
bad_chunk_counted ||
	fail "hostile_peer ended early: $(grep hostile_peer: "$WORK/hostile.log")"
! has_media_of Q "$small" || fail "Q holds media that only the bad peer served"
start C node --peer "$(addr_of Q)"
wait_for 60 "the media from C on Q" has_media_of Q "$small"
cm Q media get "$small" -o "$WORK/q-small.mp4"
cmp "$WORK/small.mp4" "$WORK/q-small.mp4" || fail "media on Q differs"
cm Q store check >"$WORK/check.out" || fail "store check on Q: $(cat "$WORK/check.out")"
stop X
pass "corrupted chunks rejected, the media came from the honest seeder"

# --- shared media is stored once --------------------------------------

make_mp4 "$WORK/shared.mp4" 2
shared_chunks=8
before=$(chunks_of R)
one=$(cm A publish "$WORK/shared.mp4" --as alice --product gtin:2000000004044 \
	--title "Shared, first" --rating 5)
two=$(cm A publish "$WORK/shared.mp4" --as alice --product gtin:2000000004044 \
	--title "Shared, second" --rating 2)
[ "$one" != "$two" ] || fail "two clips got the same id"
wait_for 60 "the first shared clip on R" has_media_of R "$one"
wait_for 60 "the second shared clip on R" has_media_of R "$two"
[ "$(chunks_of R)" -eq $((before + shared_chunks)) ] ||
	fail "R stores $(($(chunks_of R) - before)) new chunks, expected $shared_chunks"
pass "two clips sharing one file store its chunks once"

# --- --media none ------------------------------------------------------

new_home N
new_home P
cm N follow "$akey"
start N node --media none --peer "$(addr_of A)"
start P mirror --peer "$(addr_of N)" --media-max 1G
clips=$(feed_count A)
wait_for 60 "$clips clips on N" has_clips N "$clips"
wait_for 60 "$clips clips on P through N" has_clips P "$clips"
[ "$(chunks_of N)" -eq 0 ] || fail "N with --media none stores $(chunks_of N) chunks"
pass "a node with --media none stores no chunks and serves the records"

# --- retraction frees media that no other clip uses ------------------

chunks_bytes() {
	status_value "$1" 's["media"]["bytes"]'
}
has_chunks_exactly() {
	[ "$(chunks_of "$1")" -eq "$2" ]
}
a_before=$(chunks_of A)
r_before=$(chunks_of R)
cm A retract "$one" --as alice >/dev/null
wait_for 30 "the first retraction on R" has_clips R "$(feed_count A)"
[ "$(chunks_of A)" -eq "$a_before" ] ||
	fail "A freed shared chunks after one of two retractions"
[ "$(chunks_of R)" -eq "$r_before" ] ||
	fail "R freed shared chunks after one of two retractions"
cm A retract "$two" --as alice >/dev/null
wait_for 30 "the second retraction on R" has_clips R "$(feed_count A)"
[ "$(chunks_of A)" -eq $((a_before - shared_chunks)) ] ||
	fail "A stores $(chunks_of A) chunks after both retractions, expected $((a_before - shared_chunks))"
wait_for 30 "R to free the shared chunks" \
	has_chunks_exactly R $((r_before - shared_chunks))
pass "shared media stays after one retraction and goes after both"

# --- media nobody serves does not starve newer media ------------------

# D's 40 clips reach E as records only (import copies no media), so
# neither E nor A can serve their media to the mirror S.
new_home D
new_home E
new_home S
cm D key new dave >/dev/null
for i in $(seq 1 40); do
	head -c 12 "$SAMPLES/review-blender.mp4" >"$WORK/dead.mp4"
	head -c 2000 /dev/urandom >>"$WORK/dead.mp4"
	cm D publish "$WORK/dead.mp4" --as dave --product gtin:2000000001012 \
		--title "Dead $i" >/dev/null
done
cm D export -o "$WORK/d.export" 2>/dev/null
cm E import "$WORK/d.export" >/dev/null
start E node --media none
start S mirror --peer "$(addr_of E)" --peer "$(addr_of A)"
wait_for 60 "the 40 dead clips on S" has_clips S $((40 + $(feed_count A)))
make_mp4 "$WORK/fresh.mp4" 1
fresh=$(cm A publish "$WORK/fresh.mp4" --as alice \
	--product gtin:2000000004044 --title "Fresh" --rating 4)
wait_for 30 "the fresh media on S" has_media_of S "$fresh"
pass "media of a new clip arrives while 40 media cannot be fetched"

wait_for 60 "S to give up on the dead media" \
	grep -q "not fetched: " "$WORK/S.log"
stop S
: >"$WORK/S.log"
start S mirror --peer "$(addr_of E)" --peer "$(addr_of A)"
# The start-up scan queues every fetch it starts before it counts as done.
first_scan_done() {
	[ "$(node_status_field S media_scans.done)" -ge 1 ]
}
wait_for 60 "the first media scan of the restarted S" first_scan_done
dead_asked=$(grep -c "fetching media=" "$WORK/S.log" || true)
[ "$dead_asked" -lt 40 ] ||
	fail "S fetched all $dead_asked dead media again after a restart"
pass "S kept the backoff of failed media over a restart ($dead_asked fetched)"
stop S
stop E

# --- media budget -----------------------------------------------------

new_home B
cm B key new bob >/dev/null
make_mp4 "$WORK/own.mp4" 3
own=$(cm B publish "$WORK/own.mp4" --as bob --product gtin:2000000004044 \
	--title "Own" --rating 5)
start B mirror --peer "$(addr_of A)" --media-budget 4M
# Other mirrors may have taken dave's clips from S, so B can contain more
# clips than A's feed.
wait_for 60 "A's clips on B" has_clips_of B A
under_budget() {
	[ "$(chunks_bytes B)" -le $((4 * 1024 * 1024)) ]
}
wait_for 60 "B to evict media over its budget" grep -q "media budget of" "$WORK/B.log"
# Fetches go on while the budget is enforced every second; the stored
# bytes must come down under the budget and stay there.
wait_for 60 "B to get under its budget" under_budget
sleep_until=$((SECONDS + 3))
while [ "$SECONDS" -lt "$sleep_until" ]; do
	under_budget || fail "B stores $(chunks_bytes B) bytes over a 4 MiB budget"
	sleep 0.2
done
has_media_of B "$own" || fail "B evicted the media of its own clip"
pass "B stays under its media budget and keeps its own media"
stop B

for name in A M R Q C N P; do
	stop "$name"
done
pass "every node stopped cleanly on SIGTERM"
finish
