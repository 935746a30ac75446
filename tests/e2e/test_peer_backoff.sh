#!/bin/bash
# Reconnect backoff: a configured peer that is down is dialled with
# growing gaps, not at a fixed rate. Each dial waits for a HELLO, then a
# backoff that doubles up to reconnect_max. Once the peer starts, it is
# reached within that cap.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sync_lib.sh"
source "$(dirname "$0")/peer_lib.sh"

cap_s=8
new_home a
new_home d
key_d=$(short_key_of d)
start a mirror --set reconnect_max=${cap_s}s --peer "$(addr_of d)"

# Prints the times (seconds, from a's log) at which a dialled d.
dial_times() {
	grep "dialling peer=$key_d " "$WORK/a.log" | python3 -c '
import datetime, sys
for line in sys.stdin:
    stamp = line.split()[0].rstrip("Z")
    print(datetime.datetime.fromisoformat(stamp).timestamp())'
}
dialled_times() {
	[ "$(dial_times | wc -l)" -ge "$1" ]
}
wait_for 120 "a to dial the stopped d 5 times" dialled_times 5

gaps=$(dial_times | python3 -c '
import sys
t = [float(x) for x in sys.stdin]
print(" ".join("%.2f" % (b - a) for a, b in zip(t, t[1:])))')
echo "gaps between dials of d (s): $gaps"
read -r -a gap <<<"$gaps"
# Each dial waits 5 s for a HELLO, then 1 s, 2 s, 4 s and 8 s of
# backoff, of which up to half is taken off at random.
python3 - "${gap[@]}" <<'PY' || fail "gaps $gaps do not grow as the backoff doubles"
import sys
gaps = [float(g) for g in sys.argv[1:]]
assert all(g >= 5.4 for g in gaps), "a gap is shorter than the dial timeout"
assert gaps[3] >= gaps[0] + 2.5, "the fourth gap is not longer than the first"
assert gaps[2] >= 6.9, "the third gap is shorter than its backoff"
PY
pass "a dialled the stopped d with growing gaps ($gaps s)"

python3 - "${gap[@]}" <<'PY' || fail "a gap of $gaps is over the cap"
import sys
assert max(float(g) for g in sys.argv[1:]) <= 5 + 8 + 2.5
PY
pass "no gap exceeds the dial timeout plus the ${cap_s} s cap"

failures=$(known_field a "$key_d" failures)
[ "$failures" -ge 4 ] || fail "a counts $failures failures of d, expected 4 or more"
next=$(known_field a "$key_d" next_dial_ms)
[ "$next" = None ] || [ "$next" -le $((cap_s * 1000)) ] ||
	fail "a waits $next ms for its next dial of d, over the cap"
[ "$(known_field a "$key_d" source)" = configured ] ||
	fail "d is not listed as configured"
pass "status lists d as configured with $failures failures"

grep -q "dial failed: no HELLO from peer=$key_d .*failures=4, next dial in" \
	"$WORK/a.log" || fail "a's log lacks the fourth failed dial of d"
pass "a logged each failed dial with its failure count"

started=$SECONDS
start d mirror
wait_for 60 "a to reach d" known_is a "$key_d" state connected
took=$((SECONDS - started))
echo "a reached d $took s after d was started"
[ "$took" -le $((cap_s + 5 + 5)) ] ||
	fail "a took $took s to reach d, over the cap plus a dial"
[ "$(known_field a "$key_d" failures)" -eq 0 ] ||
	fail "d's failures were not reset by its HELLO"
pass "a reached d within the backoff cap once d started"
finish
