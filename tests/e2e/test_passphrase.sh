#!/bin/bash
# Identity keys sealed with a passphrase, through the real clipmesh binary.
# The passphrase is typed on a terminal (a pseudo-terminal here) without
# echo, or read from a file or CLIPMESH_PASSPHRASE. Wrong passphrases and
# readable key files fail with exit 1 and never print key bytes.
# `key passwd` changes the passphrase, and a node starts unattended next
# to sealed keys.
source "$(dirname "$0")/lib.sh"

# Runs clipmesh on a pseudo-terminal, types each LINE after the next
# passphrase prompt, and exits with clipmesh's status. Fails when a typed
# line shows up in the terminal output (echo was on). The output goes to
# $WORK/tty.out.
# Usage: on_tty LINE... -- ARG...
on_tty() {
	python3 - "$CLIPMESH" "$WORK/tty.out" "$@" <<'PY'
import os, pty, re, select, sys, time

binary, out_path = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
split = args.index("--")
lines, argv = args[:split], args[split + 1:]
PROMPT = re.compile(rb"[Pp]assphrase[^\n]*?: ")

pid, fd = pty.fork()
if pid == 0:
    os.execv(binary, [binary] + argv)

output = b""
def read_more(seconds):
    """Reads what the terminal has; False once the program closed it."""
    global output
    ready, _, _ = select.select([fd], [], [], seconds)
    if not ready:
        return True
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        return False
    output += chunk
    return bool(chunk)

for line in lines:
    seen = len(PROMPT.findall(output))
    deadline = time.time() + 60
    while len(PROMPT.findall(output)) <= seen:
        if time.time() > deadline or not read_more(0.5):
            sys.exit("on_tty: no passphrase prompt: %r" % output)
    os.write(fd, line.encode() + b"\n")
while read_more(60):
    pass
_, status = os.waitpid(pid, 0)
open(out_path, "wb").write(output)
for line in lines:
    if line.encode() in output:
        sys.exit("on_tty: the terminal echoed the passphrase: %r" % output)
sys.exit(os.waitstatus_to_exitcode(status))
PY
}

# Runs clipmesh with the arguments, expects exit status STATUS, and keeps
# its stdout and stderr in $WORK/out and $WORK/err (appended to
# $WORK/all.out for the key-bytes check at the end).
# Usage: expect_status STATUS ARG...
expect_status() {
	local want=$1 status=0
	shift
	"$CLIPMESH" "$@" >"$WORK/out" 2>"$WORK/err" || status=$?
	cat "$WORK/out" "$WORK/err" >>"$WORK/all.out"
	[ "$status" -eq "$want" ] ||
		fail "clipmesh $* exited $status, expected $want:" \
			"$(cat "$WORK/err")"
}

new_home A
H=$WORK/A
# Without --title: each publish below gives its own, so that each makes
# a new clip.
publish_args=("$SAMPLES/photo-backpack.jpg" --product gtin:2000000004044
	--rating 4)

on_tty "first pass" "first pass" -- --home "$H" key new alice --passphrase ||
	fail "key new on a terminal: $(cat "$WORK/tty.out")"
cat "$WORK/tty.out" >>"$WORK/all.out"
grep -q "Repeat" "$WORK/tty.out" || fail "key new did not ask twice"
[ "$(stat -c %s "$H/keys/alice.key")" -eq 149 ] ||
	fail "sealed key file is not 149 bytes"
[ "$(stat -c %a "$H/keys/alice.key")" = 600 ] ||
	fail "sealed key file mode is not 600"
head -c 16 "$H/keys/alice.key" | grep -q "clipmesh-seckey" ||
	fail "sealed key file lacks its magic"
pass "key new --passphrase asks twice on a terminal without echo"

status=0
on_tty "one" "other" -- --home "$H" key new bob --passphrase || status=$?
[ "$status" -eq 1 ] || fail "differing passphrases exited $status, expected 1"
[ ! -e "$H/keys/bob.key" ] || fail "differing passphrases created a key"
pass "two different passphrases create nothing"

on_tty "first pass" -- --home "$H" publish "${publish_args[@]}" --as alice \
	--title "Sealed key review" ||
	fail "publish on a terminal: $(cat "$WORK/tty.out")"
cat "$WORK/tty.out" >>"$WORK/all.out"
pass "publish asks for the passphrase on a terminal"

CLIPMESH_PASSPHRASE=wrong expect_status 1 --home "$H" publish \
	"${publish_args[@]}" --as alice --title "Wrong passphrase"
grep -q "passphrase does not open identity 'alice'" "$WORK/err" ||
	fail "wrong passphrase message: $(cat "$WORK/err")"
pass "a wrong passphrase exits 1 and names the identity"

expect_status 2 --home "$H" publish "${publish_args[@]}" --as alice \
	--title "No passphrase" </dev/null
grep -q "CLIPMESH_PASSPHRASE" "$WORK/err" ||
	fail "no hint without a passphrase: $(cat "$WORK/err")"
pass "no passphrase and no terminal is a usage error with a hint"

printf 'first pass\n' >"$WORK/pass"
expect_status 0 --home "$H" publish "${publish_args[@]}" --as alice \
	--title "From a file" --passphrase-file "$WORK/pass"
clip=$(cat "$WORK/out")
CLIPMESH_PASSPHRASE="first pass" expect_status 0 --home "$H" profile set \
	--as alice --name "Alice"
expect_status 0 --home "$H" retract "$clip" --as alice \
	--passphrase-file "$WORK/pass"
pass "publish, profile set and retract take the passphrase from a file or the environment"

chmod 640 "$H/keys/alice.key"
expect_status 1 --home "$H" publish "${publish_args[@]}" --as alice \
	--title "Readable key" --passphrase-file "$WORK/pass"
grep -q "chmod 600" "$WORK/err" || fail "readable sealed key: $(cat "$WORK/err")"
chmod 600 "$H/keys/alice.key"
pass "a sealed key file readable by others is rejected"

printf 'second pass\n' >"$WORK/new"
CLIPMESH_PASSPHRASE="first pass" expect_status 0 --home "$H" key passwd \
	alice --new-passphrase-file "$WORK/new"
CLIPMESH_PASSPHRASE="first pass" expect_status 1 --home "$H" publish \
	"${publish_args[@]}" --as alice --title "Old passphrase"
expect_status 0 --home "$H" publish "${publish_args[@]}" --as alice \
	--title "After passwd" --passphrase-file "$WORK/new"
pass "key passwd changes the passphrase"

on_tty "second pass" "third pass" "third pass" -- --home "$H" key passwd \
	alice || fail "key passwd on a terminal: $(cat "$WORK/tty.out")"
cat "$WORK/tty.out" >>"$WORK/all.out"
CLIPMESH_PASSPHRASE="third pass" expect_status 0 --home "$H" publish \
	"${publish_args[@]}" --as alice --title "After the terminal passwd"
pass "key passwd asks for the old and twice for the new passphrase"

# A node starts without a prompt next to sealed identity keys.
start A node </dev/null
stop A
pass "a node starts unattended next to sealed keys"

# Unsealed, the key file shows the secret key. Its first 32 bytes are the
# secret seed (the last 32 are the public key, printed on purpose), and no
# earlier output may contain any of them.
CLIPMESH_PASSPHRASE="third pass" expect_status 0 --home "$H" key passwd \
	alice --no-passphrase
secret=$(head -c 128 "$H/keys/alice.key")
[ "${#secret}" -eq 128 ] || fail "the unsealed key file is not hex"
expect_status 0 --home "$H" publish "${publish_args[@]}" --as alice \
	--title "Plain again"
for part in "${secret:0:16}" "${secret:24:16}" "${secret:48:16}"; do
	! grep -qi "$part" "$WORK/all.out" "$WORK"/*.log ||
		fail "an output contains bytes of the secret key"
done
pass "no output or log contains bytes of the secret key"
finish
