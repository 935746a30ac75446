#!/bin/bash
# Allow-list mode on real processes on 127.0.0.1. Mirror M lets in only
# creator A (listed with --allow) and mirror B (listed in an --allow-file
# with comments), and creator C is not listed. A's clip must reach M and
# B. C must be denied at the handshake, counted and logged with its key,
# and must neither send nor receive anything. Bad allow-lists stop M from
# starting with exit 2 (a malformed key, naming the line) or 1 (a missing
# file).
source "$(dirname "$0")/lib.sh"

new_home M
new_home A
new_home B
new_home C
akey=$(cm A key new alice)
cm C key new carol >/dev/null
cm C follow "$akey"

# Prints field PATH (dot-separated) of M's status "node" object.
m_status() {
	cm M status --json | python3 -c '
import json, sys
value = json.load(sys.stdin)["node"]
for part in sys.argv[1].split("."):
    value = value[part]
print(value)' "$1"
}

# Runs M as a mirror with the arguments and expects exit status STATUS
# and MESSAGE on stderr.
# Usage: expect_start_failure STATUS MESSAGE ARG...
expect_start_failure() {
	local want=$1 message=$2 status=0
	shift 2
	cm M mirror "$@" >"$WORK/out" 2>"$WORK/err" || status=$?
	[ "$status" -eq "$want" ] ||
		fail "mirror $* exited $status, expected $want:" \
			"$(cat "$WORK/err")"
	grep -q -- "$message" "$WORK/err" ||
		fail "mirror $* did not say '$message': $(cat "$WORK/err")"
}

expect_start_failure 2 "not a node key" --allow 1234
expect_start_failure 1 "cannot open allow-list" --allow-file "$WORK/none"
printf '# good\n%s\nnot-a-key\n' "$(cat "$WORK/A/node.pub")" >"$WORK/bad"
expect_start_failure 2 "line 3" --allow-file "$WORK/bad"
pass "malformed or missing allow-lists stop the mirror with a clear error"

cat >"$WORK/allow" <<LIST
# Mirrors we exchange with.
$(addr_of B)   # B, as 'clipmesh id' prints it

LIST
start M mirror --allow "$(cat "$WORK/A/node.pub")" --allow-file "$WORK/allow"
maddr=$(addr_of M)
[ "$(m_status allow_list)" -eq 2 ] ||
	fail "M reports $(m_status allow_list) keys in its allow-list," \
		"expected 2"
start A node --peer "$maddr"
start B mirror --peer "$maddr"
start C node --peer "$maddr"

# Succeeds once M denied a connection for a key not in the list.
denied_not_allowed() {
	[ "$(m_status limits.connections_denied.not_allowed)" -ge 1 ]
}
wait_for 30 "M to deny C" denied_not_allowed
cshort=$(head -c 8 "$WORK/C/node.pub")
grep -q "denied connection peer=$cshort .*not in the allow-list" \
	"$WORK/M.log" || fail "M did not log the denial of C's key $cshort"
pass "M denies the unlisted C, counts it and logs its key"

clip=$(cm A publish "$SAMPLES/photo-backpack.jpg" --as alice \
	--product gtin:2000000004044 --title "Allowed through" --rating 5)
wait_for 30 "A's clip on M" has_clips M 1
wait_for 30 "A's clip on B" has_clips B 1
wait_for 60 "the clip's media on B" has_media_of B "$clip"
pass "the listed A and B sync through M"

cm C publish "$SAMPLES/photo-backpack.jpg" --as carol \
	--product gtin:2000000004044 --title "Never let in" >/dev/null
# A second clip from A goes the same way that C's would over an open
# link, so once it arrived, C's clip had its chance as well.
cm A publish "$SAMPLES/photo-backpack.jpg" --as alice \
	--product gtin:2000000004044 --title "After C's clip" >/dev/null
wait_for 30 "A's second clip on M" has_clips M 2
wait_for 30 "A's second clip on B" has_clips B 2
has_clips M 2 || fail "M stores $(feed_count M) clips; C's clip got in"
has_clips C 1 || fail "C stores $(feed_count C) clips; it got A's clips from M"
cm M status --json | python3 -c '
import json, sys
peers = json.load(sys.stdin)["node"]["peers"]
sys.exit(1 if any(p["peer"] == sys.argv[1] for p in peers) else 0)' \
	"$cshort" || fail "M has a link to the unlisted C"
pass "the unlisted C stores nothing from M and M nothing from C"

for home in C B A M; do
	stop "$home"
done
pass "every node stopped cleanly on SIGTERM"
finish
