# lib.sh - helpers for end-to-end tests that run real clipmesh processes on
# 127.0.0.1 with real stores in a temporary folder. Source it from a test.
#
# Needs CLIPMESH (the binary) and SAMPLES (the samples folder) in the
# environment; CTest sets both.
set -euo pipefail

: "${CLIPMESH:?set CLIPMESH to the clipmesh binary}"
: "${SAMPLES:?set SAMPLES to the samples folder}"

WORK=$(mktemp -d /tmp/clipmesh-e2e.XXXXXX)
declare -A NODE_PID=()
CHECKS=0
FAILED=0

cleanup() {
	local status=$?
	for name in "${!NODE_PID[@]}"; do
		kill -TERM "${NODE_PID[$name]}" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ "$status" -ne 0 ] || [ "$FAILED" -ne 0 ]; then
		for log in "$WORK"/*.log; do
			[ -f "$log" ] || continue
			echo "---- $(basename "$log") (last 40 lines)"
			tail -n 40 "$log"
		done
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# Prints a message and ends the test as failed.
fail() {
	echo "FAIL: $*" >&2
	FAILED=1
	exit 1
}

# Records a passed check.
pass() {
	CHECKS=$((CHECKS + 1))
	echo "ok $CHECKS - $*"
}

# Runs clipmesh against home NAME.
cm() {
	local name=$1
	shift
	"$CLIPMESH" --home "$WORK/$name" "$@"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits up to SECONDS for COMMAND to succeed, polling every 0.1 s.
# Usage: wait_for SECONDS DESCRIPTION COMMAND...
wait_for() {
	local seconds=$1 what=$2
	shift 2
	local deadline=$((SECONDS + seconds))
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${seconds}s waiting for: $what"
		sleep 0.1
	done
}

# Creates home NAME listening on a free loopback port.
new_home() {
	local name=$1 port
	port=$(free_port)
	cm "$name" init >/dev/null
	printf 'listen = tcp://127.0.0.1:%s\n' "$port" >>"$WORK/$name/config"
}

# Writes to FILE.hex the hex of record file FILE with its one
# "Countertop" changed to "Xountertop", as a damaged disk could change
# a stored title. Usage: change_title FILE
change_title() {
	python3 - "$1" <<'PY'
import sys
record = open(sys.argv[1], "rb").read()
assert record.count(b"Countertop") == 1, "title not found in the record"
open(sys.argv[1] + ".hex", "w").write(
    record.replace(b"Countertop", b"Xountertop").hex())
PY
}

# Prints the peer address of home NAME.
addr_of() {
	cm "$1" id
}

# Prints field PATH (dot-separated) of the "node" object in the status
# of home NAME. Usage: node_status_field NAME PATH
node_status_field() {
	cm "$1" status --json | python3 -c '
import json, sys
value = json.load(sys.stdin)["node"]
for part in sys.argv[1].split("."):
    value = value[part]
print(value)' "$2"
}

# Waits until `hostile_peer silent`, writing to FILE, reports that every
# handshake ended, then sets ACCEPTED to how many succeeded. Not run in
# $(...), so that a timeout fails the test. Usage: silent_wait FILE
silent_wait() {
	wait_for 60 "the silent connections' handshakes" grep -q '^ready$' "$1"
	ACCEPTED=$(awk '$1 == "accepted" { print $2 }' "$1")
}

node_running() {
	cm "$1" status --json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["node"] else 1)'
}

# Starts home NAME as ROLE (node or mirror) with extra arguments, in the
# background, and waits until its control socket answers.
start() {
	local name=$1 role=$2
	shift 2
	# Started directly, not through cm(), so that $! is clipmesh itself.
	"$CLIPMESH" --home "$WORK/$name" "$role" --log-level debug "$@" \
		>>"$WORK/$name.log" 2>&1 &
	NODE_PID[$name]=$!
	wait_for 30 "$name to start" node_running "$name"
}

# Succeeds once process PID has exited: it is gone, or it is a zombie
# that was not waited for yet.
exited() {
	[ ! -e "/proc/$1" ] || [ "$(awk '{ print $3 }' "/proc/$1/stat")" = Z ]
}

# Stops home NAME's node with SIGTERM and checks that it exits with 0.
stop() {
	local name=$1 pid=${NODE_PID[$1]} status=0
	kill -TERM "$pid"
	wait "$pid" || status=$?
	unset "NODE_PID[$name]"
	[ "$status" -eq 0 ] || fail "$name exited with status $status after SIGTERM"
}

# Prints the number of clips in home NAME's feed.
feed_count() {
	cm "$1" feed --json --limit 1000 | wc -l
}

# Succeeds when home NAME's feed holds exactly N clips.
has_clips() {
	[ "$(feed_count "$1")" -eq "$2" ]
}

# Prints the clip ids of home NAME's feed, sorted.
feed_ids() {
	cm "$1" feed --json --limit 1000 | sed 's/^{"id":"\([0-9a-f]*\)".*/\1/' | sort
}

# Succeeds when home NAME contains every clip listed in home OTHER's feed,
# and possibly more. Usage: has_clips_of NAME OTHER
has_clips_of() {
	local mine theirs
	mine=$(feed_ids "$1") || return 1
	theirs=$(feed_ids "$2") || return 1
	[ -n "$theirs" ] || return 1
	[ -z "$(comm -13 <(echo "$mine") <(echo "$theirs"))" ]
}

# Succeeds when home NAME holds clip ID with all its media.
has_media_of() {
	cm "$1" show "$2" --json | python3 -c '
import json, sys
clip = json.load(sys.stdin)
sys.exit(0 if clip.get("media") and all(m["present"] for m in clip["media"]) else 1)'
}

# Publishes the sample clips as identity AS on home NAME and prints
# "file id" per clip.
publish_samples() {
	local name=$1 as=$2
	local file product title rating lang id
	while IFS=$'\t' read -r file product title rating lang; do
		[ "$file" = file ] && continue
		id=$(cm "$name" publish "$SAMPLES/$file" --as "$as" \
			--product "$product" --title "$title" \
			--rating "$rating" --lang "$lang" --tag review)
		echo "$file $id"
	done <"$SAMPLES/clips.tsv"
}

# Cuts export FILE into files PREFIX.000, PREFIX.001, ... of PER records
# each (after the 16-byte header, each record is a 4-byte big-endian
# length and its bytes).
split_export() {
	python3 - "$1" "$2" "$3" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
head, pos, per, n = data[:16], 16, int(sys.argv[3]), 0
while pos < len(data):
    out = bytearray(head)
    for _ in range(per):
        if pos >= len(data):
            break
        length = int.from_bytes(data[pos:pos + 4], "big")
        out += data[pos:pos + 4 + length]
        pos += 4 + length
    open("%s.%03d" % (sys.argv[2], n), "wb").write(out)
    n += 1
PY
}

# Prints the closing line CTest and CI read.
finish() {
	echo "$CHECKS passed, $FAILED failed"
}
