#!/bin/bash
# A node that only accepts connections still shares its peers. Mirror m
# has no --peer. Mirrors a and b dial it, and their HELLOs name the port
# where each listens. m dials each address once, gets the HELLO of the
# right key, closes that connection and keeps the address, without
# syncing over it or dialling a and b again, and follows a to a new
# port after a restart. Mirror c, started later
# with only --peer m, learns a and b from m and connects to them. Two
# clients that announce ports where no node of their key listens (a's
# port, and one where nothing listens) are dialled, fail the check, and
# are shared with no node. Clients with fresh keys from one address get
# at most 8 addresses checked at a time, and a node with
# peers_learned=0 checks none.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sync_lib.sh"
source "$(dirname "$0")/peer_lib.sh"
: "${HOSTILE:?set HOSTILE to the hostile_peer test client}"

new_home m
new_home a
new_home b
new_home c
new_home z
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

# Starts hostile_peer announcing PORT to m as client NAME.
announce() {
	"$HOSTILE" --port "$2" announce "$(addr_of m)" >"$WORK/$1.out" 2>&1 &
	NODE_PID[$1]=$!
}

# Prints the short key of client NAME once it sent its HELLO.
client_key() {
	wait_for 30 "client $1 to say HELLO" grep -q '^ready$' "$WORK/$1.out"
	sed -n 's/^peer \(........\).*/\1/p' "$WORK/$1.out"
}

# A sync interval longer than the test, so that every reconciliation
# that m starts comes from a connection.
start m mirror --set sync_interval=10m
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
announce wrong_key "$(port_of a)"
announce closed "$(free_port)"
HOSTILE_KEYS=("$(client_key wrong_key)" "$(client_key closed)")
checks_failed() {
	[ "$(pex_counter m unverified)" -ge 2 ]
}
wait_for 60 "m to fail both checks" checks_failed
for key in "${HOSTILE_KEYS[@]}"; do
	grep -q "peer=$key listens on port .* is a candidate" "$WORK/m.log" ||
		fail "m did not take the address that client $key announced"
	grep -q "learned address not verified: .*peer=$key " "$WORK/m.log" ||
		fail "m's log lacks the failed check of client $key"
	[ "$(known_field m "$key" source)" = absent ] ||
		fail "m keeps the client $key as a known peer"
done
pass "m dropped both addresses that failed the check"

# Ten clients with fresh keys from 127.0.0.1 announce a port that
# accepts TCP and never replies, so that each check waits for its dial
# timeout. With a and b learned there, at most 6 more fit.
start_silent_listener
full_before=$(pex_counter m announced.source_full)
for i in 0 1 2 3 4 5 6 7 8 9; do
	announce "flood$i" "$SILENT_PORT"
done
for i in 0 1 2 3 4 5 6 7 8 9; do
	client_key "flood$i" >/dev/null
done
full=$(($(pex_counter m announced.source_full) - full_before))
[ "$full" -ge 1 ] ||
	fail "m took every address that 10 clients from one host announced"
held=$(cm m status --json | python3 -c '
import json, sys
print(len(json.load(sys.stdin)["node"]["peer_exchange"]["candidates"]))')
[ "$held" -le 6 ] || fail "m holds $held candidates from one host, expected at most 6"
pass "m took at most 8 addresses from one host ($full over the limit)"
for i in 0 1 2 3 4 5 6 7 8 9; do
	kill -TERM "${NODE_PID[flood$i]}"
	wait "${NODE_PID[flood$i]}" || true
	unset "NODE_PID[flood$i]"
done

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

# By now m ran for longer than its dial fill interval many times over.
for key in "$key_a" "$key_b"; do
	redials=$(grep -c "dialling peer=$key .*dial=[0-9]*$" "$WORK/m.log" || true)
	[ "$redials" = 0 ] || fail "m dialled $key $redials times after the check"
	syncs=$(grep -c "reconciliation with peer=$key started" "$WORK/m.log" || true)
	[ "$syncs" = 1 ] ||
		fail "m started $syncs reconciliations with $key, expected 1 (at its first connection)"
done
pass "m neither dialled a and b again nor synced over the checks"

# a comes back on another port: m dials the old one once a is gone, and
# moves a to the new one when a announces it.
stop a
old_dial_failed() {
	grep -q "dial failed: .*peer=$key_a " "$WORK/m.log"
}
wait_for 60 "m to dial a's old port" old_dial_failed
new_port=$(free_port)
printf 'listen = tcp://127.0.0.1:%s\n' "$new_port" >>"$WORK/a/config"
start a mirror --peer "$(addr_of m)"
wait_for 60 "m to move a to port $new_port" \
	known_is m "$key_a" address "127.0.0.1:$new_port"
pass "m moved a to the port it announced after a restart"

# m restarts. a and b dial it again before m may dial its learned peers
# (5 s after its start), so m keeps only their connections.
stop m
start m mirror --set sync_interval=10m
back_in() {
	[ "$(links_in_direction m in)" -ge 2 ]
}
wait_for 60 "a and b to reconnect to m" back_in
# Succeeds once m's last start is more than 6 s ago.
ran_6s() {
	python3 - "$WORK/m.log" <<'PY'
import datetime, sys
started = [l for l in open(sys.argv[1]) if " started role=" in l][-1]
t = datetime.datetime.strptime(started[:23], "%Y-%m-%dT%H:%M:%S.%f")
now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
sys.exit(0 if (now - t).total_seconds() > 6 else 1)
PY
}
wait_for 60 "m's delay for learned dials to end" ran_6s
after_start=$(grep -n " started role=" "$WORK/m.log" | tail -1 | cut -d: -f1)
for key in "$key_a" "$key_b"; do
	tail -n "+$after_start" "$WORK/m.log" | grep -q "dialling peer=$key " &&
		fail "m dialled $key after its restart although $key dialled m"
done
[ "$(links_in_direction m out)" = 0 ] ||
	fail "m has $(links_in_direction m out) outbound links after its restart"
pass "a restarted m keeps a and b on the connections they dialled"

# z, with peers_learned=0, checks nothing that y announces.
start z mirror --set peers_learned=0
new_home y
start y mirror --peer "$(addr_of z)"
wait_for 60 "y to reach z" links_up z 1
taken=$(pex_counter z announced.taken)
[ "$taken" = 0 ] || fail "z, with peers_learned=0, took $taken announced addresses"
grep -q "learned=unverified" "$WORK/z.log" &&
	fail "z, with peers_learned=0, dialled a learned address"
pass "a node with peers_learned=0 checks no announced address"

for name in wrong_key closed; do
	kill -TERM "${NODE_PID[$name]}"
	wait "${NODE_PID[$name]}" ||
		fail "hostile_peer announce failed: $(cat "$WORK/$name.out")"
	unset "NODE_PID[$name]"
done
for name in y z c b a m; do
	stop "$name"
done
