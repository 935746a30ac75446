#!/bin/bash
# Command-line errors: each bad input exits non-zero with a message that
# names the value, and leaves the store unchanged.
source "$(dirname "$0")/lib.sh"

new_home A
cm A key new alice >/dev/null
blender="$SAMPLES/review-blender.mp4"

# Prints the id of the JSON record on stdin (the first line).
json_id() {
	python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["id"])'
}

# Prints a fingerprint of the store's contents.
store_state() {
	cm A status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["records"], s["media"])'
}

# Usage: expect_error STATUS VALUE DESCRIPTION -- ARGS...
# Runs clipmesh on home A and checks the exit status, that stderr names
# VALUE, and that the store did not change.
expect_error() {
	local want=$1 value=$2 what=$3 status=0 before after
	shift 4
	before=$(store_state)
	cm A "$@" >"$WORK/out" 2>"$WORK/err" || status=$?
	after=$(store_state)
	[ "$status" -eq "$want" ] || fail "$what: exit $status, expected $want ($(cat "$WORK/err"))"
	grep -qF -- "$value" "$WORK/err" || fail "$what: message does not name '$value': $(cat "$WORK/err")"
	[ "$before" = "$after" ] || fail "$what: store changed"
	pass "$what"
}

expect_error 1 "no-such-file.mp4" "missing file rejected" -- \
	publish "$WORK/no-such-file.mp4" --as alice \
	--product gtin:2000000001012 --title t
printf 'just some text, not a video\n' >"$WORK/notes.txt"
expect_error 1 "notes.txt" "unknown media type rejected" -- \
	publish "$WORK/notes.txt" --as alice --product gtin:2000000001012 \
	--title t
expect_error 2 "'0'" "rating 0 rejected" -- \
	publish "$blender" --as alice --product gtin:2000000001012 --title t \
	--rating 0
expect_error 2 "'6'" "rating 6 rejected" -- \
	publish "$blender" --as alice --product gtin:2000000001012 --title t \
	--rating 6
expect_error 2 "gtin:2000000001013" "bad GTIN check digit rejected" -- \
	publish "$blender" --as alice --product gtin:2000000001013 --title t
expect_error 1 "bob" "unknown identity rejected" -- \
	publish "$blender" --as bob --product gtin:2000000001012 --title t
expect_error 2 "--bogus" "unknown option rejected" -- \
	publish "$blender" --bogus
expect_error 2 "invalid --title: title is empty" "empty --title named" -- \
	publish "$blender" --as alice --product gtin:2000000001012 --title ''
expect_error 2 "invalid --lang: lang is 1 byte" "short --lang named" -- \
	publish "$blender" --as alice --product gtin:2000000001012 --title t \
	--lang e
expect_error 2 "option --title needs a value" "option without value named" -- \
	publish "$blender" --as alice --product gtin:2000000001012 --title
status=0
"$CLIPMESH" --log-level >/dev/null 2>"$WORK/err" || status=$?
[ "$status" -eq 2 ] && grep -q "option --log-level needs a value" "$WORK/err" ||
	fail "--log-level without a value: exit $status, $(cat "$WORK/err")"
pass "global option without value named"

# Usage: expect_usage TEXT DESCRIPTION -- ARGS...
# Runs clipmesh with ARGS alone and checks for exit 2 and TEXT on stderr.
expect_usage() {
	local text=$1 what=$2 status=0
	shift 3
	"$CLIPMESH" "$@" >/dev/null 2>"$WORK/err" || status=$?
	[ "$status" -eq 2 ] || fail "$what: exit $status, expected 2 ($(cat "$WORK/err"))"
	grep -qF -- "$text" "$WORK/err" || fail "$what: stderr lacks '$text': $(cat "$WORK/err")"
	pass "$what"
}
expect_usage "--home given twice" "global --home twice rejected" -- \
	--home "$WORK/A" --home "$WORK/B" status
expect_usage "--log-level given twice" "global --log-level twice rejected" -- \
	--log-level info --log-level debug --home "$WORK/A" status
# One error per mistake: the rejected --home is not also unknown.
for args in "--home $WORK/A --home $WORK/B status" "--home"; do
	# shellcheck disable=SC2086 # split the arguments on purpose
	"$CLIPMESH" $args >/dev/null 2>"$WORK/err" || true
	[ "$(grep -c '^clipmesh: ' "$WORK/err")" -eq 1 ] ||
		fail "'clipmesh $args' printed other than one error: $(cat "$WORK/err")"
	if grep -q "unknown option" "$WORK/err"; then
		fail "'clipmesh $args' also calls --home unknown"
	fi
done
pass "a rejected global --home prints one error"
expect_usage "--home given before and after the command" \
	"--home before and after the command rejected" -- \
	--home "$WORK/A" status --home "$WORK/B"
expect_usage "unexpected argument 'extra'" "store check extra argument rejected" -- \
	--home "$WORK/A" store check extra
"$CLIPMESH" --home="$WORK/A" --log-level=warn status >/dev/null ||
	fail "global --home=DIR and --log-level=LEVEL rejected"
pass "global options take --name=value"
expect_error 2 "zz" "invalid author key rejected" -- feed --author zz
expect_error 2 "feed --json" "short author key points to whole keys" -- \
	feed --author 0123abcd
expect_error 1 "0123456789abcdef" "unknown id rejected" -- \
	show 0123456789abcdef

mkfifo "$WORK/pipe.mp4"
expect_error 1 "pipe.mp4" "FIFO rejected without waiting for a writer" -- \
	publish "$WORK/pipe.mp4" --as alice --product gtin:2000000001012 \
	--title t
for command in import verify; do
	status=0
	timeout 20 "$CLIPMESH" --home "$WORK/A" "$command" "$WORK/pipe.mp4" \
		>/dev/null 2>"$WORK/err" || status=$?
	[ "$status" -ne 124 ] || fail "$command waited for a writer of a FIFO"
	[ "$status" -eq 1 ] || fail "$command of a FIFO: exit $status: $(cat "$WORK/err")"
	grep -qF "pipe.mp4 is not a regular file" "$WORK/err" ||
		fail "$command of a FIFO: $(cat "$WORK/err")"
	pass "$command rejects a FIFO without waiting for a writer"
done
# A sysfs file reports 4096 bytes but reads fewer, as a file does that
# shrinks while publish hashes it.
for short in /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/profiling; do
	[ -r "$short" ] && [ "$(stat -c %s "$short")" -gt "$(wc -c <"$short")" ] && break
	short=
done
if [ -n "$short" ]; then
	expect_error 1 "$short shrank while it was being published; publish it again" \
		"file that shrinks while hashing named" -- \
		publish "$short" --as alice --product gtin:2000000001012 --title t
fi
expect_error 2 "garbage" "invalid listen endpoint rejected" -- \
	node --listen garbage
expect_error 2 "port 99999 is out of range 1-65535" "listen port out of range named" -- \
	node --listen tcp://127.0.0.1:99999
expect_error 2 "the port is missing" "listen without a port named" -- \
	node --listen tcp://127.0.0.1

status=0
"$CLIPMESH" --home "" status 2>"$WORK/err" || status=$?
[ "$status" -eq 2 ] || fail "empty --home: exit $status, expected 2"
grep -q -- "--home is empty" "$WORK/err" || fail "empty --home not explained: $(cat "$WORK/err")"
pass "empty --home rejected"

long_home=$WORK/$(printf 'h%.0s' $(seq 1 120))
status=0
"$CLIPMESH" --home "$long_home" init 2>"$WORK/err" || status=$?
[ "$status" -ne 0 ] || fail "init accepted a home too long for the control socket"
grep -q "too long" "$WORK/err" || fail "long home not explained: $(cat "$WORK/err")"
[ ! -e "$long_home" ] || fail "init created a home it cannot use"
pass "home too long for the control socket rejected at init"

cp "$WORK/A/config" "$WORK/config.saved"
printf 'listen = tcp://0.0.0.0:7701\n' >>"$WORK/A/config"
expect_error 2 "0.0.0.0" "id of a wildcard listen endpoint asks for --listen" -- id
cp "$WORK/config.saved" "$WORK/A/config"
out=$(cm A id --listen tcp://127.0.0.1:9)
case "$out" in
clipmesh://*@127.0.0.1:9) ;;
*) fail "id --listen printed '$out'" ;;
esac
pass "id prints the address for --listen"

# An uninitialised home is reported with the fix, for every command that
# needs one, and is not created.
status=0
"$CLIPMESH" --home "$WORK/nohome" publish "$blender" --as alice \
	--product gtin:2000000001012 --title t 2>"$WORK/err" || status=$?
[ "$status" -eq 1 ] || fail "uninitialised home: exit $status"
grep -qF "$WORK/nohome" "$WORK/err" || fail "uninitialised home not named: $(cat "$WORK/err")"
grep -qF "clipmesh init" "$WORK/err" || fail "no hint to run init"
[ ! -e "$WORK/nohome" ] || fail "publish created the home"
pass "uninitialised home rejected with the fix"

# A valid publish after all that works, and the identity's clip shows.
id=$(cm A publish "$blender" --as alice --product gtin:2000000001012 \
	--title "Blender" --rating 4 --tag kitchen --tag review)
[ "${#id}" -eq 64 ] || fail "publish printed '$id', expected a 64-char id"
has_clips A 1 || fail "feed should hold the new clip"
cm A show "${id:0:12}" --json | python3 -c '
import json, sys
c = json.load(sys.stdin)
assert c["verified"] is True, c
assert c["title"] == "Blender", c
assert c["rating"] == 4, c
assert c["tags"] == ["kitchen", "review"], c
assert c["media"][0]["type"] == "video/mp4", c
' || fail "show --json of the new clip"
pass "valid publish stores a verified clip"

# The same media published in a second clip is stored once.
media_before=$(cm A status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["media"])')
second=$(cm A publish "$blender" --as alice --product gtin:2000000001012 \
	--title "Blender, one month later")
[ "$second" != "$id" ] || fail "a clip with another title got the same id"
media_after=$(cm A status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["media"])')
[ "$media_before" = "$media_after" ] || fail "media stored twice: $media_before then $media_after"
has_clips A 2 || fail "feed should hold both clips"
pass "media shared by two clips is stored once"

# Export filters select clips; import of a file cut inside a length
# header stops with a counted reason.
cm A export --tag kitchen -o "$WORK/kitchen.export" 2>/dev/null
new_home K
out=$(cm K import "$WORK/kitchen.export")
[ "$out" = "accepted 1, duplicate 0, rejected 0" ] || fail "export --tag then import: $out"
head -c 18 "$WORK/kitchen.export" >"$WORK/cut.export"
status=0
cm K import --json "$WORK/cut.export" >"$WORK/out" 2>/dev/null || status=$?
[ "$status" -eq 1 ] || fail "import of a cut file: exit $status"
grep -q '"rejected": *"truncated"' "$WORK/out" || fail "cut file not reported as truncated: $(cat "$WORK/out")"
cm K status --json | grep -q '"rejected.truncated": *1' || fail "truncated import not counted"
pass "export filters and a cut import file"

# An output path that is not a regular file is rejected, because the
# rename that completes the file would replace it. A link planted at the
# partial file's name is not followed.
mkfifo "$WORK/fifo"
expect_error 1 "$WORK/fifo" "media get to a FIFO rejected" -- \
	media get "$id" -o "$WORK/fifo"
[ -p "$WORK/fifo" ] || fail "media get replaced the FIFO"
expect_error 1 "$WORK/fifo" "export to a FIFO rejected" -- \
	export -o "$WORK/fifo"
[ -p "$WORK/fifo" ] || fail "export replaced the FIFO"
printf 'keep me\n' >"$WORK/victim"
ln -s "$WORK/victim" "$WORK/got.mp4.partial"
cm A media get "$id" -o "$WORK/got.mp4" || fail "media get beside a planted link failed"
[ "$(cat "$WORK/victim")" = "keep me" ] || fail "media get wrote through a planted link"
cmp -s "$WORK/got.mp4" "$blender" || fail "media get wrote other bytes"
ln -s "$WORK/victim" "$WORK/all.export.partial"
cm A export -o "$WORK/all.export" 2>/dev/null || fail "export beside a planted link failed"
[ "$(cat "$WORK/victim")" = "keep me" ] || fail "export wrote through a planted link"
pass "output files are written beside, not through, a planted link"

stranger=$(printf '0%.0s' $(seq 1 64))
expect_error 1 "$stranger" "unfollow of a key not followed names it" -- \
	unfollow "$stranger"
expect_error 2 "name is empty" "empty profile name rejected" -- \
	profile set --as alice --name ''
expect_error 2 "--tag 'two words'" "tag with a space rejected" -- \
	publish "$blender" --as alice --product gtin:2000000001012 --title t \
	--tag kitchen --tag 'two words'

# media get rejects a malformed id as bad usage, as show does. For a clip
# with two media it names both hashes and writes nothing. A clip with one
# media is written whole.
expect_error 2 "'a32d'" "media get of a short id rejected" -- \
	media get a32d -o "$WORK/short.out"
[ ! -e "$WORK/short.out" ] || fail "media get of a short id wrote a file"
two=$(cm A publish "$SAMPLES/photo-backpack.jpg" "$blender" --as alice \
	--product gtin:2000000004044 --title "Backpack and blender")
expect_error 2 "has 2 media" "media get of a clip with two media rejected" \
	-- media get "$two" -o "$WORK/two.out"
for hash in $(cm A show "$two" --json | python3 -c '
import json, sys
print(" ".join(m["hash"] for m in json.load(sys.stdin)["media"]))'); do
	grep -qF "$hash" "$WORK/err" || fail "media get does not name media $hash: $(cat "$WORK/err")"
done
[ ! -e "$WORK/two.out" ] || fail "media get of a clip with two media wrote a file"
[ ! -e "$WORK/two.out.partial" ] || fail "media get left a partial file"
cm A media get "$id" -o "$WORK/one.out" || fail "media get of a one-media clip failed"
cmp -s "$WORK/one.out" "$blender" || fail "media get wrote other bytes than the sample"
twice=$(cm A publish "$blender" "$blender" --as alice \
	--product gtin:2000000001012 --title "Blender, listed twice")
cm A media get "$twice" -o "$WORK/twice.out" ||
	fail "media get of a clip that lists one media twice failed"
cmp -s "$WORK/twice.out" "$blender" || fail "media get of a twice-listed media wrote other bytes"
pass "media get writes one media, names the choices of a clip with two"

# Retracting twice prints the first retraction and signs nothing new. A
# prefix of a retracted clip gets a hint.
retraction=$(cm A retract "$two" --as alice)
records_before=$(store_state)
again=$(cm A retract "$two" --as alice 2>"$WORK/err") ||
	fail "second retract failed: $(cat "$WORK/err")"
[ "$again" = "$retraction" ] || fail "second retract printed '$again', expected $retraction"
grep -q "already retracted" "$WORK/err" || fail "second retract not explained: $(cat "$WORK/err")"
[ "$(store_state)" = "$records_before" ] || fail "second retract changed the store"
expect_error 1 "full id" "prefix of a retracted clip explained" -- \
	retract "${two:0:12}" --as alice
pass "retracting a retracted clip prints its retraction"

# A node that cannot start names the cause and the fix: the listen port
# is taken, or another node runs in the home.
port=$(free_port)
start A node --listen "tcp://127.0.0.1:$port"
new_home B
status=0
timeout 60 "$CLIPMESH" --home "$WORK/B" node \
	--listen "tcp://127.0.0.1:$port" 2>"$WORK/err" || status=$?
[ "$status" -eq 1 ] || fail "node on a taken port: exit $status, expected 1"
grep -qF "tcp://127.0.0.1:$port" "$WORK/err" || fail "taken port not named: $(cat "$WORK/err")"
grep -qF -- "--listen" "$WORK/err" || fail "no hint to pick another port: $(cat "$WORK/err")"
status=0
timeout 60 "$CLIPMESH" --home "$WORK/A" node \
	--listen "tcp://127.0.0.1:$(free_port)" 2>"$WORK/err" || status=$?
[ "$status" -eq 1 ] || fail "second node in a home: exit $status, expected 1"
grep -qF "pid ${NODE_PID[A]}" "$WORK/err" || fail "running node's pid not named: $(cat "$WORK/err")"
cm A status >"$WORK/out" || fail "status with a running node failed"
grep -qE "^node +creator on tcp://127.0.0.1:$port" "$WORK/out" ||
	fail "status text lacks the running node: $(cat "$WORK/out")"
grep -qE "^records +[0-9]+ clips" "$WORK/out" || fail "status text lacks the counts: $(cat "$WORK/out")"
stop A
pass "node start failures name the port or the running node"

cm A status >"$WORK/out" || fail "status without a node failed"
grep -q "^node .*not running" "$WORK/out" ||
	fail "status text does not say that no node runs: $(cat "$WORK/out")"
! grep -q "{" "$WORK/out" || fail "status without --json printed JSON: $(cat "$WORK/out")"
pass "status prints a text summary without --json"

# An id prefix that two records share is the user's input to fix: exit 2,
# naming the prefix, for every command that takes an id.
python3 "$(dirname "$0")/http_api.py" ambiguous "$WORK/twins.export" \
	>"$WORK/twins.prefix"
twins=$(cat "$WORK/twins.prefix")
cm A import "$WORK/twins.export" >/dev/null
expect_error 2 "'$twins'" "ambiguous prefix in show is bad usage" -- \
	show "$twins"
grep -q "give more characters" "$WORK/err" ||
	fail "ambiguous prefix has no hint: $(cat "$WORK/err")"
expect_error 2 "'$twins'" "ambiguous prefix in retract is bad usage" -- \
	retract "$twins" --as alice
expect_error 2 "'$twins'" "ambiguous prefix in media get is bad usage" -- \
	media get "$twins" -o "$WORK/twin.out"
[ ! -e "$WORK/twin.out" ] || fail "media get of an ambiguous prefix wrote a file"

# follow takes only keys that can sign: all zeros and another point of
# small order are bad usage. The home's own identity needs no follow: the
# command prints why, exits 0 and stores nothing.
zero=$(printf '0%.0s' $(seq 1 64))
expect_error 2 "'$zero'" "follow of the all-zero key rejected" -- \
	follow "$zero"
small_order=01$(printf '0%.0s' $(seq 1 62))
expect_error 2 "'$small_order'" "follow of a small-order key rejected" -- \
	follow "$small_order"
alice_key=$(cm A key list --json | python3 -c '
import json, sys
print(json.loads(sys.stdin.readline())["key"])')
cm A follow "$alice_key" 2>"$WORK/err" ||
	fail "follow of the own identity failed: $(cat "$WORK/err")"
grep -q "identity 'alice' of this home" "$WORK/err" ||
	fail "follow of the own identity not explained: $(cat "$WORK/err")"
grep -q "keeps its own clips" "$WORK/err" ||
	fail "follow of the own identity does not say why: $(cat "$WORK/err")"
[ -z "$(cm A following)" ] || fail "follow stored the own identity"
pass "follow rejects invalid keys and explains the own identity"

# Hex keys and ids are the same value in either case: no second entry,
# no miss.
new_home F
bob=$(cm F key new bob)
cm A follow "${bob^^}" || fail "follow of an upper-case key failed"
cm A follow "$bob" || fail "follow of the lower-case key failed"
[ "$(cm A following)" = "$bob" ] ||
	fail "follow in two cases stored: $(cm A following)"
cm A unfollow "${bob^^}" || fail "unfollow of an upper-case key failed"
[ -z "$(cm A following)" ] || fail "unfollow in upper case left the key"
peer=$(cm F id)
key=${peer#clipmesh://}
key=${key%%@*}
cm A peer add "clipmesh://${key^^}@127.0.0.1:7799" ||
	fail "peer add of an upper-case key failed"
cm A peer add "clipmesh://$key@127.0.0.1:7799" ||
	fail "peer add of the lower-case key failed"
cm A peer add "clipmesh://$key@Node1.Example.ORG:7799" ||
	fail "peer add of a host in mixed case failed"
cm A peer add "clipmesh://$key@node1.example.org:7799" ||
	fail "peer add of a lower-case host failed"
cm A peer list >"$WORK/peers"
[ "$(grep -c "^clipmesh://$key@127.0.0.1:7799\$" "$WORK/peers")" -eq 1 ] ||
	fail "peer add in two cases: $(cat "$WORK/peers")"
[ "$(grep -c "^clipmesh://$key@node1.example.org:7799\$" "$WORK/peers")" -eq 1 ] ||
	fail "peer add of a host in two cases: $(cat "$WORK/peers")"
[ "$(grep -ci "$key" "$WORK/peers")" -eq 2 ] ||
	fail "peer list holds other spellings: $(cat "$WORK/peers")"
[ "$(cm A show "${id^^}" --json | json_id)" = "$id" ] ||
	fail "show of an upper-case id did not find it"
[ "$(cm A feed --author "${alice_key^^}" --json | wc -l)" -eq \
	"$(cm A feed --author "$alice_key" --json | wc -l)" ] ||
	fail "feed --author in upper case found other clips"
pass "keys, addresses and ids in upper case find the same entries"

# Tags match byte for byte, as the protocol compares them: 'Kitchen' is
# not 'kitchen'. A filter tag that no clip can carry is bad usage.
upper=$(cm A publish "$blender" --as alice --product gtin:2000000001012 \
	--title "Blender, upper-case tag" --tag Kitchen)
cm A feed --tag Kitchen --json >"$WORK/out"
[ "$(wc -l <"$WORK/out")" -eq 1 ] && [ "$(json_id <"$WORK/out")" = "$upper" ] ||
	fail "feed --tag Kitchen did not find exactly the clip tagged Kitchen"
! cm A feed --tag kitchen --json | grep -qF "$upper" ||
	fail "feed --tag kitchen found the clip tagged Kitchen"
expect_error 2 "'two words'" "feed tag with a space rejected" -- \
	feed --tag 'two words'
expect_error 2 "--tag ''" "empty feed tag rejected" -- feed --tag ''
expect_error 2 "'two words'" "export tag with a space rejected" -- \
	export --tag 'two words' -o "$WORK/tag.export"
[ ! -e "$WORK/tag.export" ] || fail "export with an invalid tag wrote a file"
pass "tag filters match by case and reject invalid tags"

# An empty path is bad usage for every command that takes one, before
# anything is opened or created.
expect_error 2 "DIR is empty" "store backup of an empty path rejected" -- \
	store backup ''
expect_error 2 "FILE is empty" "import of an empty path rejected" -- \
	import ''
expect_error 2 "FILE 2 of 2 is empty" "verify of an empty path rejected" -- \
	verify "$WORK/twins.export" ''
expect_error 2 "FILE is empty" "publish of an empty path rejected" -- \
	publish '' --as alice --product gtin:2000000001012 --title t
expect_error 2 "--out is empty" "media get to an empty path rejected" -- \
	media get "$id" -o ''
expect_error 2 "--out is empty" "export to an empty path rejected" -- \
	export -o ''
expect_error 2 "--passphrase-file is empty" \
	"empty passphrase file rejected" -- \
	key new carol --passphrase-file ''
[ ! -e "$WORK/A/keys/carol.pub" ] || fail "key new with an empty path made a key"
expect_error 2 "--allow-file is empty" "empty allow-list path rejected" -- \
	mirror --allow-file ''

# media get replaces an existing file, as curl -o and cp do, but only
# once the new media is complete: a failed get keeps the old file.
printf 'old bytes\n' >"$WORK/existing.mp4"
cm A media get "$id" -o "$WORK/existing.mp4" ||
	fail "media get over an existing file failed"
cmp -s "$WORK/existing.mp4" "$blender" ||
	fail "media get did not replace the existing file"
twin=$(cm A feed --json --limit 1000 | python3 -c '
import json, sys
print(next(c["id"] for c in map(json.loads, sys.stdin)
           if c["title"].startswith("Prefix twin")))')
printf 'old bytes\n' >"$WORK/kept.mp4"
expect_error 1 "not fetched" "media get of absent media fails" -- \
	media get "$twin" -o "$WORK/kept.mp4"
[ "$(cat "$WORK/kept.mp4")" = "old bytes" ] ||
	fail "a failed media get changed the existing file"
[ ! -e "$WORK/kept.mp4.partial" ] || fail "a failed media get left a partial file"
pass "media get replaces a file only with complete media"

# An export cut short stops the import with that reason, also when no
# node runs to be notified of the records taken before it.
cm A export -o "$WORK/all.export" 2>/dev/null
head -c -10 "$WORK/all.export" >"$WORK/cut.export"
new_home cut
status=0
cm cut import "$WORK/cut.export" >/dev/null 2>"$WORK/err" || status=$?
[ "$status" -eq 1 ] || fail "import of a cut export exited $status"
grep -q "import stopped: the file ends inside record" "$WORK/err" ||
	fail "import of a cut export names another reason: $(cat "$WORK/err")"
pass "an import cut short names the cut, not the missing node"

# Every command prints its --help and exits 0.
for command in key peer media profile store config init "key new" \
	"key list" publish retract "profile set" \
	feed show "media get" export import follow unfollow following node \
	mirror "peer add" "peer list" id status "store check" \
	"store backup" "config show" doctor; do
	# shellcheck disable=SC2086
	"$CLIPMESH" $command --help >"$WORK/out" ||
		fail "$command --help failed"
	grep -q "^usage: clipmesh $command" "$WORK/out" || fail "$command --help has no usage line"
	! head -1 "$WORK/out" | grep -q " $" || fail "$command usage line ends in a blank"
	if grep -q "^  --json" "$WORK/out"; then
		head -1 "$WORK/out" | grep -qF "[--json]" ||
			fail "$command takes --json but its usage line omits it"
	fi
done
pass "every command has --help"
finish
