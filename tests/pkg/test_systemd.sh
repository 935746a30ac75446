#!/bin/bash
# test_systemd.sh - runs the mirror unit for real. It installs the .deb
# with apt into a fresh Debian 12 root that has systemd, so the postinst
# takes its systemd-sysusers path. Then it boots that systemd as PID 1 in
# new PID, mount, network, UTS and IPC namespaces, with no container
# manager. There the unit must start at boot inside its sandbox, receive
# a clip with media from a creator node on the namespace's loopback,
# stop cleanly, restart after a crash, restart on an upgrade, and give
# way to the node unit. Takes about 35 s on two cores with the
# debootstrap tarball cached under the build folder.
#
# Units that would act on the shared kernel (sysctl, modules, binfmt,
# pstore, audit) or on the machine's terminals (getty) are masked in the
# root, so the booted systemd touches nothing outside its namespaces but
# the cgroup hierarchies, where the directories it made are removed at
# the end.
source "$(dirname "$0")/lib.sh"
require_root

WORK=$(mktemp -d "$BUILD_DIR/pkg-systemd.XXXXXX")
ROOT=$WORK/root
BOOT_PID=""
SYSTEMD_PID=""
CGROUPS_BEFORE=$WORK/cgroups-before

cleanup() {
	local status=$?
	if [ -n "$SYSTEMD_PID" ] && kill -0 "$SYSTEMD_PID" 2>/dev/null; then
		if [ "$status" -ne 0 ]; then
			in_boot journalctl -b --no-pager >"$WORK/journal.log" 2>&1 || true
		fi
		# Killing PID 1 of the namespace ends every process in it, and
		# the namespace's mounts go with them.
		kill -KILL "$SYSTEMD_PID" 2>/dev/null || true
	fi
	[ -z "$BOOT_PID" ] || wait "$BOOT_PID" 2>/dev/null || true
	remove_new_cgroups
	if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
		for log in "$WORK"/*.log; do
			[ -f "$log" ] || continue
			echo "---- $(basename "$log") (last 40 lines)"
			tail -n 40 "$log"
		done
	fi
	remove_root "$ROOT" && rm -rf "$WORK"
	echo "took $((SECONDS - STARTED)) s"
}
trap cleanup EXIT

# Lists the cgroup directories of every hierarchy.
list_cgroups() {
	find /sys/fs/cgroup -mindepth 2 -type d 2>/dev/null | sort
}

# Removes the empty cgroup directories that the booted systemd made,
# deepest first. rmdir leaves any that still has processes.
remove_new_cgroups() {
	[ -f "$CGROUPS_BEFORE" ] || return 0
	list_cgroups | comm -13 "$CGROUPS_BEFORE" - | sort -r |
		while read -r dir; do rmdir "$dir" 2>/dev/null || true; done
}

# Runs a command in the booted root, in all of systemd's namespaces.
in_boot() {
	nsenter --target "$SYSTEMD_PID" --mount --uts --ipc --net --pid \
		--root --wd -- /usr/bin/env -i \
		PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@"
}

# Waits up to SECONDS for the shell condition CONDITION in the booted root.
# Usage: boot_wait SECONDS DESCRIPTION CONDITION
boot_wait() {
	local deadline=$((SECONDS + $1)) what=$2
	until in_boot /bin/sh -c "$3" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] ||
			fail "timed out after $1 s waiting for: $what"
		sleep 0.2
	done
}

unit_property() {
	in_boot systemctl show -p "$2" --value "$1"
}

for tool in nsenter pivot_root comm; do
	command -v "$tool" >/dev/null || fail "$tool is missing"
done

build_deb
make_root "$ROOT" systemd
cp "$DEB" "$ROOT/root/"
in_root "$ROOT" "apt-get update -q && apt-get install -y -q \
	/root/$(basename "$DEB")" >"$WORK/apt.log" 2>&1 ||
	fail "apt-get install of the package failed"
gecos=$(in_root "$ROOT" "getent passwd clipmesh" | cut -d: -f5)
[ "$gecos" = "clipmesh node" ] ||
	fail "clipmesh was not made from sysusers.d (GECOS '$gecos')"
pass "apt installed the package; systemd-sysusers made the user"

in_root "$ROOT" "systemctl mask getty.target console-getty.service \
	systemd-sysctl.service systemd-modules-load.service \
	systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
	systemd-pstore.service systemd-journald-audit.socket \
	systemd-logind.service systemd-remount-fs.service \
	sys-kernel-config.mount sys-kernel-debug.mount \
	sys-kernel-tracing.mount sys-fs-fuse-connections.mount \
	e2scrub_reap.service apt-daily.timer apt-daily-upgrade.timer \
	man-db.timer dpkg-db-backup.timer e2scrub_all.timer \
	&& systemctl enable clipmesh-mirror.service" >"$WORK/enable.log" 2>&1 ||
	fail "systemctl mask or enable failed in the root"
cp "$SAMPLES/review-blender.mp4" "$ROOT/root/"

# Boot. The root becomes / of a new mount namespace by pivot_root, because
# systemd cannot set up the units' own mount namespaces under a chroot.
# /dev/console becomes a log file, so nothing reaches the real console.
list_cgroups >"$CGROUPS_BEFORE"
: >"$WORK/console.log"
unshare --pid --fork --mount --uts --ipc --net --propagation private -- \
	/bin/sh -c '
		set -e
		mount --bind "$1" "$1"
		mount --bind "$2" "$1/dev/console"
		cd "$1"
		mkdir -p .oldroot
		pivot_root . .oldroot
		mount -t proc proc /proc
		umount -l /.oldroot
		rmdir /.oldroot
		exec /usr/bin/env -i container=clipmesh-test \
			/lib/systemd/systemd --system --unit=multi-user.target \
			--show-status=no
	' boot "$ROOT" "$WORK/console.log" >"$WORK/boot.log" 2>&1 &
BOOT_PID=$!
deadline=$((SECONDS + 30))
until SYSTEMD_PID=$(pgrep -P "$BOOT_PID" -x systemd); do
	[ "$SECONDS" -lt "$deadline" ] || fail "systemd did not start in 30 s"
	sleep 0.1
done
boot_wait 60 "boot to finish" \
	'case $(systemctl is-system-running) in running|degraded) ;; *) exit 1;; esac'
pass "systemd booted as PID 1 in its namespaces ($(in_boot systemctl is-system-running))"

# The mirror unit, enabled, started at boot.
boot_wait 30 "clipmesh-mirror.service to be active" \
	'systemctl is-active clipmesh-mirror.service'
boot_wait 30 "the mirror to log its start" \
	'journalctl -b -u clipmesh-mirror.service | grep -q "node: started role=mirror"'
pass "clipmesh-mirror.service is active after boot"

main=$(unit_property clipmesh-mirror.service MainPID)
owner=$(in_boot stat -c %U "/proc/$main")
[ "$owner" = clipmesh ] || fail "the mirror runs as $owner"
status=$(in_boot cat "/proc/$main/status")
grep -qP '^CapEff:\t0+$' <<<"$status" || fail "the mirror has capabilities"
grep -qP '^NoNewPrivs:\t1$' <<<"$status" || fail "NoNewPrivs is not set"
grep -qP '^Seccomp:\t2$' <<<"$status" || fail "no seccomp filter"
pass "the mirror runs as clipmesh, no capabilities, NoNewPrivs, seccomp"
if in_boot nsenter --target "$main" --mount touch /usr/clipmesh-test \
	2>/dev/null; then
	fail "the mirror's view of /usr is writable"
fi
in_boot nsenter --target "$main" --mount touch /var/lib/clipmesh/write-test ||
	fail "the mirror's home is not writable"
in_boot rm /var/lib/clipmesh/write-test
[ -z "$(in_boot nsenter --target "$main" --mount ls -A /root)" ] ||
	fail "the mirror can list /root"
pass "the mirror writes its home only: /usr read-only, /root hidden"

as_clipmesh="runuser -u clipmesh -- clipmesh --home /var/lib/clipmesh"
in_boot $as_clipmesh doctor >"$WORK/doctor.log" 2>&1 ||
	fail "clipmesh doctor failed"
in_boot $as_clipmesh status --json | grep -q '"role":"mirror"' ||
	fail "clipmesh status does not show the running mirror"
pass "doctor and status as clipmesh see the mirror"

# A creator node on loopback sends a clip with its media to the mirror.
in_boot /bin/sh -c "
	set -e
	C='clipmesh --home /root/creator'
	\$C init >/dev/null
	sed -i 's|^listen = .*|listen = tcp://127.0.0.1:7702|' /root/creator/config
	\$C key new alice >/dev/null
	\$C node --peer \"\$($as_clipmesh id)\" >/root/creator.log 2>&1 &
	\$C publish /root/review-blender.mp4 --as alice \
		--product gtin:2000000001012 \
		--title 'Countertop blender, first week' >/root/clip.id
" >"$WORK/creator.log" 2>&1 || fail "the creator node did not publish"
clip=$(in_boot cat /root/clip.id)
boot_wait 30 "clip $clip at the mirror" \
	"$as_clipmesh feed --json | grep -q $clip"
boot_wait 30 "the clip's media at the mirror" \
	"$as_clipmesh media get $clip -o /var/lib/clipmesh/media.check"
in_boot cmp /var/lib/clipmesh/media.check /root/review-blender.mp4 ||
	fail "the mirror's copy of the media differs"
in_boot rm /var/lib/clipmesh/media.check
pass "a creator node's clip and media reach the mirror unit"

in_boot systemctl stop clipmesh-mirror.service
[ "$(unit_property clipmesh-mirror.service Result)" = success ] ||
	fail "stop ended with $(unit_property clipmesh-mirror.service Result)"
[ "$(unit_property clipmesh-mirror.service ExecMainStatus)" = 0 ] ||
	fail "the mirror exited with $(unit_property clipmesh-mirror.service ExecMainStatus)"
in_boot journalctl -b -u clipmesh-mirror.service | grep -q "node: stopped" ||
	fail "the mirror did not log its stop"
pass "systemctl stop: SIGTERM, the mirror exits 0"

in_boot systemctl start clipmesh-mirror.service
in_boot systemctl kill --signal=SIGKILL clipmesh-mirror.service
boot_wait 30 "a restart after SIGKILL" \
	"[ \$(systemctl show -p NRestarts --value clipmesh-mirror.service) -ge 1 ] &&
	 systemctl is-active clipmesh-mirror.service"
pass "Restart=on-failure brings the mirror back after SIGKILL"

main=$(unit_property clipmesh-mirror.service MainPID)
in_boot dpkg -i "/root/$(basename "$DEB")" >"$WORK/upgrade.log" 2>&1 ||
	fail "dpkg -i over the installed package failed"
boot_wait 30 "the mirror to run again after the upgrade" \
	'systemctl is-active clipmesh-mirror.service'
[ "$(unit_property clipmesh-mirror.service MainPID)" != "$main" ] ||
	fail "the upgrade did not restart the mirror"
pass "an upgrade restarts the running mirror"

in_boot systemctl start clipmesh-node.service
boot_wait 30 "clipmesh-node.service to be active" \
	'systemctl is-active clipmesh-node.service'
in_boot systemctl is-active clipmesh-mirror.service >/dev/null &&
	fail "the mirror still runs beside the node unit"
pass "starting the node unit stops the mirror (Conflicts=)"

in_boot systemctl poweroff >/dev/null 2>&1 || true
deadline=$((SECONDS + 30))
while kill -0 "$BOOT_PID" 2>/dev/null; do
	[ "$SECONDS" -lt "$deadline" ] || fail "systemd did not power off in 30 s"
	sleep 0.2
done
SYSTEMD_PID=""
pass "systemctl poweroff ends the booted systemd"

echo "$CHECKS passed, 0 failed"
