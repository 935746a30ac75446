#!/bin/bash
# Builds clipmesh once optimised (to catch -O3 warnings), then with
# AddressSanitizer and UndefinedBehaviorSanitizer, and
# runs every test (unit tests and end-to-end tests with real processes),
# then the tests labelled release in the optimised build. Then it builds
# the libFuzzer harnesses with clang in build-fuzz and runs each for at
# most 20000 inputs or 20 seconds, and last tests the Debian
# package of the optimised build in fresh Debian 12 roots.
# Usage: scripts/test.sh [extra ctest arguments for the first build]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# The demo and the benchmarks build with optimisation, where gcc's flow
# analysis finds warnings (-Werror) that the Debug build does not.
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j"$(nproc)" >/dev/null
echo "release build: ok"

build=build-test
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCLIPMESH_SANITIZE=ON \
	>/dev/null
cmake --build "$build" -j"$(nproc)"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd "$build" && ctest --output-on-failure --timeout 900 "$@")

# libFuzzer is part of clang, so the harnesses get a build folder of
# their own; only the fuzz targets are built there.
fuzz_build=build-fuzz
CC=clang cmake -S . -B "$fuzz_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DCLIPMESH_FUZZ=ON >/dev/null
cmake --build "$fuzz_build" --target fuzz_all -j"$(nproc)"
(cd "$fuzz_build" && ctest --output-on-failure -R '^fuzz_')

# Tests that need the optimised build's speed: the media test with a
# 200 MB clip and ten SIGKILLs (label release).
(cd build-release && ctest --output-on-failure -L release)

# The .deb from the optimised build, installed with apt into fresh
# Debian 12 roots made by debootstrap, and its mirror unit run under a
# booted systemd there (tests/pkg). These need root and Debian's mirror.
(cd build-release && ctest --output-on-failure -L pkg)
