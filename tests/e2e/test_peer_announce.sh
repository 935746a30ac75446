#!/bin/bash
# A node that only accepts connections still shares its peers. Mirror m
# has no --peer. Mirrors a and b dial it, and their HELLOs name the port
# where each listens. m dials each address once, gets the HELLO of the
# right key, closes that connection and keeps the address. Mirror c,
# started later with only --peer m, learns a and b from m and connects
# to them. Two clients that announce ports where no node of their key
# listens (a's port, and one where nothing listens) are dialled, fail
# the check, and are shared with no node.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sync_lib.sh"
source "$(dirname "$0")/peer_lib.sh"
: "${HOSTILE:?set HOSTILE to the hostile_peer test client}"

new_home m
new_home a
new_home b
new_home c
key_a=$(short_key_of a)
key_b=$(short_key_of b)

# Prints the number of home NAME's links in DIRECTION (in or out).
links_in_direction() {
	cm "$1" status --json | python3 -c '
import json, sys
peers = json.load(sys.stdin)["node"]["peers"]
print(sum(1 for p in peers if p["direction"] == sys.argv[1]))' "$2"
}

# Prints counter PATH of home NAME's peer exchange status.
pex_counter() {
	node_status_field "$1" "peer_exchange.$2"
}

start m mirror
start a mirror --peer "$(addr_of m)"
start b mirror --peer "$(addr_of m)"
for key in "$key_a" "$key_b"; do
	wait_for 60 "m to check the address of $key" known_is m "$key" source learned
done
grep -q "peer=$key_a listens at 127.0.0.1:$(port_of a) as it announced" \
	"$WORK/m.log" || fail "m's log lacks the check of a's address"
no_outbound() {
	[ "$(links_in_direction m out)" = 0 ]
}
wait_for 30 "m to close the connections that checked the addresses" no_outbound
[ "$(links_in_direction m in)" -ge 2 ] ||
	fail "m lost its inbound links from a and b"
pass "m checked where a and b listen and kept only their inbound links"

# Two clients announce ports where no node of their key listens: a's
# port (a real node with another key) and a closed one.
dead_port=$(free_port)
for port in "$(port_of a)" "$dead_port"; do
	"$HOSTILE" --port "$port" announce "$(addr_of m)" \
		>"$WORK/announce.$port.out" 2>&1 &
	NODE_PID[announce_$port]=$!
done
for port in "$(port_of a)" "$dead_port"; do
	wait_for 30 "the client announcing port $port" \
		grep -q '^ready$' "$WORK/announce.$port.out"
done
checks_failed() {
	[ "$(pex_counter m unverified)" -ge 2 ]
}
wait_for 60 "m to fail both checks" checks_failed
taken=$(pex_counter m announced.taken)
[ "$taken" -ge 4 ] || fail "m took $taken announced addresses, expected 4"
for port in "$(port_of a)" "$dead_port"; do
	key_h=$(sed -n 's/^peer \(........\).*/\1/p' "$WORK/announce.$port.out")
	[ -n "$key_h" ] || fail "no key in $(cat "$WORK/announce.$port.out")"
	[ "$(known_field m "$key_h" source)" = absent ] ||
		fail "m keeps the client announcing port $port as a known peer"
	HOSTILE_KEYS+=("$key_h")
done
pass "m dropped both addresses that failed the check"

start c mirror --peer "$(addr_of m)"
for key in "$key_a" "$key_b"; do
	wait_for 60 "c to connect to $key" known_is c "$key" state connected
	[ "$(known_field c "$key" source)" = learned ] ||
		fail "c lists $key with source $(known_field c "$key" source)"
done
for key in "${HOSTILE_KEYS[@]}"; do
	[ "$(known_field c "$key" source)" = absent ] ||
		fail "c learned the client $key, whose address failed the check"
	grep -q "$key" "$WORK/c.log" &&
		fail "c heard of the client $key: $(grep "$key" "$WORK/c.log")"
done
pass "c learned a and b from m, which dials no peer, and no client"

for port in "$(port_of a)" "$dead_port"; do
	kill -TERM "${NODE_PID[announce_$port]}"
	wait "${NODE_PID[announce_$port]}" ||
		fail "hostile_peer announce failed: $(cat "$WORK/announce.$port.out")"
	unset "NODE_PID[announce_$port]"
done
for name in c b a m; do
	stop "$name"
done
