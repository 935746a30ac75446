#!/bin/bash
# run.sh - runs one libFuzzer harness for a bounded time, as CTest does.
# New inputs go to WORK_DIR/corpus, crash inputs to WORK_DIR; the seed
# folder in the source tree is only read.
# Usage: run.sh HARNESS SEED_DIR WORK_DIR [libFuzzer options]
# FUZZ_RUNS (default 20000) and FUZZ_SECONDS (default 20) bound the run;
# the run stops at whichever limit comes first.
set -euo pipefail

harness=$1 seeds=$2 work=$3
shift 3
mkdir -p "$work/corpus"
exec "$harness" -seed=1 -runs="${FUZZ_RUNS:-20000}" \
	-max_total_time="${FUZZ_SECONDS:-20}" -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$work/" "$@" "$work/corpus" "$seeds"
