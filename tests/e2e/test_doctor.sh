#!/bin/bash
# clipmesh doctor: a clean home passes every check. A key readable by
# others, damaged key files, a bad config line, an unreachable peer and a port held by
# another program each fail with a fix and exit 1. A running node's own
# port and its clock check pass, and a node that does not reply is
# named with its pid. A peer whose clock reads 2 minutes ahead
# (the testing setting test_clock_offset) fails the clock check on both
# sides, while a clean pair passes it.
source "$(dirname "$0")/lib.sh"

# Runs doctor on home NAME; sets OUT and STATUS.
doctor() {
	STATUS=0
	OUT=$(cm "$1" doctor "${@:2}" 2>&1) || STATUS=$?
}

# Fails unless OUT has a line starting with WORD (OK or FAIL) for CHECK
# that contains TEXT.
expect_line() {
	local word=$1 check=$2 text=$3
	grep -E "^$word +$check " <<<"$OUT" | grep -qF -- "$text" ||
		fail "no '$word $check ... $text' line in:"$'\n'"$OUT"
}

new_home a
doctor a
[ "$STATUS" -eq 0 ] || fail "doctor exited $STATUS on a clean home:"$'\n'"$OUT"
expect_line OK "key mode" "node.key mode 600"
expect_line OK config "parses"
expect_line OK store "0 problems"
expect_line OK listen "is free"
expect_line OK clock "no node runs"
if grep -q '^FAIL' <<<"$OUT"; then fail "clean home has a FAIL line"; fi
pass "clean home: every check OK, exit 0"

cm a key new alice >/dev/null
chmod 644 "$WORK/a/keys/alice.key"
doctor a --quick
[ "$STATUS" -eq 1 ] || fail "doctor exited $STATUS with a 0644 key"
expect_line FAIL "key mode" "alice.key mode 644; fix: chmod 600 $WORK/a/keys/alice.key"
pass "a key readable by others fails with its chmod"
chmod 600 "$WORK/a/keys/alice.key"

# An OK line carries no problem: a key whose mode fails is not also
# reported as a readable key.
chmod 644 "$WORK/a/node.key"
doctor a --quick
expect_line FAIL "key mode" "node.key mode 644; fix: chmod 600 $WORK/a/node.key"
if grep '^OK' <<<"$OUT" | grep -qi "readable by others\|chmod"; then
	fail "an OK line names a problem:"$'\n'"$OUT"
fi
pass "a key with a wrong mode has no OK line"
chmod 600 "$WORK/a/node.key"

# A home or keys/ folder that others can read fails with its chmod.
chmod 755 "$WORK/a" "$WORK/a/keys"
doctor a --quick
[ "$STATUS" -eq 1 ] || fail "doctor exited $STATUS with a 0755 home"
expect_line FAIL "home mode" "$WORK/a mode 755; fix: chmod 700 $WORK/a"
expect_line FAIL "home mode" "$WORK/a/keys mode 755; fix: chmod 700 $WORK/a/keys"
pass "folders readable by others fail with their chmod"
chmod 700 "$WORK/a" "$WORK/a/keys"

# init makes an existing folder that it adopts private, and prints a line
# about it only when it changed the mode.
mkdir -m 755 "$WORK/adopted"
out=$(cm adopted init)
grep -qx "set mode 700 on home $WORK/adopted (it was 0755), so that only its owner can read it" <<<"$out" ||
	fail "init does not report the mode it set: $out"
[ "$(stat -c %a "$WORK/adopted")" = 700 ] ||
	fail "init left $WORK/adopted at mode $(stat -c %a "$WORK/adopted")"
printf 'listen = tcp://127.0.0.1:%s\n' "$(free_port)" >>"$WORK/adopted/config"
doctor adopted --quick
expect_line OK "home mode" "$WORK/adopted mode 700"
out=$(cm adopted init)
[ "$out" = "already initialised: home $WORK/adopted" ] ||
	fail "init on a private home printed: $out"
pass "init sets mode 700 on a folder it adopts"

# Damaged key files: the node could not start, and alice could not sign.
cp "$WORK/a/node.key" "$WORK/a/node.key.good"
cp "$WORK/a/keys/alice.key" "$WORK/a/alice.key.good"
head -c 10 /dev/urandom >"$WORK/a/node.key"
echo garbage >"$WORK/a/keys/alice.key"
doctor a --quick
[ "$STATUS" -eq 1 ] || fail "doctor exited $STATUS with damaged key files"
expect_line FAIL key "node.key is not a key file of 32 bytes; fix: restore node.key"
expect_line FAIL key "alice.key is not a key file of 64 bytes; fix: restore keys/alice.key"
pass "damaged key files fail with what to restore"
cp "$WORK/a/node.key.good" "$WORK/a/node.key"
cp "$WORK/a/alice.key.good" "$WORK/a/keys/alice.key"

# A peer on a closed loopback port: bind a port, close it, name it.
# The key is another home's, because peer add rejects this node's own.
new_home other
closed=$(free_port)
peer="clipmesh://$(cat "$WORK/other/node.pub")@127.0.0.1:$closed"
cm a peer add "$peer"
doctor a --quick
[ "$STATUS" -eq 1 ] || fail "doctor exited $STATUS with an unreachable peer"
expect_line FAIL peer "127.0.0.1:$closed unreachable: Connection refused"
expect_line FAIL peer "fix: check that the peer's node runs"
pass "an unreachable peer fails with what to check"

# The same check passes for a peer that runs.
new_home b
start b node
echo "peer = $(addr_of b)" >>"$WORK/a/config"
doctor a --quick
expect_line OK peer "$(addr_of b) accepts TCP connections"
pass "a running peer is reachable"

# A bad config line fails the config check, named by line.
cp "$WORK/a/config" "$WORK/a/config.good"
echo "media_max = lots" >>"$WORK/a/config"
lines=$(wc -l <"$WORK/a/config")
doctor a --quick
[ "$STATUS" -eq 1 ] || fail "doctor exited $STATUS with a bad config"
expect_line FAIL config "config:$lines: invalid value 'lots' for media_max"
pass "a bad config line fails with its line number"
cp "$WORK/a/config.good" "$WORK/a/config"

# A listen port held by another process fails; the node's own passes.
held=$(grep -o '127.0.0.1:[0-9]*' <<<"$(grep '^listen' "$WORK/b/config" | tail -1)")
doctor b --quick
expect_line OK listen "$held held by this home's node"
expect_line OK clock "not checked: no peer connected"
pass "the running node's listen port passes"

# A node that holds its home's lock but does not reply (stopped with
# SIGSTOP) is reported as such, with its pid, not as not running.
pid_b=${NODE_PID[b]}
# The checks run after SIGCONT, so that a failure leaves no stopped node
# that the cleanup's SIGTERM cannot end.
kill -STOP "$pid_b"
out=$(cm b status 2>&1) || true
silent_pid=$(cm b status --json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("node_silent", {}).get("pid"))') || true
doctor b --quick
kill -CONT "$pid_b"
grep -qF "node       did not answer within 2 s, so it may be stopped or overloaded (pid $pid_b;" <<<"$out" ||
	fail "status does not report the silent node:"$'\n'"$out"
if grep -q "not running" <<<"$out"; then
	fail "status calls a stopped node not running:"$'\n'"$out"
fi
[ "$silent_pid" = "$pid_b" ] ||
	fail "status --json names pid $silent_pid for the silent node, expected $pid_b"
expect_line FAIL node "the node (pid $pid_b) did not answer within 2 s"
expect_line FAIL node "kill -CONT $pid_b"
expect_line OK listen "$held held by this home's node (pid $pid_b)"
if grep -q "in use by another program\|no node runs" <<<"$OUT"; then
	fail "doctor calls a stopped node another program:"$'\n'"$OUT"
fi
pass "a node that does not answer is reported with its pid"
stop b
python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
time.sleep(60)
' "${held#*:}" &
holder=$!
wait_for 10 "the port to be taken" \
	python3 -c 'import socket,sys; s=socket.socket(); s.connect(("127.0.0.1", int(sys.argv[1])))' "${held#*:}"
doctor b --quick
kill "$holder"
[ "$STATUS" -eq 1 ] || fail "doctor exited $STATUS with the port taken"
expect_line FAIL listen "$held is in use by another program"
pass "a listen port held by another program fails"

# Prints the first 8 hex digits of home NAME's node key, as status and
# doctor name peers.
short_key() {
	head -c 8 "$WORK/$1/node.pub"
}

# Prints the clock offset (ms) that home NAME's node measured for its
# connected peer SHORT; fails while it has none.
clock_offset() {
	cm "$1" status --json | python3 -c '
import json, sys
for p in json.load(sys.stdin)["node"]["peers"]:
    if p["peer"] == sys.argv[1] and p["connected"] and \
            p["clock_offset_ms"] is not None:
        print(p["clock_offset_ms"])
        sys.exit(0)
sys.exit(1)' "$2"
}

# Fails unless home NAME's offset for peer SHORT is within 5 s of WANT ms.
expect_offset() {
	local name=$1 short=$2 want=$3 got
	got=$(clock_offset "$name" "$short") ||
		fail "$name has no clock offset for peer $short"
	[ $((got - want)) -le 5000 ] && [ $((want - got)) -le 5000 ] ||
		fail "$name measured peer $short at $got ms, expected about $want"
}

# The testing setting takes a signed duration up to a day, nothing else.
for bad in 2x 25h --1s; do
	status=0
	out=$(cm a node --set "test_clock_offset=$bad" 2>&1) || status=$?
	[ "$status" -eq 2 ] ||
		fail "node exited $status on test_clock_offset=$bad: $out"
	[[ "$out" == *"invalid --set test_clock_offset=$bad: expected a duration"* ]] ||
		fail "no usage error for test_clock_offset=$bad: $out"
done
pass "test_clock_offset rejects bad values with exit 2"

# A clean pair: each side measures the other's clock within the limit.
new_home c
new_home d
start c node
start d node --peer "$(addr_of c)"
wait_for 30 "d to measure c's clock" clock_offset d "$(short_key c)"
wait_for 30 "c to measure d's clock" clock_offset c "$(short_key d)"
expect_offset d "$(short_key c)" 0
expect_offset c "$(short_key d)" 0
for home in c d; do
	doctor "$home" --quick
	[ "$STATUS" -eq 0 ] ||
		fail "doctor exited $STATUS on $home of a clean pair:"$'\n'"$OUT"
	expect_line OK clock "1 peer within 60 s of this clock"
done
pass "a clean pair passes the clock check on both sides"

# e's clock reads 2 minutes ahead; it connects to both c and d.
new_home e
start e node --peer "$(addr_of c)" --peer "$(addr_of d)" \
	--set test_clock_offset=2m
wait_for 30 "c to measure e's clock" clock_offset c "$(short_key e)"
wait_for 30 "e to measure d's clock" clock_offset e "$(short_key d)"
expect_offset c "$(short_key e)" 120000
expect_offset e "$(short_key c)" -120000
grep -q "test_clock_offset=120000 ms" "$WORK/e.log" ||
	fail "e did not log that its clock is shifted for testing"
grep -q "peer=$(short_key e) .*clock is [0-9]* ms ahead of this node's" "$WORK/c.log" ||
	fail "c did not log a warning about e's clock"
pass "status and the log show the offset peer on both sides"

doctor c --quick
[ "$STATUS" -eq 1 ] || fail "doctor exited $STATUS on c with e's clock ahead:"$'\n'"$OUT"
expect_line FAIL clock "peer $(short_key e) (127.0.0.1) is 1"
expect_line FAIL clock "s ahead of this clock, over the limit of 60 s; fix: this clock agrees with other peers, so the peer's is likely wrong: run 'timedatectl set-ntp true'"
if grep -qE '^OK +clock ' <<<"$OUT"; then
	fail "c's doctor has an OK clock line besides the FAIL:"$'\n'"$OUT"
fi
[ "$(grep -c '^FAIL  clock' <<<"$OUT")" -eq 1 ] ||
	fail "c's doctor reports more than e:"$'\n'"$OUT"
pass "doctor names the peer whose clock is ahead and exits 1"

doctor e --quick
[ "$STATUS" -eq 1 ] || fail "doctor exited $STATUS on e:"$'\n'"$OUT"
for peer in c d; do
	expect_line FAIL clock "peer $(short_key "$peer") (tcp://127.0.0.1:"
done
expect_line FAIL clock "s behind this clock"
expect_line FAIL clock "this clock disagrees with every peer in the same direction"
pass "a clock off from every peer is named as the likely wrong one"

# A data file cut short by a bad disk fails the store check with the
# restore advice, not a hint about permissions or disk space.
new_home cut
cm cut key new carol >/dev/null
cm cut publish "$SAMPLES/review-blender.mp4" --as carol \
	--product gtin:2000000001012 --title "cut short" >/dev/null
truncate -s 8192 "$WORK/cut/store/data.mdb"
doctor cut --quick
[ "$STATUS" -eq 1 ] || fail "doctor exited $STATUS on a cut store:"$'\n'"$OUT"
expect_line FAIL store "cut short"
expect_line FAIL store "fix: restore the store from a backup"
pass "a store file cut short fails with the restore advice"

finish
