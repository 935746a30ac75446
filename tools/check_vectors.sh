#!/bin/bash
# Checks that the "## Test vectors" section of PROTOCOL.md is exactly what
# gen_vectors prints. Usage: check_vectors.sh GEN_VECTORS PROTOCOL.md
set -euo pipefail
diff <("$1") <(sed -n '/^## Test vectors$/,$p' "$2")
