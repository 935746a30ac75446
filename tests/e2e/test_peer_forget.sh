#!/bin/bash
# Stale known peers. A peer that a reached in an earlier run and that is
# gone for good is forgotten after 12 failed dials in a row, in memory
# and in the store. A configured peer that is down as long is kept and
# dialled on.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sync_lib.sh"
source "$(dirname "$0")/peer_lib.sh"

new_home a
new_home d
new_home e
key_d=$(short_key_of d)
key_e=$(short_key_of e)

start d mirror
start a mirror --peer "$(addr_of d)"
wait_for 60 "a to reach d" known_is a "$key_d" state connected
stop a
stop d

# d is now only remembered. e is configured and never runs.
start a mirror --set reconnect_max=1s --peer "$(addr_of e)"
[ "$(known_field a "$key_d" source)" = remembered ] ||
	fail "a lists d with source $(known_field a "$key_d" source)"
forgotten() {
	grep -q "forgetting peer=$key_d .* after 12 failed dials" \
		"$WORK/a.log"
}
wait_for 240 "a to forget d after 12 failed dials" forgotten
[ "$(known_field a "$key_d" state)" = absent ] ||
	fail "a still lists d after forgetting it"
pass "a forgot the remembered d after 12 failed dials"

cm a peer list >"$WORK/a.peers"
if grep -q "$(addr_of d)" "$WORK/a.peers"; then
	fail "the store still lists d: $(cat "$WORK/a.peers")"
fi
pass "d is gone from the store"

# e's dials fail on their own schedule, a few seconds apart from d's.
failed_12() {
	[ "$(known_field a "$key_e" failures)" -ge 12 ]
}
wait_for 60 "the configured e to fail 12 dials" failed_12
[ "$(known_field a "$key_e" source)" = configured ] ||
	fail "a no longer lists the configured e"
pass "a keeps the configured e after $(known_field a "$key_e" failures) failed dials"
finish
