#!/bin/bash
# test_deb.sh - builds the .deb with cpack and installs it with apt into
# a fresh minbase Debian 12 root. Nothing else is installed there, so apt
# must pull every library the package declares. Then it checks the
# installed files, the clipmesh user and home, a mirror run, an upgrade in
# place and the purge. No systemd runs in the root, so the postinst takes
# its adduser path. Takes about 25 s on two cores with the debootstrap
# tarball cached under the build folder; the first run also downloads it
# (about 45 MB).
source "$(dirname "$0")/lib.sh"
require_root

WORK=$(mktemp -d "$BUILD_DIR/pkg-deb.XXXXXX")
ROOT=$WORK/root

cleanup() {
	local status=$?
	if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
		for log in "$WORK"/*.log; do
			[ -f "$log" ] || continue
			echo "---- $(basename "$log") (last 30 lines)"
			tail -n 30 "$log"
		done
	fi
	remove_root "$ROOT" && rm -rf "$WORK"
	echo "took $((SECONDS - STARTED)) s"
}
trap cleanup EXIT

# The package and its metadata.
build_deb
arch=$(dpkg --print-architecture)
[ "$(dpkg-deb -f "$DEB" Package)" = clipmesh ] || fail "Package is not clipmesh"
[ "$(dpkg-deb -f "$DEB" Version)" = "$VERSION" ] ||
	fail "Version is $(dpkg-deb -f "$DEB" Version), expected $VERSION"
[ "$(dpkg-deb -f "$DEB" Architecture)" = "$arch" ] ||
	fail "Architecture is not $arch"
pass "control fields: clipmesh $VERSION $arch"
depends=$(dpkg-deb -f "$DEB" Depends)
for lib in libc6 libsodium23 libzmq5 liblmdb0 libjansson4 adduser; do
	[[ $depends == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
pass "Depends lists the shared libraries: $depends"
contents=$(dpkg-deb -c "$DEB" | awk '{ print $6 }')
for path in ./usr/bin/clipmesh ./usr/share/man/man1/clipmesh.1 \
	./usr/lib/systemd/system/clipmesh-node.service \
	./usr/lib/systemd/system/clipmesh-mirror.service \
	./usr/lib/sysusers.d/clipmesh.conf ./usr/lib/tmpfiles.d/clipmesh.conf \
	./usr/share/bash-completion/completions/clipmesh; do
	grep -qxF "$path" <<<"$contents" || fail "package lacks $path"
done
pass "package holds the binary, manual, units, sysusers, tmpfiles, completion"
for page in "$PROJECT_DIR"/dist/man/*.[1-8]; do
	name=$(basename "$page")
	grep -qxF "./usr/share/man/man${name##*.}/$name" <<<"$contents" ||
		fail "package lacks the man page $name"
done
if [ -f "$PROJECT_DIR/dist/clipmesh.conf.example" ]; then
	grep -qxF ./usr/share/doc/clipmesh/clipmesh.conf.example \
		<<<"$contents" || fail "package lacks clipmesh.conf.example"
fi
pass "package holds every page of dist/man and the example config"

# Install into a fresh root: apt resolves the declared dependencies.
make_root "$ROOT" man-db
cp "$DEB" "$ROOT/tmp/"
in_root "$ROOT" "apt-get update -q && apt-get install -y -q \
	/tmp/$(basename "$DEB")" >"$WORK/apt.log" 2>&1 ||
	fail "apt-get install of the package failed"
in_root "$ROOT" "dpkg-query -W -f='\${Status}' clipmesh" |
	grep -qx "install ok installed" || fail "clipmesh is not installed"
missing=$(in_root "$ROOT" "ldd /usr/bin/clipmesh" | grep "not found" || true)
[ -z "$missing" ] || fail "libraries not found after apt install: $missing"
pass "apt installed the package and every library it loads"

version=$(in_root "$ROOT" "clipmesh --version")
[ "$version" = "clipmesh $VERSION" ] ||
	fail "clipmesh --version printed '$version'"
pass "clipmesh --version prints '$version'"

# The user and home that the postinst made.
IFS=: read -r _ _ uid _ _ home shell <<<"$(in_root "$ROOT" \
	"getent passwd clipmesh")"
[ "$home" = /var/lib/clipmesh ] || fail "clipmesh's home is '$home'"
[ "$shell" = /usr/sbin/nologin ] || fail "clipmesh's shell is '$shell'"
[ "$uid" -lt 1000 ] || fail "clipmesh is not a system user (uid $uid)"
pass "system user clipmesh (uid $uid, home $home, shell $shell)"
mode=$(in_root "$ROOT" "stat -c '%U:%G %a' /var/lib/clipmesh")
[ "$mode" = "clipmesh:clipmesh 700" ] || fail "/var/lib/clipmesh is $mode"
pass "/var/lib/clipmesh is $mode"

# clipmesh init in that home, twice: the second run keeps everything.
as_clipmesh="runuser -u clipmesh -- clipmesh --home /var/lib/clipmesh"
out=$(in_root "$ROOT" "$as_clipmesh init")
[ "$out" = "initialised home /var/lib/clipmesh" ] || fail "init printed '$out'"
key=$(in_root "$ROOT" "cat /var/lib/clipmesh/node.pub")
out=$(in_root "$ROOT" "$as_clipmesh init")
[ "$out" = "already initialised: home /var/lib/clipmesh" ] ||
	fail "second init printed '$out'"
[ "$(in_root "$ROOT" "cat /var/lib/clipmesh/node.pub")" = "$key" ] ||
	fail "second init replaced the node key"
mode=$(in_root "$ROOT" "stat -c '%U %a' /var/lib/clipmesh/node.key")
[ "$mode" = "clipmesh 600" ] || fail "node.key is $mode"
pass "init in /var/lib/clipmesh as clipmesh, idempotent, node.key $mode"

# A mirror runs from the installed files and stops cleanly on SIGTERM.
# setpriv execs clipmesh, so the signal reaches it and not a runuser
# parent that would report being killed.
in_root --net "$ROOT" "
	setpriv --reuid=clipmesh --regid=clipmesh --clear-groups \
		clipmesh --home /var/lib/clipmesh mirror >/tmp/mirror.log 2>&1 &
	pid=\$!
	for i in \$(seq 300); do
		$as_clipmesh status --json | grep -q '\"role\":\"mirror\"' && break
		sleep 0.1
	done
	$as_clipmesh status --json | grep -q '\"role\":\"mirror\"' ||
		{ echo 'mirror did not answer status in 30 s'; exit 1; }
	$as_clipmesh doctor
	kill -TERM \$pid
	wait \$pid
" >"$WORK/mirror.log" 2>&1 ||
	fail "the mirror did not run, answer status and doctor, and exit 0"
pass "mirror runs, status and doctor see it, SIGTERM stops it with 0"

# The manual and the other installed files.
in_root "$ROOT" "man -w clipmesh" | grep -qx /usr/share/man/man1/clipmesh.1 ||
	fail "man -w clipmesh does not find the page"
in_root "$ROOT" "MANWIDTH=80 man -P cat clipmesh 2>&1" >"$WORK/man.log"
grep -q "clipmesh - sync signed creator review clips" "$WORK/man.log" ||
	fail "man clipmesh does not show the NAME line"
pass "man clipmesh shows the page"
for unit in node mirror; do
	file=$ROOT/usr/lib/systemd/system/clipmesh-$unit.service
	[ -f "$file" ] || fail "clipmesh-$unit.service is not installed"
	grep -qx "ExecStart=/usr/bin/clipmesh $unit" "$file" ||
		fail "clipmesh-$unit.service does not run /usr/bin/clipmesh $unit"
done
pass "units installed with ExecStart=/usr/bin/clipmesh node|mirror"

# An upgrade in place (the same version again) keeps the user and home.
in_root "$ROOT" "dpkg -i /tmp/$(basename "$DEB")" >"$WORK/upgrade.log" 2>&1 ||
	fail "dpkg -i over the installed package failed"
[ "$(in_root "$ROOT" "id -u clipmesh")" = "$uid" ] ||
	fail "the upgrade changed clipmesh's uid"
[ "$(in_root "$ROOT" "cat /var/lib/clipmesh/node.pub")" = "$key" ] ||
	fail "the upgrade changed the node key"
pass "upgrade in place keeps the user and the home"

# Removal and purge keep the data and the user.
in_root "$ROOT" "apt-get purge -y -q clipmesh" >"$WORK/purge.log" 2>&1 ||
	fail "apt-get purge clipmesh failed"
[ ! -e "$ROOT/usr/bin/clipmesh" ] || fail "purge left /usr/bin/clipmesh"
[ -f "$ROOT/var/lib/clipmesh/node.key" ] || fail "purge removed the home"
in_root "$ROOT" "getent passwd clipmesh" >/dev/null ||
	fail "purge removed the user"
pass "purge removes the files and keeps /var/lib/clipmesh and the user"

echo "$CHECKS passed, 0 failed"
