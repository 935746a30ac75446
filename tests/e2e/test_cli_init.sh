#!/bin/bash
# init on existing folders: it takes only an empty folder or a home, keeps
# the mode of a folder that others use, and repairs a lost node.pub from
# node.key without making a new node identity.
source "$(dirname "$0")/lib.sh"

# Runs clipmesh on home NAME and stores its exit status in STATUS.
run() {
	STATUS=0
	cm "$@" >"$WORK/out" 2>"$WORK/err" || STATUS=$?
}

# A shared folder with another file in it is not a home: init rejects it
# and writes nothing into it.
mkdir -m 1777 "$WORK/shared"
touch "$WORK/shared/other"
run shared init
[ "$STATUS" -eq 1 ] || fail "init on a folder of other files: exit $STATUS"
grep -qF "$WORK/shared is not empty and is not a clipmesh home" "$WORK/err" ||
	fail "init does not name the folder: $(cat "$WORK/err")"
grep -qF "new or empty folder" "$WORK/err" ||
	fail "init does not suggest another folder: $(cat "$WORK/err")"
[ "$(stat -c %a "$WORK/shared")" = 1777 ] ||
	fail "init changed the mode to $(stat -c %a "$WORK/shared")"
[ "$(ls -A "$WORK/shared")" = other ] ||
	fail "init wrote into the folder: $(ls -A "$WORK/shared")"
pass "init rejects a folder that holds other files"

# An empty folder becomes the home, and the old mode prints in full.
mkdir -m 1777 "$WORK/empty"
run empty init
[ "$STATUS" -eq 0 ] || fail "init on an empty folder: exit $STATUS: $(cat "$WORK/err")"
grep -qx "set mode 700 on home $WORK/empty (it was 1777), so that only its owner can read it" "$WORK/out" ||
	fail "init does not print the whole old mode: $(cat "$WORK/out")"
pass "init prints the special bits of the mode it replaced"

# An init that stopped part way left only home files: init finishes it.
mkdir -m 700 "$WORK/partial" "$WORK/partial/store" "$WORK/partial/keys"
run partial init
[ "$STATUS" -eq 0 ] || fail "init on a partial home: exit $STATUS: $(cat "$WORK/err")"
[ -f "$WORK/partial/node.key" ] || fail "init did not finish a partial home"
pass "init finishes a home that holds only home files"

# Hidden files (the shell history of a service user whose login folder
# is the home) and lost+found (a home on a file system of its own) do
# not make a folder foreign.
mkdir -m 700 "$WORK/login" "$WORK/login/lost+found"
touch "$WORK/login/.bash_history"
run login init
[ "$STATUS" -eq 0 ] || fail "init beside hidden files and lost+found: exit $STATUS: $(cat "$WORK/err")"
[ -f "$WORK/login/node.key" ] || fail "init made no node key beside hidden files"
pass "init takes a folder with hidden files and lost+found"

# A home under a parent that another user owns still becomes private:
# the parent, "..", is not one of the home's files.
if [ "$(id -u)" -eq 0 ]; then
	mkdir "$WORK/parent"
	chown 65534 "$WORK/parent"
	mkdir -m 755 "$WORK/parent/home"
	run parent/home init
	[ "$STATUS" -eq 0 ] || fail "init under another user's folder: exit $STATUS: $(cat "$WORK/err")"
	[ "$(stat -c %a "$WORK/parent/home")" = 700 ] ||
		fail "init left mode $(stat -c %a "$WORK/parent/home") under another user's folder: $(cat "$WORK/err")"
	pass "init makes a home private under another user's folder"
fi

# A home keeps its mode when another user has a file in it.
if [ "$(id -u)" -eq 0 ]; then
	cm theirs init >/dev/null
	touch "$WORK/theirs/notes"
	chown 65534 "$WORK/theirs/notes"
	chmod 755 "$WORK/theirs"
	run theirs init
	[ "$STATUS" -eq 0 ] || fail "init on a home with others' files: exit $STATUS"
	[ "$(stat -c %a "$WORK/theirs")" = 755 ] ||
		fail "init changed the mode of a folder with others' files"
	grep -qF "left the home folder $WORK/theirs at mode 0755" "$WORK/err" ||
		fail "init does not say it kept the mode: $(cat "$WORK/err")"
	pass "init keeps the mode of a folder with others' files"
fi

# A lost node.pub is written again from node.key, with the same key.
cm A init >/dev/null
pub=$(cat "$WORK/A/node.pub")
id_before=$(cm A id --listen tcp://127.0.0.1:9)
rm "$WORK/A/node.pub"
run A id --listen tcp://127.0.0.1:9
[ "$STATUS" -eq 1 ] || fail "id without node.pub: exit $STATUS"
grep -qF "run clipmesh init to write it from node.key" "$WORK/err" ||
	fail "a missing node.pub has no hint: $(cat "$WORK/err")"
if grep -q -- "--listen" "$WORK/err"; then
	fail "id blames --listen for a missing node.pub: $(cat "$WORK/err")"
fi
run A doctor --quick
grep -qF "fix: run 'clipmesh init' to write node.pub from node.key" "$WORK/out" ||
	fail "doctor does not point to init: $(cat "$WORK/out")"
if grep -q "new node key" "$WORK/out"; then
	fail "doctor advises a new node key for a missing node.pub"
fi
run A init
[ "$STATUS" -eq 0 ] || fail "init without node.pub: exit $STATUS: $(cat "$WORK/err")"
grep -qx "wrote the missing node.pub from node.key" "$WORK/out" ||
	fail "init does not say it wrote node.pub: $(cat "$WORK/out")"
[ "$(cat "$WORK/A/node.pub")" = "$pub" ] ||
	fail "node.pub differs from the one node.key belongs to"
[ "$(cm A id --listen tcp://127.0.0.1:9)" = "$id_before" ] ||
	fail "the node's address changed"
pass "init writes a missing node.pub from node.key"

# A damaged node.pub: id names the file and how to write it again.
cp "$WORK/A/node.pub" "$WORK/node.pub.good"
echo junk >"$WORK/A/node.pub"
run A id --listen tcp://127.0.0.1:9
[ "$STATUS" -eq 1 ] || fail "id with a damaged node.pub: exit $STATUS"
grep -qF "$WORK/A/node.pub" "$WORK/err" ||
	fail "id does not name node.pub: $(cat "$WORK/err")"
if grep -q -- "--listen" "$WORK/err"; then
	fail "id blames --listen for a damaged node.pub: $(cat "$WORK/err")"
fi
grep -qF "'clipmesh init' writes node.pub again" "$WORK/err" ||
	fail "id gives no fix for a damaged node.pub: $(cat "$WORK/err")"
cp "$WORK/node.pub.good" "$WORK/A/node.pub"
pass "id with a damaged node.pub points to init"

# node.pub without node.key: a new key pair would change the node's
# identity, so init stops and explains how to choose that.
mv "$WORK/A/node.key" "$WORK/node.key.saved"
run A init
[ "$STATUS" -eq 1 ] || fail "init without node.key: exit $STATUS"
grep -qF "move node.pub away and run clipmesh init to make a new node key" "$WORK/err" ||
	fail "init gives no way out: $(cat "$WORK/err")"
grep -qF "changes this node's identity" "$WORK/err" ||
	fail "init does not warn about the identity: $(cat "$WORK/err")"
[ ! -e "$WORK/A/node.key" ] || fail "init made a new node.key"
[ "$(cat "$WORK/A/node.pub")" = "$pub" ] || fail "init replaced node.pub"
pass "init without node.key keeps node.pub and explains"

finish
