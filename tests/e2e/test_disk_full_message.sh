#!/bin/bash
# The message of a write that a full disk fails. LMDB turns a write that
# the disk cuts short into EIO, which alone reads as a damaged disk. The
# error names the full disk, its free bytes and the fix. Two cases: a
# `publish` of a 60 MB file into a home on a 40 MiB tmpfs, and the log
# of a mirror on a 12 MiB tmpfs that fetches 20 MiB of media.
# Needs root to mount the tmpfs; skipped (exit 0 with a message) without.
source "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: mounting a tmpfs needs root"
	exit 0
fi

small="$WORK/small"
mkdir "$small"
mounted=()
unmount_all() {
	for dir in "${mounted[@]}"; do
		umount "$dir" 2>/dev/null || umount -l "$dir" 2>/dev/null || true
	done
}
trap 'unmount_all; cleanup' EXIT

# Mounts a tmpfs of SIZE at folder DIR. Usage: mount_small SIZE DIR
mount_small() {
	mkdir -p "$2"
	mount -t tmpfs -o "size=$1" clipmesh-test "$2"
	mounted+=("$2")
}

# Writes FILE: an MP4 header, then MB megabytes of random data.
# Usage: media_file FILE MB
media_file() {
	head -c 12 "$SAMPLES/review-blender.mp4" >"$1"
	head -c $(($2 * 1000 * 1000)) /dev/urandom >>"$1"
}

# --- publish -----------------------------------------------------------
# The home is a link into the tmpfs so that lib.sh finds it.
mount_small 40m "$small/P"
ln -s "$small/P" "$WORK/P"
new_home P
cm P key new alice >/dev/null
media_file "$WORK/huge.mp4" 60
status=0
cm P publish "$WORK/huge.mp4" --as alice --product gtin:2000000001012 \
	--title "Too big for the disk" >"$WORK/out" 2>"$WORK/err" || status=$?
[ "$status" -eq 1 ] || fail "publish onto a full disk exited $status: $(cat "$WORK/err")"
grep -qE "cannot store media: mdb_txn_commit failed: Input/output error, because the disk holding $WORK/P/store is full \([0-9]+ bytes free\); free disk space$" \
	"$WORK/err" || fail "publish names no full disk: $(cat "$WORK/err")"
pass "publish onto a full disk names the disk and the fix"
cm P store check >"$WORK/check.out" 2>&1 ||
	fail "store check after the full disk failed: $(cat "$WORK/check.out")"
pass "the store check passes after the failed publish"

# --- mirror ------------------------------------------------------------
new_home C
cm C key new carol >/dev/null
media_file "$WORK/big.mp4" 20
cm C publish "$WORK/big.mp4" --as carol --product gtin:2000000001012 \
	--title "Too big for the mirror" >/dev/null

mount_small 12m "$small/M"
ln -s "$small/M" "$WORK/M"
new_home M
start C node
start M mirror --peer "$(addr_of C)"
disk_full_logged() {
	grep -qE "storing [0-9]+ chunks? failed: store_full \(mdb_txn_commit failed: Input/output error, because the disk holding $WORK/M/store is full \([0-9]+ bytes free\); free disk space\)" \
		"$WORK/M.log"
}
wait_for 120 "the mirror to log a full disk" disk_full_logged
node_running M || fail "mirror stopped when its disk filled"
pass "a mirror on a full disk logs the disk and the fix"
stop M
stop C
finish
