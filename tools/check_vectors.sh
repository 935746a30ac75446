#!/bin/bash
# Checks that the "## Test vectors" section of PROTOCOL.md is exactly what
# gen_vectors prints, and that the table of wire message vectors (the
# first "| message | hex |" table after the "### Test vectors" heading of
# "## Wire messages") is exactly what gen_vectors --wire prints.
# Usage: check_vectors.sh GEN_VECTORS PROTOCOL.md
set -euo pipefail
diff <("$1") <(sed -n '/^## Test vectors$/,$p' "$2")

wire_table() {
	awk '
		/^## Wire messages$/ { in_wire = 1 }
		in_wire && /^### Test vectors$/ { in_vectors = 1 }
		in_vectors && /^\| message \| hex \|$/ { printing = 1 }
		printing && /^$/ { exit }
		printing { print }
	' "$1"
}
table=$(wire_table "$2")
if [ -z "$table" ]; then
	echo "check_vectors.sh: no wire message vector table in $2" >&2
	exit 1
fi
diff <("$1" --wire) <(printf '%s\n' "$table")
