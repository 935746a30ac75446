#!/bin/bash
# Peer exchange and known peers across restarts. Of mirrors a, b and c, a dials
# b and b dials c: a learns c through b, dials it and keeps it as a
# verified peer, so a clip published on c reaches a after b stopped. A
# restart of a without any --peer dials b and c again from the store.
# Mirror d dials b too, started just before a, but with peers_learned=0:
# by the time a learned c, d must not have asked b for addresses.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sync_lib.sh"
source "$(dirname "$0")/peer_lib.sh"

new_home a
new_home b
new_home c
new_home d
key_b=$(short_key_of b)
key_c=$(short_key_of c)
# A short backoff cap, so that a restarted b is dialled again soon.
fast=(--set reconnect_max=4s)

# c checks no announced address, so that it never learns and dials a:
# a's restart below must find c from its own store.
start c mirror --set peers_learned=0
start b mirror --peer "$(addr_of c)"
wait_for 60 "b to reach c" links_up b 1
start d mirror --set peers_learned=0 --peer "$(addr_of b)"
start a mirror "${fast[@]}" --peer "$(addr_of b)"
wait_for 60 "a to know c" known_is a "$key_c" state connected
[ "$(known_field a "$key_c" source)" = learned ] ||
	fail "a lists c with source $(known_field a "$key_c" source), expected learned"
[ "$(known_field a "$key_b" source)" = configured ] ||
	fail "a lists b with source $(known_field a "$key_b" source), expected configured"
[ "$(known_field a "$key_c" last_seen)" != None ] ||
	fail "a keeps c without a HELLO time"
pass "a learned c through b and connected to it"

[ "$(known_field d "$key_c" source)" = absent ] ||
	fail "d, with peers_learned=0, lists c as $(known_field d "$key_c" source)"
# d may reply to requests (a learns d through b), but sends none.
received='peer=[0-9a-f]* sent [0-9]* address'
grep -q "$received" "$WORK/d.log" &&
	fail "d, with peers_learned=0, requested addresses: $(grep "$received" "$WORK/d.log")"
stop d
pass "a node with peers_learned=0 requested and learned no peer"

grep -q "learned peer=$key_c .*verified by its HELLO" "$WORK/a.log" ||
	fail "a's log lacks the verification of c"
pass "a logged c's verification"

# An exchange of one address logs it in the singular.
grep -qE "sent [0-9]+ address(es)?: [0-9]+ new candidates?$" "$WORK/a.log" ||
	fail "a logged no address exchange"
if grep -hE "sent 1 addresses|: 1 new candidates" "$WORK"/*.log; then
	fail "an exchange of one address is logged in the plural"
fi
pass "address exchanges are logged with the right number"

stop b
cm c key new carol >/dev/null
id=$(publish_sample_as c carol 1 "After b left")
wait_for 60 "the clip from c to reach a without b" holds_clips a 1
cm a show "$id" >/dev/null || fail "a lacks clip $id"
pass "a clip published on c reached a after b stopped"

# Restart a without --peer: b (remembered) and c (learned) come from the
# store. b is down at first, so a waits for it with backoff.
stop a
start a mirror "${fast[@]}"
wait_for 60 "a to reconnect to c" known_is a "$key_c" state connected
[ "$(known_field a "$key_b" source)" = remembered ] ||
	fail "a lists b with source $(known_field a "$key_b" source), expected remembered"
pass "a restarted without --peer reconnected to c from its store"

start b mirror
wait_for 60 "a to reconnect to b" known_is a "$key_b" state connected
pass "a restarted without --peer reached b once b came back"

cm a peer list >"$WORK/a.peers"
grep -q "^$(addr_of c)	learned, 0 failed dials, last seen 20" "$WORK/a.peers" ||
	fail "peer list lacks c as learned: $(cat "$WORK/a.peers")"
grep -q "^$(addr_of b)	configured, 0 failed dials" "$WORK/a.peers" ||
	fail "peer list lacks b as configured: $(cat "$WORK/a.peers")"
pass "peer list shows the peers kept in the store"

id=$(publish_sample_as c carol 2 "After the restart")
wait_for 60 "the second clip from c to reach a" holds_clips a 2
pass "a second clip from c reached the restarted a"

# With peers_max=1 the stored peers share one outbound link: the node
# links one of them at its first tick and leaves the other idle.
stop a
start a mirror --set peers_max=1
states() {
	echo "$(known_field a "$key_b" state) $(known_field a "$key_c" state)"
}
one_connected() {
	case "$(states)" in
	"connected idle" | "idle connected") return 0 ;;
	*) return 1 ;;
	esac
}
wait_for 60 "a to connect one stored peer and leave the other idle" \
	one_connected
pass "a stays within peers_max=1 with two stored peers ($(states))"
finish
