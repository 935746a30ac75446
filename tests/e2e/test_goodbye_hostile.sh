#!/bin/bash
# A hostile peer that ends each burst of badly signed records with
# GOODBYE and comes back with the same key on a new connection. GOODBYE
# must not reset the key's score: the key ends up banned, as one that
# reconnects without GOODBYE does (test_hostile.sh, reconnect-forged).
source "$(dirname "$0")/lib.sh"

: "${HOSTILE:?set HOSTILE to the hostile_peer test client}"

new_home M
start M mirror
log=$WORK/hostile.log

status=0
"$HOSTILE" goodbye-forged "$(addr_of M)" >"$log" 2>&1 || status=$?
[ "$status" -eq 0 ] ||
	fail "hostile_peer goodbye-forged exited $status: $(grep hostile_peer: "$log")"
sed -n "s/^ok - /hostile_peer: /p" "$log"
peer=$(awk '$1 == "peer" { print substr($2, 1, 8); exit }' "$log")
grep -q "banned peer=$peer" "$WORK/M.log" ||
	fail "M did not log a ban of peer $peer"
node_running M || fail "M stopped during the attack"
pass "a key that sends GOODBYE after bad records is still banned"

finish
