#!/bin/bash
# Installs the Debian 12 packages clipmesh needs to build and test.
# Runs apt-get only when a package is missing; needs root for that.
set -euo pipefail

packages=(
	build-essential cmake pkg-config
	libsodium-dev libzmq3-dev liblmdb-dev libmsgpack-dev libjansson-dev
	libinih-dev libcmocka-dev python3 python3-cryptography
	libmicrohttpd-dev curl python3-jsonschema wrk
	clang libclang-rt-14-dev
	dpkg-dev groff-base man-db systemd debootstrap iproute2 procps nftables
	tshark
	chromium nodejs
)
# Debian's nodejs leaves npm to a package of its own. NodeSource's nodejs
# includes npm and conflicts with that package, so it is added only when
# no npm is installed.
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
