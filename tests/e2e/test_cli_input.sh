#!/bin/bash
# Command-line input and text output: values that are repeated, invalid
# or hostile are rejected by name, and peer-supplied text printed as
# text cannot forge lines or reorder a terminal.
source "$(dirname "$0")/lib.sh"

new_home A
cm A key new alice >/dev/null
blender="$SAMPLES/review-blender.mp4"

# Usage: expect_status STATUS TEXT DESCRIPTION -- ARGS...
# Runs clipmesh on home $ON (default A) and checks the exit status and
# that stderr contains TEXT.
expect_status() {
	local want=$1 text=$2 what=$3 status=0
	shift 4
	cm "${ON:-A}" "$@" >"$WORK/out" 2>"$WORK/err" || status=$?
	[ "$status" -eq "$want" ] ||
		fail "$what: exit $status, expected $want ($(cat "$WORK/err"))"
	grep -qF -- "$text" "$WORK/err" ||
		fail "$what: stderr lacks '$text': $(cat "$WORK/err")"
	pass "$what"
}

# --- invalid calendar dates in --since and --until
for value in 2026-02-30T00:00:00Z 2026-12-04T15:47:60Z 2026-04-31; do
	expect_status 2 "$value" "feed --since $value rejected" -- \
		feed --since "$value"
	expect_status 2 "$value" "export --until $value rejected" -- \
		export --until "$value" -o "$WORK/out.cmx"
done
cm A feed --help | grep -qF "2026-12-04T15:00:00Z" ||
	fail "feed --help does not list the time forms"
cm A export --help | grep -qF "milliseconds since the Unix epoch" ||
	fail "export --help does not list the time forms"
pass "feed and export --help list the time forms"

# --- a repeated option that takes one value
expect_status 2 "--tag given twice" "feed --tag twice rejected" -- \
	feed --tag a --tag b
expect_status 2 "--product given twice" "feed --product twice rejected" -- \
	feed --product gtin:2000000001012 --product gtin:2000000001029
expect_status 2 "--tag given twice" "export --tag twice rejected" -- \
	export --tag a --tag b -o "$WORK/out.cmx"
expect_status 2 "--title given twice" "publish --title twice rejected" -- \
	publish "$blender" --as alice --product gtin:2000000001012 \
	--title a --title b
[ "$(cm A feed --json | wc -l)" -eq 0 ] || fail "a rejected publish stored a clip"
id=$(cm A publish "$blender" --as alice --product gtin:2000000001012 \
	--title "Tagged twice" --tag one --tag two)
cm A show "$id" --json | grep -qF '"tags":["one","two"]' ||
	fail "publish --tag repeated did not keep both tags"
pass "publish --tag is repeatable"
cm A config show --peer "$(cm A id)" --peer "$(cm A id)" >/dev/null ||
	fail "--peer repeated was rejected"
pass "--peer is repeatable"
# Both allow-lists are read before the node starts, so a missing second
# file stops it with exit 1 and its name, not a usage error.
cat "$WORK/A/node.pub" >"$WORK/allow1"
expect_status 1 "$WORK/allow2" "node reads --allow-file twice" -- \
	node --listen "tcp://127.0.0.1:$(free_port)" \
	--allow-file "$WORK/allow1" --allow-file "$WORK/allow2"
cm A node --help | grep -qF -- "--allow-file FILE]..." ||
	fail "node --help does not show --allow-file as repeatable"
for option in allow allow-file peer set; do
	cm A node --help | grep -E -- "^  --$option .*\(repeatable\)$" \
		>/dev/null || fail "node --help does not mark --$option repeatable"
done
pass "node --help marks the repeatable options"

# --- peer-supplied text cannot forge lines or reorder the terminal
rlo=$(printf '\u202e')
profile=$(cm A profile set --as alice --name "Mallory${rlo}evil" \
	--bio "$(printf 'x\nverified   false\nretracted  true')")
cm A show "$profile" >"$WORK/show.txt"
[ "$(grep -c '^verified' "$WORK/show.txt")" -eq 1 ] ||
	fail "a bio forged a verified line: $(cat "$WORK/show.txt")"
[ "$(grep -c '^retracted' "$WORK/show.txt")" -eq 1 ] ||
	fail "a bio forged a retracted line: $(cat "$WORK/show.txt")"
grep -qx 'bio        x' "$WORK/show.txt" ||
	fail "show does not print the bio's first line: $(cat "$WORK/show.txt")"
grep -qx '           verified   false' "$WORK/show.txt" ||
	fail "show does not indent the bio's second line: $(cat "$WORK/show.txt")"
grep -qx '           retracted  true' "$WORK/show.txt" ||
	fail "show does not indent the bio's third line: $(cat "$WORK/show.txt")"
pass "show indents the lines of a bio"
# Text output changes no valid text: a backslash prints as itself, and
# show prints each line of a review text.
id=$(cm A publish "$blender" --as alice --product gtin:2000000001012 \
	--title 'Café C:\temp' --text "$(printf 'Line one\nLine two')")
cm A show "$id" >"$WORK/show2.txt"
grep -qx 'title      Café C:\\temp' "$WORK/show2.txt" ||
	fail "show changes a backslash in a title: $(cat "$WORK/show2.txt")"
grep -qx 'text       Line one' "$WORK/show2.txt" ||
	fail "show does not print a text's first line: $(cat "$WORK/show2.txt")"
grep -qx '           Line two' "$WORK/show2.txt" ||
	fail "show does not indent a text's second line: $(cat "$WORK/show2.txt")"
cm A feed >"$WORK/feed2.txt"
grep -qF '  Café C:\temp' "$WORK/feed2.txt" ||
	fail "feed changes a backslash in a title: $(cat "$WORK/feed2.txt")"
cm A show "$id" --json | grep -qF '"text":"Line one\nLine two"' ||
	fail "show --json does not give the exact text"
pass "text output keeps backslashes and prints lines of a text"
id=$(cm A publish "$blender" --as alice --product gtin:2000000001012 \
	--title "Title${rlo}reversed" --tag "tag${rlo}x")
cm A feed >"$WORK/feed.txt"
cm A show "$id" >>"$WORK/show.txt"
if grep -qF "$rlo" "$WORK/feed.txt" "$WORK/show.txt"; then
	fail "text output prints U+202E raw"
fi
grep -qF 'Mallory\u{202e}evil' "$WORK/feed.txt" ||
	fail "feed does not print the name's U+202E as \\u{202e}"
grep -qF 'Title\u{202e}reversed' "$WORK/feed.txt" ||
	fail "feed does not print the title's U+202E as \\u{202e}"
grep -qF 'tag\u{202e}x' "$WORK/show.txt" ||
	fail "show does not print the tag's U+202E as \\u{202e}"
cm A feed --json | grep -qiF 'Title\u202ereversed' ||
	fail "feed --json changed the title's escaping"
pass "feed and show escape bidi controls"

# --- a listen endpoint that ZeroMQ cannot bind
expect_status 2 "tcp://localhost:17795" "node --listen with a host name rejected" -- \
	node --listen tcp://localhost:17795
grep -qF "give an IP address such as 127.0.0.1 or 0.0.0.0" "$WORK/err" ||
	fail "the --listen error does not say to give an IP address"
cp "$WORK/A/config" "$WORK/config.saved"
echo "listen = tcp://localhost:17795" >>"$WORK/A/config"
cm A doctor >"$WORK/doctor.txt" 2>&1 || true
grep -q "^FAIL .*tcp://localhost:17795.*127.0.0.1 or 0.0.0.0" "$WORK/doctor.txt" ||
	fail "doctor does not fail the listen host name: $(cat "$WORK/doctor.txt")"
if grep -q "^OK .*config" "$WORK/doctor.txt"; then
	fail "doctor reports the config OK: $(cat "$WORK/doctor.txt")"
fi
cp "$WORK/config.saved" "$WORK/A/config"
pass "doctor fails a listen host name with the fix"

# --- media and exports on standard output, and media a node lacks
two=$(cm A publish "$blender" "$SAMPLES/photo-backpack.jpg" --as alice \
	--product gtin:2000000001012 --title "Two media")
# Run in $WORK, where a file named '-' would appear.
CLIPMESH=$(realpath "$CLIPMESH")
cd "$WORK"
cm A media get "$id" -o - >"$WORK/media.out" 2>"$WORK/err"
cmp -s "$WORK/media.out" "$blender" || fail "media get -o - wrote other bytes"
[ ! -s "$WORK/err" ] || fail "media get -o - printed: $(cat "$WORK/err")"
cm A export -o - >"$WORK/all.cmx" 2>"$WORK/err"
head -c 16 "$WORK/all.cmx" | grep -q "^clipmesh-export" ||
	fail "export -o - did not write an export file to stdout"
grep -qF "to standard output" "$WORK/err" ||
	fail "export -o - did not report on stderr: $(cat "$WORK/err")"
[ ! -e "$WORK/-" ] || fail "-o - created a file named '-'"
pass "-o - writes media and exports to stdout"
cm A media get --help | grep -qF -- "- for standard output" ||
	fail "media get --help does not document -o -"
pass "media get --help documents -o -"

new_home M
printf 'media = none\n' >>"$WORK/M/config"
cm M import "$WORK/all.cmx" >/dev/null
ON=M expect_status 1 "media policy is none" "media get on policy none says so" -- \
	media get "$id" -o "$WORK/media.out"
sed -i 's/^media = none$/media = followed/' "$WORK/M/config"
cm M media get "$two" -o "$WORK/media.out" 2>"$WORK/err" && fail "media get took a clip with two media"
hash=$(grep -o 'media get [0-9a-f]\{64\}' "$WORK/err" | head -n 1 | cut -c 11-)
[ -n "$hash" ] || fail "media get lists no hashes: $(cat "$WORK/err")"
status=0
cm M media get "$hash" -o "$WORK/media.out" 2>"$WORK/err" || status=$?
[ "$status" -eq 1 ] || fail "media get HASH exit $status: $(cat "$WORK/err")"
if grep -qF "no record with id" "$WORK/err"; then
	fail "a listed hash is not taken by media get: $(cat "$WORK/err")"
fi
grep -qF "has not fetched the media yet" "$WORK/err" ||
	fail "media get HASH does not say the media is missing: $(cat "$WORK/err")"
cm A media get "$hash" -o "$WORK/media.out"
cmp -s "$WORK/media.out" "$blender" || fail "the listed hash wrote other bytes"
pass "media get takes the hashes it lists"
unknown=$(printf 'ab%.0s' {1..32})
ON=M expect_status 1 "no record or media with hash '$unknown'" \
	"media get says an unknown hash names nothing" -- \
	media get "$unknown" -o "$WORK/media.out"
if grep -qF "has not fetched" "$WORK/err"; then
	fail "media get takes an unknown hash as missing media: $(cat "$WORK/err")"
fi

# --- peer add: this node itself, and a peer already known
expect_status 2 "this home's own node key" "peer add rejects this node" -- \
	peer add "$(cm A id)"
[ -z "$(cm A peer list)" ] || fail "peer add stored this node as a peer"
# The check reads the public key alone, so a secret key that fails its
# mode check does not let this node's own address in.
own=$(cm A id)
chmod 644 "$WORK/A/node.key"
expect_status 2 "this home's own node key" "peer add rejects this node, node.key 644" -- \
	peer add "$own"
chmod 600 "$WORK/A/node.key"
mv "$WORK/A/node.pub" "$WORK/node.pub.saved"
expect_status 1 "cannot read this node's public key" "peer add without node.pub fails" -- \
	peer add "$own"
mv "$WORK/node.pub.saved" "$WORK/A/node.pub"
[ -z "$(cm A peer list)" ] || fail "peer add stored this node as a peer"
cm A peer add "$(cm M id)" 2>"$WORK/err"
grep -qF "peer added" "$WORK/err" || fail "peer add: $(cat "$WORK/err")"
expect_status 0 "already known" "peer add of a known peer says so" -- \
	peer add "$(cm M id)"
[ "$(cm A peer list | wc -l)" -eq 1 ] || fail "peer list: $(cm A peer list)"
pass "peer add keeps one entry per peer"

# --- messages name the value and the fix
expect_status 2 "give 8 to 64 hex characters" "show of 66 hex characters" -- \
	show "$(printf 'a%.0s' $(seq 66))"
expect_status 2 "unknown subcommand of 'store': bogus" "store bogus named" -- \
	store bogus
expect_status 2 "unknown subcommand of 'key': --bogus-opt" "key --bogus-opt named" -- \
	key --bogus-opt
expect_status 2 "not starting with '.'" "key new .hidden explains the dot" -- \
	key new .hidden
expect_status 2 "unexpected text '/extra' after the port" "peer add names trailing text" -- \
	peer add "clipmesh://$(cat "$WORK/M/node.pub")@127.0.0.1:17703/extra"
expect_status 1 "clipmesh import $WORK/all.cmx" "verify of an export points to import" -- \
	verify "$WORK/all.cmx"
printf '\x05' >"$WORK/uint.rec"
cm A verify "$WORK/uint.rec" >"$WORK/out" && fail "verify took a bare integer"
grep -qF "is an unsigned integer at byte 0, expected an array" "$WORK/out" ||
	fail "verify message: $(cat "$WORK/out")"
pass "verify uses 'an' before a vowel"
long=$(printf 'x%.0s' $(seq 300))
expect_status 2 "invalid --tag 'xxxx" "a 300-byte --tag is named" -- feed --tag "$long"
grep -qF "$long" "$WORK/err" && fail "a 300-byte value is echoed whole"
grep -qF "...'" "$WORK/err" || fail "a cut value has no ellipsis: $(cat "$WORK/err")"
pass "echoed values are cut with an ellipsis"
expect_status 2 "clipmesh: unexpected argument" "usage errors use the clipmesh: prefix" -- \
	feed stray
esc=$(printf '\033[2J')
for args in "feed --since" "feed --until" "feed --limit" "feed --cursor" \
	"export -o $WORK/x.cmx --since" "export -o $WORK/x.cmx --until" \
	"feed" "show"; do
	# shellcheck disable=SC2086 # args holds several words on purpose
	cm A $args "x${esc}y" >/dev/null 2>"$WORK/err" && fail "$args took junk"
	if grep -qF "$esc" "$WORK/err"; then
		fail "$args echoes an escape sequence raw: $(cat -v "$WORK/err")"
	fi
	grep -qF 'x\x1b[2Jy' "$WORK/err" ||
		fail "$args does not escape the value: $(cat -v "$WORK/err")"
done
pass "errors escape the values they echo"

# A newline or escape sequence in a file path, identity name, product or
# home cannot forge a line of output or recolour the terminal.
forged=$(printf 'x\nclipmesh: forged\033[31m')
expect_forgery_escaped() {
	local what=$1
	if grep -q '^clipmesh: forged' "$WORK/err" || grep -qF "$esc" "$WORK/err" ||
		grep -qF "$(printf '\033')" "$WORK/err"; then
		fail "$what prints control characters raw: $(cat -v "$WORK/err")"
	fi
	grep -qF 'x\nclipmesh: forged\x1b[31m' "$WORK/err" ||
		fail "$what does not escape the value: $(cat -v "$WORK/err")"
	pass "$what is escaped in errors"
}
cm A publish "$WORK/$forged" --as alice --product gtin:2000000001012 \
	--title t 2>"$WORK/err" && fail "publish took a missing file"
expect_forgery_escaped "a file path"
cm A publish "$blender" --as "$forged" --product gtin:2000000001012 \
	--title t 2>"$WORK/err" && fail "publish took an invalid identity"
expect_forgery_escaped "an --as name"
cm A publish "$blender" --as alice --product "gtin:$forged" \
	--title t 2>"$WORK/err" && fail "publish took an invalid product"
expect_forgery_escaped "a --product value"
"$CLIPMESH" --home "$WORK/$forged" status 2>"$WORK/err" &&
	fail "status took a missing home"
expect_forgery_escaped "a --home path"
cm A status | grep -q "^records .* 1 profile$" || fail "status: $(cm A status)"
pass "status counts use the singular for one"

finish
