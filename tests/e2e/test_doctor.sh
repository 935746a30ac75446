#!/bin/bash
# clipmesh doctor: a clean home passes every check; a key readable by
# others, a bad config line, an unreachable peer and a port held by
# another program each fail with a fix and exit 1; a running node's own
# port and its clock check pass.
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

# A peer on a closed loopback port: bind a port, close it, name it.
closed=$(free_port)
peer="clipmesh://$(cat "$WORK/a/node.pub")@127.0.0.1:$closed"
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
expect_line OK clock ""
pass "the running node's listen port passes"
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

finish
