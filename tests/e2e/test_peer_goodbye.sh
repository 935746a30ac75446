#!/bin/bash
# GOODBYE: a node that stops cleanly sends GOODBYE to its established
# peers, which drop the link at once instead of after the 10 s liveness
# timeout, and reconnect as for a lost connection once the node is back.
# Checked in both directions (the stopped node dialled, or was dialled),
# and with a peer that is not reading (SIGSTOP), which must not hold up
# the stop. A node that dialled a peer that is killed drops the link when
# the connection closes.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/peer_lib.sh"

new_home a
new_home b
key_a=$(short_key_of a)
key_b=$(short_key_of b)

# Prints "true" or "false" for home NAME's link to PEER, or "absent".
link_connected() {
	cm "$1" status --json | python3 -c '
import json, sys
links = [p for p in json.load(sys.stdin)["node"]["peers"]
         if p["peer"] == sys.argv[1]]
print(str(any(p["connected"] for p in links)).lower() if links else "absent")' "$2"
}

link_is() {
	[ "$(link_connected "$1" "$2")" = "$3" ]
}

# Prints how many links home NAME dropped because PEER sent GOODBYE.
goodbyes_from() {
	grep -c "peer disconnected peer=$2 .*reason=goodbye" "$WORK/$1.log" || true
}

goodbyes_are() {
	[ "$(goodbyes_from "$1" "$2")" -ge "$3" ]
}

# Prints the milliseconds between the last log line of home FROM that
# matches PATTERN_FROM and the last line of home TO that matches
# PATTERN_TO, from their UTC time stamps.
log_gap_ms() {
	python3 - "$(grep "$2" "$WORK/$1.log" | tail -n 1)" \
		"$(grep "$4" "$WORK/$3.log" | tail -n 1)" <<'PY'
import datetime, sys
def ms(line):
    stamp = line.split()[0].rstrip("Z")
    return datetime.datetime.fromisoformat(stamp).timestamp() * 1000
print(int(ms(sys.argv[2]) - ms(sys.argv[1])))
PY
}

start b mirror
start a mirror --peer "$(addr_of b)"
wait_for 60 "a to reach b" known_is a "$key_b" state connected
wait_for 30 "b to list a as connected" link_is b "$key_a" true
pass "a dialled b and both list the link as connected"

# b stops: a drops its outbound link on b's GOODBYE.
stop b
grep -q "sent GOODBYE to 1 peers, skipped 0" "$WORK/b.log" ||
	fail "b did not log its GOODBYE to a"
wait_for 60 "a to drop b" goodbyes_are a "$key_b" 1
if grep -q "peer disconnected peer=$key_b .*reason=timed out" "$WORK/a.log"; then
	fail "a dropped b on the liveness timeout, not on its GOODBYE"
fi
[ "$(link_connected a "$key_b")" = false ] ||
	fail "a's status lists b as $(link_connected a "$key_b") after b's GOODBYE"
[ "$(known_field a "$key_b" state)" != connected ] ||
	fail "a's known peers list b as connected after b's GOODBYE"
echo "b's GOODBYE to a's drop of the link: $(log_gap_ms b 'sent GOODBYE' a \
	"peer disconnected peer=$key_b") ms; to b's stop:" \
	"$(log_gap_ms b 'sent GOODBYE' b 'node: stopped') ms"
pass "a logged b's GOODBYE and lists b as disconnected"

# b starts again: a dials it after its backoff.
start b mirror
wait_for 60 "a to reach b again" known_is a "$key_b" state connected
wait_for 30 "b to list a as connected again" link_is b "$key_a" true
pass "a reconnected to b once b started again"

# a, the node that dialled, stops: b drops its inbound link.
stop a
wait_for 60 "b to drop a" goodbyes_are b "$key_a" 1
[ "$(link_connected b "$key_a")" != true ] ||
	fail "b's status lists a as connected after a's GOODBYE"
echo "a's GOODBYE to b's drop of the link: $(log_gap_ms a 'sent GOODBYE' b \
	"peer disconnected peer=$key_a") ms"
pass "b logged a's GOODBYE and no longer lists a as connected"

# a starts again without --peer: it dials b, which it remembers.
start a mirror
wait_for 60 "a to reach b after its restart" known_is a "$key_b" state connected
wait_for 30 "b to list a as connected after a's restart" link_is b "$key_a" true
pass "a reconnected to b after its own restart"

# b stops reading (SIGSTOP). a's stop must still end, and b drops the
# link on the GOODBYE once it runs again.
kill -STOP "${NODE_PID[b]}"
pid_a=${NODE_PID[a]}
kill -TERM "$pid_a"
wait_for 60 "a to exit while b is stopped" exited "$pid_a"
status=0
wait "$pid_a" || status=$?
unset "NODE_PID[a]"
[ "$status" -eq 0 ] || fail "a exited with status $status while b was stopped"
kill -CONT "${NODE_PID[b]}"
echo "a's stop with b stopped: 'stopped'" \
	"$(log_gap_ms a 'sent GOODBYE' a 'node: stopped') ms after the GOODBYE"
pass "a stopped while its peer b was not reading"
wait_for 60 "b to read a's second GOODBYE" goodbyes_are b "$key_a" 2
pass "b dropped a's link on the GOODBYE it read after SIGCONT"

# b is killed and sends no GOODBYE: a, which dialled it, drops the link
# when the kernel closes b's end of the connection, not on the liveness
# timeout.
start a mirror
wait_for 60 "a to reach b before the kill" known_is a "$key_b" state connected
kill -KILL "${NODE_PID[b]}"
wait "${NODE_PID[b]}" 2>/dev/null || true
unset "NODE_PID[b]"
wait_for 60 "a to drop the killed b" grep -q \
	"peer disconnected peer=$key_b .*reason=connection closed" "$WORK/a.log"
if grep -q "peer disconnected peer=$key_b .*reason=timed out" "$WORK/a.log"; then
	fail "a dropped the killed b on the liveness timeout"
fi
pass "a dropped the link to the killed b when its connection closed"
start b mirror
wait_for 60 "a to reach b after the kill" known_is a "$key_b" state connected
pass "a reconnected to b once b started again"
finish
