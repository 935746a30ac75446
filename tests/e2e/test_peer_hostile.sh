#!/bin/bash
# Peer exchange against a hostile peer. Mirror a dials an honest mirror b
# (which dials c) and pex_peer, which replies to PEERS_REQ with 32 bogus
# addresses: unusable ones, and fresh keys at ports where nothing listens
# or where a real node with another key listens. It also sends PEERS
# messages that a never requested. a keeps at most 8 candidates from it,
# keeps none of them as known peers after their dials fail, ignores the
# unrequested messages, and still learns c and syncs with b and c.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sync_lib.sh"
source "$(dirname "$0")/peer_lib.sh"
: "${PEX_PEER:?set PEX_PEER to the pex_peer binary}"

new_home a
new_home b
new_home c
key_b=$(short_key_of b)
key_c=$(short_key_of c)
dead_port=$(free_port)

start c mirror
start b mirror --peer "$(addr_of c)"
wait_for 60 "b to reach c" links_up b 1

"$PEX_PEER" "$dead_port" "$(port_of b)" "$(port_of a)" \
	>"$WORK/pex.out" 2>"$WORK/pex.log" &
pex_pid=$!
NODE_PID[pex]=$pex_pid # so that cleanup stops it too
has_address() {
	grep -q '^address ' "$WORK/pex.out"
}
wait_for 30 "pex_peer to bind" has_address
hostile=$(sed -n 's/^address //p' "$WORK/pex.out")
key_h=$(echo "$hostile" | sed 's|^clipmesh://\(........\).*|\1|')

start a mirror --peer "$hostile" --peer "$(addr_of b)"

# Prints "CANDIDATES_FROM_H KNOWN UNVERIFIED ENTRIES UNUSABLE SOURCE_FULL"
# from a's status; KNOWN lists the known peers' keys joined by commas,
# sorted.
exchange_state() {
	cm a status --json | python3 -c '
import json, sys
node = json.load(sys.stdin)["node"]
pex = node["peer_exchange"]
from_h = sum(1 for c in pex["candidates"] if c["from"] == sys.argv[1])
known = ",".join(sorted(p["peer"] for p in node["known_peers"]))
print(from_h, known, pex["unverified"], sum(pex["entries"].values()),
      pex["entries"]["unusable"], pex["entries"]["source_full"])' "$key_h"
}
honest=$(printf '%s\n' "$key_b" "$key_c" "$key_h" | sort | paste -sd,)

# Until every candidate from pex_peer failed its dial, sample a's tables:
# never more than 8 candidates from it, never an unverified known peer.
max_from_h=0
deadline=$((SECONDS + 120))
while :; do
	read -r from_h known unverified entries unusable source_full \
		<<<"$(exchange_state)"
	[ "$from_h" -le 8 ] || fail "a holds $from_h candidates from pex_peer"
	[ "$from_h" -le "$max_from_h" ] || max_from_h=$from_h
	for key in ${known//,/ }; do
		case ",$honest," in
		*",$key,"*) ;;
		*) fail "a keeps unverified peer $key (known: $known)" ;;
		esac
	done
	[ "$unverified" -ge 8 ] && [ "$known" = "$honest" ] && break
	[ "$SECONDS" -lt "$deadline" ] ||
		fail "timed out: $unverified unverified, known $known"
	sleep 0.5
done
pass "a held at most 8 candidates from pex_peer (max seen $max_from_h)"
pass "a dropped $unverified unverified candidates and knows only b, c and pex_peer"

[ "$unusable" -ge 8 ] ||
	fail "a counted $unusable unusable entries, expected 8 (port 0 and 7 addresses)"
[ "$source_full" -ge 1 ] ||
	fail "a counted no entry over the per-peer limit"
pass "a skipped $unusable unusable entries and $source_full over the per-peer limit"

[ "$(known_field a "$key_c" source)" = learned ] ||
	fail "a did not learn c from b"
pass "a learned c from the honest b meanwhile"

# pex_peer keeps sending PEERS that a did not request: a ignores them.
ignored_some() {
	[ "$(grep -c "ignoring PEERS from peer=$key_h: not requested" \
		"$WORK/a.log")" -ge 3 ]
}
wait_for 30 "a to ignore 3 unrequested PEERS" ignored_some
read -r _ _ _ entries_after _ _ <<<"$(exchange_state)"
[ "$entries_after" -eq "$entries" ] ||
	fail "a took entries from unrequested PEERS ($entries, then $entries_after)"
pass "a ignored PEERS messages it did not request"

cm c key new carol >/dev/null
id=$(publish_sample_as c carol 1 "Despite the noise")
wait_for 60 "the clip from c to reach a" holds_clips a 1
cm a show "$id" >/dev/null || fail "a lacks clip $id"
pass "honest sync went on: a clip from c reached a"

# Nothing unverified reached the store: a restart lists the same peers.
stop a
start a mirror
read -r _ known _ _ _ _ <<<"$(exchange_state)"
[ "$known" = "$honest" ] ||
	fail "after a restart a knows $known, expected $honest"
pass "a's stored known peers are b, c and pex_peer only"

unset "NODE_PID[pex]"
kill -TERM "$pex_pid"
wait "$pex_pid" || fail "pex_peer failed: $(cat "$WORK/pex.log")"
grep -q '^answered [1-9]' "$WORK/pex.out" ||
	fail "pex_peer got no PEERS_REQ"
pass "pex_peer exited cleanly"
finish
