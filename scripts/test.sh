#!/bin/bash
# Builds clipmesh with AddressSanitizer and UndefinedBehaviorSanitizer and
# runs every test (unit tests and end-to-end tests with real processes).
# Usage: scripts/test.sh [extra ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=build-test
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCLIPMESH_SANITIZE=ON \
	>/dev/null
cmake --build "$build" -j"$(nproc)"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$build"
ctest --output-on-failure --timeout 900 "$@"
