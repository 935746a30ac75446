#!/bin/bash
# Settings: every setting of the table round-trips through HOME/config
# into 'config show' with its line, bad lines are named by line number
# and stop the node with exit 2, options override the file, a peer from
# the file connects, and the dist/ docs name every setting.
source "$(dirname "$0")/lib.sh"

DIST="$(dirname "$0")/../../dist"

# Prints the 'config show --json' objects of home NAME, one per line.
show_json() {
	local name=$1
	shift
	cm "$name" config show --json "$@"
}

# Prints a valid value of each setting that differs from its default,
# as "NAME<TAB>VALUE" lines, from the types and ranges the table gives.
pick_values() {
	show_json "$1" | python3 -c '
import json, re, sys

def parse_num(kind, text):
    units = {"size": {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30,
                      "T": 1 << 40},
             "duration": {"ms": 1, "s": 1000, "m": 60000, "h": 3600000,
                          "d": 86400000, "": 1000}}[kind]
    m = re.fullmatch(r"(\d+)([A-Za-z]*)", text)
    return int(m.group(1)) * units[m.group(2)]

def canonical(value, units, base):
    """Writes value with the largest unit that divides it, as clipmesh
    prints sizes and durations."""
    for name, size in units:
        if value % size == 0:
            return "%d%s" % (value // size, name)
    return "%d%s" % (value, base)

for line in sys.stdin:
    s = json.loads(line)
    kind, default = s["type"], s["default"]
    if kind == "enum":
        names = re.split(r", | or ", s["allowed"])
        value = next(n for n in names if n != default)
    elif kind == "endpoint":
        value = "tcp://127.0.0.1:17999"
    elif kind == "address":
        value = "127.0.0.1:18080"
    elif kind == "peer list":
        value = "clipmesh://" + "ab" * 32 + "@127.0.0.1:17998"
    elif kind == "count":
        low, high = map(int, re.search(r"from (\d+) to (\d+)",
                                        s["allowed"]).groups())
        value = str(low if str(low) != default else low + 1)
    elif kind in ("size", "duration"):
        m = re.search(r"(?:from|at least) (\w+)", s["allowed"])
        # One step above the minimum: valid and never a default here.
        if kind == "size":
            value = canonical(parse_num(kind, m.group(1)) + 1024,
                              [("T", 1 << 40), ("G", 1 << 30),
                               ("M", 1 << 20), ("K", 1 << 10)], "")
        else:
            value = canonical(parse_num(kind, m.group(1)) + 1000,
                              [("d", 86400000), ("h", 3600000),
                               ("m", 60000), ("s", 1000)], "ms")
    else:
        sys.exit("no value for type %s" % kind)
    print("%s\t%s" % (s["name"], value))
'
}

# Prints the value of setting KEY from 'config show --json' (a list for
# the peer list) and its source, tab-separated.
value_of() {
	local name=$1 key=$2
	shift 2
	show_json "$name" "$@" | python3 -c '
import json, sys
for line in sys.stdin:
    s = json.loads(line)
    if s["name"] == sys.argv[1]:
        v, src = s["value"], s["source"]
        if isinstance(v, list):
            v, src = ",".join(v), ",".join(src)
        print("%s\t%s" % (v, src))
' "$key"
}

# Every setting of the table, written into the file, shows up with its
# line; the loop runs over the table as 'config show' prints it.
cm a init >/dev/null
mapfile -t picks < <(pick_values a)
count=$(show_json a | wc -l)
[ "${#picks[@]}" -eq "$count" ] || fail "picked ${#picks[@]} values for $count settings"
[ "$count" -ge 17 ] || fail "config show lists only $count settings"
: >"$WORK/a/config"
for pick in "${picks[@]}"; do
	printf '%s = %s\n' "${pick%%$'\t'*}" "${pick#*$'\t'}" >>"$WORK/a/config"
done
line=0
for pick in "${picks[@]}"; do
	line=$((line + 1))
	key=${pick%%$'\t'*}
	want=${pick#*$'\t'}
	got=$(value_of a "$key")
	[ "${got#*$'\t'}" = "$WORK/a/config:$line" ] ||
		fail "$key: source is '${got#*$'\t'}', expected $WORK/a/config:$line"
	[ "${got%%$'\t'*}" = "$want" ] ||
		fail "$key: wrote '$want', config show prints '${got%%$'\t'*}'"
	pass "$key = $want round-trips with line $line"
done

# Options override the file, and --set reaches every setting.
got=$(value_of a listen --listen tcp://127.0.0.1:17001)
[ "$got" = "tcp://127.0.0.1:17001"$'\t'"--listen" ] || fail "--listen over the file: $got"
pass "--listen overrides the file"
got=$(value_of a feed_limit --set feed_limit=7)
[ "$got" = "7"$'\t'"--set" ] || fail "--set over the file: $got"
pass "--set overrides the file"
peer2="clipmesh://$(printf 'cd%.0s' {1..32})@127.0.0.1:17997"
got=$(value_of a peer --peer "$peer2")
[ "$got" = "$peer2"$'\t'"--peer" ] || fail "--peer over the file: $got"
pass "--peer replaces the file's peers"
got=$(CLIPMESH_HOME="$WORK/a" "$CLIPMESH" --log-level error config show --json |
	python3 -c 'import json,sys; print([s["source"] for s in map(json.loads, sys.stdin) if s["name"] == "log_level"][0])')
[ "$got" = "--log-level" ] || fail "global --log-level source is $got"
pass "global --log-level overrides the file"

# Bad lines: each is named with its line number, key, value and the
# allowed values; config show and the node exit 2.
cm b init >/dev/null
bad_case() {
	local text=$1 want=$2 status=0 out
	printf '# first line\nlisten = tcp://127.0.0.1:17002\n%s\n' "$text" >"$WORK/b/config"
	out=$(cm b config show 2>&1) || status=$?
	[ "$status" -eq 2 ] || fail "config show exited $status on '$text'"
	case "$out" in
	*"$WORK/b/config:3: $want"*) ;;
	*) fail "error for '$text' lacks '$want': $out" ;;
	esac
	status=0
	out=$(cm b node 2>&1) || status=$?
	[ "$status" -eq 2 ] || fail "node exited $status on '$text'"
	case "$out" in
	*"$WORK/b/config:3: $want"*) ;;
	*) fail "node error for '$text' lacks '$want': $out" ;;
	esac
	pass "line 3 '$text' rejected: $want"
}
bad_case "bogus = 1" "unknown setting 'bogus'"
bad_case "media_max = 12Q" "invalid value '12Q' for media_max: expected a size from 1 to 4G"
bad_case "media = some" "invalid value 'some' for media: expected all, followed or none"
bad_case "peers_max = 1000" "invalid value '1000' for peers_max: expected a whole number from 1 to 64"
bad_case "sync_interval = 1w" "invalid value '1w' for sync_interval"
bad_case "peer = clipmesh://zz@127.0.0.1:1" "invalid value 'clipmesh://zz@127.0.0.1:1' for peer"
bad_case "no equals sign" "expected 'key = value', '[section]' or a comment"
printf '[limits]\n[node]\n' >"$WORK/b/config"
cm b config show >/dev/null || fail "section headers alone do not parse"
pass "section headers alone parse"
printf '[limits]\nlisten = tcp://127.0.0.1:1\n' >"$WORK/b/config"
status=0
out=$(cm b config show 2>&1) || status=$?
[ "$status" -eq 2 ] && [[ "$out" == *"config:2: listen belongs in [node], not [limits]"* ]] ||
	fail "key in the wrong section: status $status: $out"
pass "a key in the wrong section is rejected"
: >"$WORK/b/config"
status=0
out=$(cm b node --media-max 0 2>&1) || status=$?
[ "$status" -eq 2 ] && [[ "$out" == *"--media-max: invalid value '0'"* ]] ||
	fail "bad option value: status $status: $out"
pass "a bad option value exits 2 and names the option"

# A node takes its peers and limits from the file.
new_home c
new_home d
echo "peer = $(addr_of c)" >>"$WORK/d/config"
printf '[limits]\nsync_interval = 2s\n' >>"$WORK/d/config"
start c node
start d node
peer_connected() {
	cm d status --json | python3 -c '
import json, sys
peers = json.load(sys.stdin)["node"]["peers"]
sys.exit(0 if any(p["connected"] and p["direction"] == "out" for p in peers) else 1)'
}
wait_for 30 "d to connect to the peer from its config" peer_connected
pass "a peer line of the config connects"

# The shipped example is the output of 'config example', and the manual
# page describes every setting.
diff -u "$DIST/clipmesh.conf.example" <(cm a config example) ||
	fail "dist/clipmesh.conf.example differs from 'clipmesh config example'"
pass "dist/clipmesh.conf.example matches the table"
for key in $(show_json a | python3 -c 'import json,sys; [print(json.loads(l)["name"]) for l in sys.stdin]'); do
	grep -q "^#$key = " "$DIST/clipmesh.conf.example" ||
		fail "clipmesh.conf.example lacks $key"
	grep -A1 -x '\.TP' "$DIST/man/clipmesh.conf.5" | grep -qx "\.B $key" ||
		fail "clipmesh.conf.5 lacks an entry '.TP .B $key'"
done
pass "the example and clipmesh.conf(5) name all $count settings"

# Each entry of the manual page gives the table's default near its name.
show_json a | python3 -c '
import json, sys
page = open(sys.argv[1]).read().split("\n")
for line in sys.stdin:
    s = json.loads(line)
    at = next(i for i in range(1, len(page))
              if page[i] == ".B " + s["name"] and page[i - 1] == ".TP")
    entry = " ".join(page[at + 1:at + 6])
    if s["default"] and s["default"] not in entry:
        sys.exit("clipmesh.conf.5: entry %s lacks its default %s" %
                 (s["name"], s["default"]))
' "$DIST/man/clipmesh.conf.5" || fail "a default in clipmesh.conf.5 differs from the table"
pass "clipmesh.conf(5) gives every default of the table"

finish
