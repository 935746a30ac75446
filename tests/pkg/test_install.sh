#!/bin/bash
# test_install.sh - runs 'cmake --install' of the build into a temporary
# prefix and checks the tree. Every file must be in its GNU place, and the
# units must name the installed binary and pass 'systemd-analyze verify'.
# Each unit must have the required hardening, and systemd-sysusers must
# accept the sysusers.d file.
set -euo pipefail

: "${BUILD_DIR:?set BUILD_DIR to the CMake build folder}"
: "${PROJECT_DIR:?set PROJECT_DIR to the source folder}"
CHECKS=0
PREFIX=$(mktemp -d /tmp/clipmesh-install.XXXXXX)
trap 'rm -rf "$PREFIX"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

pass() {
	CHECKS=$((CHECKS + 1))
	echo "ok $CHECKS - $*"
}

cmake --install "$BUILD_DIR" --prefix "$PREFIX" >"$PREFIX/install.log" ||
	fail "cmake --install failed: $(cat "$PREFIX/install.log")"
for path in bin/clipmesh share/man/man1/clipmesh.1 \
	share/bash-completion/completions/clipmesh \
	lib/systemd/system/clipmesh-node.service \
	lib/systemd/system/clipmesh-mirror.service \
	lib/sysusers.d/clipmesh.conf lib/tmpfiles.d/clipmesh.conf; do
	[ -f "$PREFIX/$path" ] || fail "cmake --install did not write $path"
done
[ -x "$PREFIX/bin/clipmesh" ] || fail "bin/clipmesh is not executable"
pass "cmake --install writes the binary, manual, completion and units"
for page in "$PROJECT_DIR"/dist/man/*.[1-8]; do
	name=$(basename "$page")
	[ -f "$PREFIX/share/man/man${name##*.}/$name" ] ||
		fail "cmake --install did not write the man page $name"
done
if [ -f "$PROJECT_DIR/dist/clipmesh.conf.example" ]; then
	[ -f "$PREFIX/share/doc/clipmesh/clipmesh.conf.example" ] ||
		fail "cmake --install did not write clipmesh.conf.example"
fi
pass "every page of dist/man and the example config are installed"

units=$PREFIX/lib/systemd/system
for role in node mirror; do
	unit=$units/clipmesh-$role.service
	grep -qx "ExecStart=$PREFIX/bin/clipmesh $role" "$unit" ||
		fail "clipmesh-$role.service does not run $PREFIX/bin/clipmesh $role"
	grep -qx "ExecStartPre=$PREFIX/bin/clipmesh init" "$unit" ||
		fail "clipmesh-$role.service does not run init first"
done
pass "units run the installed binary, init first"

# verify also checks that the binary exists and that man finds the
# Documentation= page, so the installed manual is put on MANPATH.
if ! out=$(MANPATH="$PREFIX/share/man:" systemd-analyze verify \
	"$units/clipmesh-node.service" "$units/clipmesh-mirror.service" 2>&1); then
	fail "systemd-analyze verify failed: $out"
fi
[ -z "$out" ] || fail "systemd-analyze verify warned: $out"
pass "systemd-analyze verify passes on both units"

required=(
	User=clipmesh Group=clipmesh StateDirectory=clipmesh
	StateDirectoryMode=0700 Environment=CLIPMESH_HOME=%S/clipmesh
	UMask=0077 Restart=on-failure KillSignal=SIGTERM
	NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes
	PrivateTmp=yes PrivateDevices=yes ProtectKernelTunables=yes
	ProtectKernelModules=yes ProtectKernelLogs=yes
	ProtectControlGroups=yes
	"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK"
	SystemCallFilter=@system-service MemoryDenyWriteExecute=yes
	LockPersonality=yes RestrictNamespaces=yes CapabilityBoundingSet=
)
for role in node mirror; do
	for line in "${required[@]}"; do
		grep -qxF "$line" "$units/clipmesh-$role.service" ||
			fail "clipmesh-$role.service lacks '$line'"
	done
	# Exposure is systemd's 0 (locked down) to 10 (unprotected) score.
	score=$(systemd-analyze security --offline=true \
		"$units/clipmesh-$role.service" 2>/dev/null |
		awk '/Overall exposure level/ { print $(NF - 2) }')
	awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }' ||
		fail "clipmesh-$role.service exposure is '$score', above 2.0"
	pass "clipmesh-$role.service has the hardening (exposure $score)"
done

out=$(systemd-sysusers --dry-run "$PREFIX/lib/sysusers.d/clipmesh.conf" 2>&1) ||
	fail "systemd-sysusers rejects clipmesh.conf: $out"
pass "systemd-sysusers accepts clipmesh.conf"

echo "$CHECKS passed, 0 failed"
