#!/bin/bash
# Opening a store waits for the flock on its folder, which a process holds
# only while LMDB opens the store. A holder that hangs must not block
# commands for ever: they fail with an error that names the folder, and
# work again once the holder is gone.
source "$(dirname "$0")/lib.sh"

new_home A
store=$WORK/A/store

# Holds the flock as a clipmesh process stopped inside mdb_env_open would.
python3 -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(600)' "$store" "$WORK/locked" &
NODE_PID[holder]=$!
wait_for 30 "the holder to take the lock" test -e "$WORK/locked"

cm A feed >"$WORK/out" 2>"$WORK/err" &
feed=$!
wait_for 120 "feed to give up on the held lock" exited "$feed"
status=0
wait "$feed" || status=$?
[ "$status" -eq 1 ] || fail "feed exited $status with the lock held, expected 1"
grep -q "timed out .*lock on store folder $store" "$WORK/err" ||
	fail "feed's error does not name the held folder: $(cat "$WORK/err")"
pass "a held store lock fails a command with the folder named"

kill "${NODE_PID[holder]}"
unset "NODE_PID[holder]"
cm A feed >/dev/null || fail "feed failed after the holder ended"
pass "the store opens once the lock is free"

# A store folder that is a file, or on a read-only mount, fails with the
# fix named.
new_home B
cm B feed >/dev/null || fail "feed on a new home failed"
mv "$WORK/B/store" "$WORK/B/store.real"
touch "$WORK/B/store"
status=0
cm B feed >/dev/null 2>"$WORK/err" || status=$?
[ "$status" -eq 1 ] || fail "feed on a store that is a file exited $status, expected 1"
grep -q "is not a folder; move that file aside" "$WORK/err" ||
	fail "store-is-a-file error names no fix: $(cat "$WORK/err")"
pass "a store folder that is a file fails with the fix named"
rm "$WORK/B/store"
mv "$WORK/B/store.real" "$WORK/B/store"
if [ "$(id -u)" -eq 0 ]; then
	mount --bind "$WORK/B/store" "$WORK/B/store"
	mount -o remount,bind,ro "$WORK/B/store"
	status=0
	cm B feed >/dev/null 2>"$WORK/err" || status=$?
	umount "$WORK/B/store"
	[ "$status" -eq 1 ] || fail "feed on a read-only store exited $status, expected 1"
	grep -q "mount it read-write" "$WORK/err" ||
		fail "read-only store error names no fix: $(cat "$WORK/err")"
	pass "a read-only store folder fails with the fix named"
fi

finish
