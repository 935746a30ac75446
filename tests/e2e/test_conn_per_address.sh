#!/bin/bash
# The limit of inbound connections per address, on real processes on
# loopback: hostile_peer silent opens SILENT connections to mirror M from
# 127.0.0.2, which finish the CURVE handshake and send nothing. M keeps
# CM_CONNECTIONS_PER_IP (32) of them and closes the rest at once, so
# creator H, dialling from 127.0.0.1, connects and delivers a clip while
# they are open, long before their silence deadline.
source "$(dirname "$0")/lib.sh"

: "${HOSTILE:?set HOSTILE to the hostile_peer test client}"

PER_ADDRESS=32
SILENT=60

new_home M
new_home H
cm H key new honest >/dev/null
# Room for every silent connection but the limit per address, and a
# HELLO timeout that keeps them open well past the wait for H's clip.
start M mirror --set connections_max=$((SILENT - 4)) --set hello_timeout=120s

"$HOSTILE" --source 127.0.0.2 --connections $SILENT silent "$(addr_of M)" \
	>"$WORK/silent.out" 2>"$WORK/silent.err" &
NODE_PID[silent]=$!

silent_wait "$WORK/silent.out"
accepted=$ACCEPTED
[ "$accepted" -eq "$PER_ADDRESS" ] ||
	fail "$accepted silent handshakes from one address succeeded, expected $PER_ADDRESS"
refused=$(node_status_field M limits.connections_refused_per_address)
[ "$refused" -ge $((SILENT - PER_ADDRESS)) ] ||
	fail "M counts $refused connections over the limit per address, expected $((SILENT - PER_ADDRESS)) or more"
pass "M keeps $PER_ADDRESS connections from one address, refused $refused"

start H node --peer "$(addr_of M)"
id=$(cm H publish "$SAMPLES/photo-backpack.jpg" --as honest \
	--product gtin:2000000004044 --title "Published past one full address" \
	--rating 4)
wait_for 30 "H's clip on M while the silent connections are open" \
	has_clips M 1
kill -0 "${NODE_PID[silent]}" ||
	fail "the silent connections ended before H's clip arrived"
pass "H delivered clip ${id:0:8} to M from another address"

kill "${NODE_PID[silent]}"
wait "${NODE_PID[silent]}" 2>/dev/null || true
unset "NODE_PID[silent]"
stop H
stop M
pass "M and H stopped cleanly on SIGTERM"
finish
