#!/bin/bash
# Inbound connections that finish the CURVE handshake and then send
# nothing, on real processes on 127.0.0.1: mirror M with room for LIMIT
# inbound connections, creator H, and hostile_peer silent opening
# SILENT connections.
#  1. M keeps LIMIT of them open and closes the rest at once, so H's dials
#     are closed too while they last.
#  2. M closes each silent connection once it has sent nothing for the
#     handshake timeout plus the HELLO timeout, counts it in status
#     (limits.connections_silent) and logs it.
#  3. H then connects and delivers a clip.
#  4. Connections that send one HELLO and then nothing (hostile_peer
#     silent --hello) are closed too once their links time out, while
#     H's connection, which a link holds, stays open.
source "$(dirname "$0")/lib.sh"

: "${HOSTILE:?set HOSTILE to the hostile_peer test client}"

LIMIT=8
SILENT=12

new_home M
new_home H
cm H key new honest >/dev/null
# A HELLO timeout of 20 s leaves time to see H's dials closed while the
# silent connections fill M.
start M mirror --set connections_max=$LIMIT --set hello_timeout=20s

"$HOSTILE" --connections $SILENT silent "$(addr_of M)" \
	>"$WORK/silent.out" 2>"$WORK/silent.err" &
silent_pid=$!

silent_wait "$WORK/silent.out"
accepted=$ACCEPTED
[ "$accepted" -eq "$LIMIT" ] ||
	fail "$accepted silent handshakes succeeded, expected $LIMIT"
open_now=$(node_status_field M limits.connections_open)
[ "$open_now" -eq "$LIMIT" ] ||
	fail "M reports $open_now open connections, expected $LIMIT"
pass "M keeps $LIMIT silent connections, closed $((SILENT - LIMIT))"

refused_before=$(node_status_field M limits.connections_refused)
start H node --peer "$(addr_of M)"
id=$(cm H publish "$SAMPLES/photo-backpack.jpg" --as honest \
	--product gtin:2000000004044 --title "Published past silent peers" \
	--rating 4)

# Succeeds once M has closed a connection beyond the silent ones.
h_refused() {
	local refused

	refused=$(node_status_field M limits.connections_refused)
	[ "$refused" -gt "$refused_before" ]
}
wait_for 20 "M to close H's dial while silent connections fill it" h_refused
pass "M closed H's dial while the silent connections filled it"

status=0
wait "$silent_pid" || status=$?
[ "$status" -eq 0 ] ||
	fail "hostile_peer silent: $(cat "$WORK/silent.err")"
read -r _ closed shortest longest < <(grep '^closed ' "$WORK/silent.out")
[ "$closed" -eq "$LIMIT" ] ||
	fail "M closed $closed silent connections, expected $LIMIT"
pass "M closed $LIMIT silent connections ${shortest}-${longest} ms" \
	"after their handshakes"

silent=$(node_status_field M limits.connections_silent)
[ "$silent" -eq "$LIMIT" ] ||
	fail "M counts $silent silent connections, expected $LIMIT"
grep -q "inbound connections\\? that no peer link used" "$WORK/M.log" ||
	fail "M did not log the silent connections it closed"
pass "M counts and logs the silent connections"

wait_for 90 "H's clip on M after the silent connections closed" has_clips M 1
pass "H delivered clip ${id:0:8} to M"

HELLO_ONLY=4
"$HOSTILE" --connections $HELLO_ONLY --hello silent "$(addr_of M)" \
	>"$WORK/silent.out" 2>"$WORK/silent.err" ||
	fail "hostile_peer silent --hello: $(cat "$WORK/silent.err")"
read -r _ closed shortest longest < <(grep '^closed ' "$WORK/silent.out")
[ "$closed" -eq "$HELLO_ONLY" ] ||
	fail "M closed $closed connections with a HELLO, expected $HELLO_ONLY"
silent=$(node_status_field M limits.connections_silent)
[ "$silent" -eq $((LIMIT + HELLO_ONLY)) ] ||
	fail "M counts $silent silent connections," \
		"expected $((LIMIT + HELLO_ONLY)); was H's closed?"
pass "M closed $HELLO_ONLY connections silent after a HELLO" \
	"${shortest}-${longest} ms after their handshakes, and kept H's"

stop H
stop M
pass "M and H stopped cleanly on SIGTERM"
finish
