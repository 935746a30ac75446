# lib.sh - helpers for the package tests: build the .deb, make a fresh
# Debian 12 root with debootstrap, and run commands inside it. Source it
# from a test.
#
# Needs BUILD_DIR (the CMake build folder to package), PROJECT_DIR (the
# source folder) and VERSION (the project version) in the environment;
# CTest sets them. Needs root, for
# chroot and mount. CLIPMESH_DEBIAN_MIRROR overrides the Debian mirror,
# which is otherwise the one apt on this machine uses for bookworm.
set -euo pipefail

: "${BUILD_DIR:?set BUILD_DIR to the CMake build folder}"
: "${PROJECT_DIR:?set PROJECT_DIR to the source folder}"
: "${VERSION:?set VERSION to the project version}"

# debootstrap's downloads, kept between runs so that a second run does
# not fetch the packages again.
PKG_CACHE=$BUILD_DIR/pkg-cache
CHECKS=0
FAILED=0
STARTED=$SECONDS

fail() {
	echo "FAIL: $*" >&2
	FAILED=1
	exit 1
}

pass() {
	CHECKS=$((CHECKS + 1))
	echo "ok $CHECKS - $*"
}

# Ends the test as skipped (CTest SKIP_RETURN_CODE 77) unless run as root.
require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP: needs root for debootstrap, chroot and mount"
		exit 77
	fi
	local tool
	for tool in debootstrap chroot unshare cpack dpkg-deb ip; do
		command -v "$tool" >/dev/null ||
			fail "$tool is missing; run scripts/install-deps.sh"
	done
}

# Prints the bookworm mirror that apt on this machine uses.
debian_mirror() {
	if [ -n "${CLIPMESH_DEBIAN_MIRROR:-}" ]; then
		echo "$CLIPMESH_DEBIAN_MIRROR"
		return
	fi
	apt-cache policy | awk '$3 == "bookworm/main" { print $2; exit }'
}

# Builds the .deb from BUILD_DIR into BUILD_DIR/pkg-out and sets DEB.
build_deb() {
	local arch
	arch=$(dpkg --print-architecture)
	rm -rf "$BUILD_DIR/pkg-out"
	(cd "$BUILD_DIR" && cpack -G DEB -B "$BUILD_DIR/pkg-out") \
		>"$WORK/cpack.log" 2>&1 ||
		{ cat "$WORK/cpack.log"; fail "cpack -G DEB failed"; }
	DEB=$BUILD_DIR/pkg-out/clipmesh_${VERSION}_${arch}.deb
	[ -f "$DEB" ] || fail "cpack did not write $DEB: $(ls "$BUILD_DIR/pkg-out")"
	pass "cpack wrote $(basename "$DEB")"
}

# Makes a fresh minbase Debian 12 root in DIR with the extra packages
# INCLUDE (comma-separated), from a tarball of the downloaded packages
# that is made on the first run and reused after.
# Usage: make_root DIR INCLUDE
make_root() {
	local dir=$1 include=$2 mirror tarball
	mirror=$(debian_mirror)
	[ -n "$mirror" ] || fail "no bookworm mirror in apt's sources; set CLIPMESH_DEBIAN_MIRROR"
	tarball=$PKG_CACHE/bookworm-minbase-${include//,/-}.tgz
	mkdir -p "$PKG_CACHE"
	if [ ! -f "$tarball" ]; then
		debootstrap --variant=minbase --include="$include" \
			--make-tarball="$tarball.partial" bookworm \
			"$WORK/download" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
			{ tail -20 "$WORK/debootstrap.log"; fail "debootstrap could not download bookworm from $mirror"; }
		mv "$tarball.partial" "$tarball"
	fi
	debootstrap --variant=minbase --include="$include" \
		--unpack-tarball="$tarball" bookworm "$dir" "$mirror" \
		>"$WORK/debootstrap.log" 2>&1 ||
		{ tail -20 "$WORK/debootstrap.log"; fail "debootstrap could not make a root from $tarball"; }
	pass "fresh Debian 12 root with $include ($((SECONDS - STARTED)) s so far)"
}

# Runs the shell script SCRIPT as root inside the Debian root DIR, in new
# mount and PID namespaces. /proc is mounted there for the script alone,
# and every process the script leaves behind ends with it. With --net the
# script also gets a network namespace of its own with only loopback.
# Usage: in_root [--net] DIR SCRIPT
in_root() {
	local net=""
	if [ "$1" = --net ]; then
		net=--net
		shift
	fi
	unshare --mount --propagation private --pid --fork $net -- \
		/bin/sh -c '
			set -e
			[ -z "$3" ] || ip link set lo up
			mount -t proc proc "$1/proc"
			trap "umount \"$1/proc\"" EXIT
			chroot "$1" /usr/bin/env -i \
				PATH=/usr/sbin:/usr/bin:/sbin:/bin \
				DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 \
				/bin/sh -c "$2"
		' in_root "$1" "$2" "$net"
}

# Removes the Debian root DIR. It keeps DIR while anything is still
# mounted under it, so that rm cannot follow a mount into the host's files.
remove_root() {
	local dir=$1 target
	[ -d "$dir" ] || return 0
	for target in $(findmnt -rn -o TARGET | grep -F "$dir" | sort -r); do
		umount -l "$target" || true
	done
	if findmnt -rn -o TARGET | grep -qF "$dir"; then
		echo "kept $dir: still mounted there" >&2
		return 1
	fi
	rm -rf --one-file-system "$dir"
}
