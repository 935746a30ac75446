#!/bin/bash
# Reconnect backoff: a configured peer that is down is dialled with
# growing gaps, not at a fixed rate. Nothing listens on its port, so each
# TCP connect is refused and the dial fails at once, without waiting for
# the dial timeout. A backoff that doubles up to reconnect_max follows
# each failure. Once the peer starts, it is reached within that cap. A
# listener that accepts TCP and never answers still fails each dial
# after the dial timeout.
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
# Each refused dial fails at once, then waits 1 s, 2 s, 4 s and 8 s of
# backoff, of which up to half is taken off at random.
python3 - "${gap[@]}" <<'PY' || fail "gaps $gaps do not grow as the backoff doubles"
import sys
gaps = [float(g) for g in sys.argv[1:]]
for i, g in enumerate(gaps):
    backoff = min(2 ** i, 8)
    assert g >= backoff / 2 - 0.05, "gap %d is shorter than half its backoff" % i
assert gaps[3] >= gaps[0] + 0.9, "the fourth gap is not longer than the first"
PY
pass "a dialled the stopped d with growing gaps ($gaps s)"

python3 - "${gap[@]}" <<'PY' || fail "a gap of $gaps is over the cap"
import sys
assert max(float(g) for g in sys.argv[1:]) <= 8 + 2.5
PY
pass "no gap exceeds the ${cap_s} s cap"

refused=$(grep -c "dial failed: TCP connect failed (refused or unreachable), peer=$key_d " \
	"$WORK/a.log" || true)
[ "$refused" -ge 5 ] ||
	fail "a logged $refused refused dials of d, expected 5 or more"
if grep -q "dial failed: no HELLO in .* peer=$key_d " "$WORK/a.log"; then
	fail "a waited for the dial timeout on a refused connection to d"
fi
[ "$(known_field a "$key_d" dial_error)" = connect_failed ] ||
	fail "status gives d's dial error as $(known_field a "$key_d" dial_error)"
cm a status >"$WORK/status.txt" || fail "status of a failed"
grep -qE "^  $key_d +(waiting|dialling) .*failed dials [0-9]+, last connect_failed" \
	"$WORK/status.txt" ||
	fail "status text does not show d's failed dials: $(cat "$WORK/status.txt")"
# For the record only: how long each refused dial took to fail.
dial_to_failure=$(grep -E "(dialling|dial failed: .*) peer=$key_d " "$WORK/a.log" |
	python3 -c '
import datetime, sys
t = [datetime.datetime.fromisoformat(l.split()[0].rstrip("Z")).timestamp()
     for l in sys.stdin]
print(" ".join("%d" % ((b - a) * 1000) for a, b in zip(t[0::2], t[1::2])))')
echo "from each dial of d to its failure (ms): $dial_to_failure"
pass "each refused dial of d failed at once, and status says connect_failed"

failures=$(known_field a "$key_d" failures)
[ "$failures" -ge 4 ] || fail "a counts $failures failures of d, expected 4 or more"
next=$(known_field a "$key_d" next_dial_ms)
[ "$next" = None ] || [ "$next" -le $((cap_s * 1000)) ] ||
	fail "a waits $next ms for its next dial of d, over the cap"
[ "$(known_field a "$key_d" source)" = configured ] ||
	fail "d is not listed as configured"
pass "status lists d as configured with $failures failures"

grep -q "dial failed: .* peer=$key_d .*failures=4, next dial in" \
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
[ "$(known_field a "$key_d" dial_error)" = None ] ||
	fail "d's dial error was not cleared by its HELLO"
pass "a reached d within the backoff cap once d started"

# A listener that accepts TCP and never sends a byte: the connection
# stays up, so only the dial timeout ends the dial.
start_silent_listener
key_hex=$(addr_of d | sed 's|^clipmesh://\([0-9a-f]*\)@.*|\1|')
stop a
start a mirror --set reconnect_max=${cap_s}s \
	--peer "clipmesh://$key_hex@127.0.0.1:$SILENT_PORT"
timed_out() {
	grep -q "dial failed: no HELLO in 5000 ms, peer=$key_d .*127.0.0.1:$SILENT_PORT" \
		"$WORK/a.log"
}
wait_for 60 "a's dial of the silent listener to time out" timed_out
[ "$(known_field a "$key_d" dial_error)" = no_hello_in_time ] ||
	fail "status gives the silent dial's error as" \
		"$(known_field a "$key_d" dial_error)"
pass "a dial to a listener that never answers still ends at the dial timeout"
finish
