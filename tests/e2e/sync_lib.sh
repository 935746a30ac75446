# sync_lib.sh - helpers for the end-to-end tests of sync between several
# nodes. Source it after lib.sh.

# Prints the ids (hex, sorted, one per line) of the records in export
# FILE. A record is [body bin, signature bin]; its id is BLAKE2b-256 of
# the body.
export_ids() {
	python3 - "$1" <<'PY'
import hashlib, sys
data = open(sys.argv[1], "rb").read()
assert data[:16] == b"clipmesh-export\n", "not an export file"
pos, ids = 16, []
while pos < len(data):
    length = int.from_bytes(data[pos:pos + 4], "big")
    wire = data[pos + 4:pos + 4 + length]
    pos += 4 + length
    assert wire[0] == 0x92, "a record is not a 2-element array"
    if wire[1] == 0xc4:
        size, start = wire[2], 3
    else:
        size, start = int.from_bytes(wire[2:4], "big"), 4
    body = wire[start:start + size]
    ids.append(hashlib.blake2b(body, digest_size=32).hexdigest())
for record_id in sorted(ids):
    print(record_id)
PY
}

# Prints "COUNT DIGEST" of the set of records that home NAME exports
# (extra arguments go to export): the number of records and a SHA-256
# over their sorted ids. Two homes with equal output hold the same set.
set_fingerprint() {
	local name=$1
	shift
	cm "$name" export "$@" -o "$WORK/$name.set.export" 2>/dev/null
	export_ids "$WORK/$name.set.export" >"$WORK/$name.set.ids"
	echo "$(wc -l <"$WORK/$name.set.ids")" \
		"$(sha256sum <"$WORK/$name.set.ids" | cut -c1-64)"
}

# Prints the number of clips that home NAME stores.
clips_of() {
	cm "$1" status --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["records"]["clips"])'
}

# Succeeds when home NAME stores exactly N clips.
holds_clips() {
	[ "$(clips_of "$1")" -eq "$2" ]
}

# Succeeds when home NAME's node has at least N connected peers that sent
# their HELLO.
links_up() {
	cm "$1" status --json | python3 -c '
import json, sys
node = json.load(sys.stdin)["node"]
up = {p["peer"] for p in node["peers"] if p["connected"] and p.get("role")}
sys.exit(0 if len(up) >= int(sys.argv[1]) else 1)' "$2"
}

# Writes the reconciliation counters of home NAME's node to FILE as JSON:
# {"NODE PEER": {"bytes_in", "bytes_out", "sessions", "rounds"}}, where
# sessions and rounds count finished sessions only.
recon_counters() {
	cm "$1" status --json | python3 -c '
import json, sys
node = json.load(sys.stdin)["node"]
out = {}
for p in node["peers"]:
    out[node["node"] + " " + p["peer"]] = p["reconciliation"]
json.dump(out, open(sys.argv[1], "w"))' "$2"
}

# Prints the reconciliation bytes received over all links since the
# counter files BEFORE: the sum of what each link in the AFTER files
# received since then (a link that is new, or whose counters restarted,
# counts from 0). Every byte sent arrives at one receiver, so this is the
# traffic in both directions once.
# Usage: recon_growth "BEFORE_FILES" AFTER_FILES...
recon_growth() {
	local before=$1
	shift
	python3 - "$before" "$@" <<'PY'
import json, sys
before = {}
for path in sys.argv[1].split():
    before.update(json.load(open(path)))
total = 0
for path in sys.argv[2:]:
    for link, now in json.load(open(path)).items():
        old = before.get(link, {"bytes_in": 0})["bytes_in"]
        total += now["bytes_in"] - (old if now["bytes_in"] >= old else 0)
print(total)
PY
}
