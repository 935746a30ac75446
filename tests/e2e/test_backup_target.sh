#!/bin/bash
# Backup targets: `store backup DIR` writes into a new or an empty folder
# only. A folder with other files, a file, a symbolic link to nothing and
# a folder this user cannot write each fail with exit 1, a message that
# names the target and the fix, and no data.mdb left behind.
source "$(dirname "$0")/lib.sh"

new_home A
cm A key new alice >/dev/null
cm A publish "$SAMPLES/photo-backpack.jpg" --as alice \
	--product gtin:2000000004044 --title "Backpack" >/dev/null

# Runs `store backup TARGET` as USER (root: directly) and checks that it
# fails with status 1 and an error containing TEXT.
rejects() {
	local user=$1 target=$2 text=$3 status=0
	if [ "$user" = root ]; then
		cm A store backup "$target" >"$WORK/out" 2>"$WORK/err" ||
			status=$?
	else
		runuser -u "$user" -- "$CLIPMESH" --home "$WORK/A" store backup \
			"$target" >"$WORK/out" 2>"$WORK/err" || status=$?
	fi
	[ "$status" -eq 1 ] ||
		fail "backup into $target exited $status, expected 1:" \
			"$(cat "$WORK/out" "$WORK/err")"
	grep -qF "$text" "$WORK/err" ||
		fail "backup into $target: error lacks '$text':" \
			"$(cat "$WORK/err")"
}

mkdir "$WORK/full"
echo notes >"$WORK/full/notes.txt"
rejects root "$WORK/full" "is not empty (it contains notes.txt)"
[ ! -e "$WORK/full/data.mdb" ] || fail "backup wrote into a non-empty folder"
pass "a folder with other files is rejected"

rejects root "$WORK/A" "backup folder $WORK/A is not empty"
[ ! -e "$WORK/A/data.mdb" ] || fail "backup wrote into the home"
pass "the home itself is rejected"

echo text >"$WORK/file"
rejects root "$WORK/file" "exists and is not a folder"
pass "a file is rejected"

ln -s "$WORK/nowhere" "$WORK/dangling"
rejects root "$WORK/dangling" "cannot create $WORK/dangling"
pass "a symbolic link to nothing is rejected"

if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	chmod 755 "$WORK"
	chmod -R a+rX "$WORK/A"
	chmod a+rw "$WORK/A/store"/*
	mkdir -m 755 "$WORK/rootonly"
	rejects nobody "$WORK/rootonly/new" "Permission denied"
	rejects nobody "$WORK/rootonly" "Permission denied"
	pass "folders this user cannot write are rejected"
fi

cm A store backup "$WORK/new" >/dev/null || fail "backup into a new folder failed"
mkdir "$WORK/empty"
cm A store backup "$WORK/empty" >/dev/null ||
	fail "backup into an empty folder failed"
[ -s "$WORK/new/data.mdb" ] && [ -s "$WORK/empty/data.mdb" ] ||
	fail "backup wrote no data.mdb"
pass "new and empty folders take the backup"
finish
