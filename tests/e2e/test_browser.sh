#!/bin/bash
# The mirror's feed page in a real browser. Creator node A publishes the
# sample clips as alice (display name "Alice Reviews"), mirror M replicates
# them and serves the page and the HTTP API on 127.0.0.1, and
# tests/browser/feed_test.js drives Debian's chromium through
# playwright-core against M; that file lists the checks. Screenshots go to
# $BROWSER_DIR/artifacts.
#
# Exits 77, which CTest reports as skipped, when the clipmesh binary has no
# `mirror --http`. A missing node, npm or chromium is a failure.
source "$(dirname "$0")/lib.sh"

: "${BROWSER_DIR:?set BROWSER_DIR to a build folder for npm packages and screenshots}"
browser_src=$(cd "$(dirname "$0")/../browser" && pwd)
chromium=${CHROMIUM:-/usr/bin/chromium}

if ! "$CLIPMESH" mirror --help 2>&1 | grep -q -- '--http'; then
	echo "SKIP: $CLIPMESH has no 'mirror --http' yet, so there is no feed page to test"
	exit 77
fi
for tool in node npm "$chromium"; do
	command -v "$tool" >/dev/null ||
		fail "$tool not found: run scripts/install-deps.sh as root"
done

# playwright-core, at the version package-lock.json pins, installed once
# per build folder and again when the lock file changes.
mkdir -p "$BROWSER_DIR"
if ! cmp -s "$browser_src/package-lock.json" "$BROWSER_DIR/package-lock.json" ||
   [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ]; then
	cp "$browser_src/package.json" "$browser_src/package-lock.json" \
		"$BROWSER_DIR/"
	(cd "$BROWSER_DIR" && npm ci --no-audit --no-fund) >"$WORK/npm.log" 2>&1 ||
		fail "npm ci in $BROWSER_DIR failed: $(tail -n 5 "$WORK/npm.log")"
fi
pass "playwright-core is installed in $BROWSER_DIR"

new_home A
new_home M
cm A key new alice >/dev/null
cm A profile set --as alice --name "Alice Reviews" \
	--bio "Kitchen and travel gear" >/dev/null
http_port=$(free_port)

start A node
start M mirror --peer "$(addr_of A)" --http "127.0.0.1:$http_port"

publish_samples A alice >"$WORK/ids"
[ "$(wc -l <"$WORK/ids")" -eq 4 ] || fail "expected 4 published ids"
wait_for 30 "4 clips on M" has_clips M 4
while read -r file id; do
	wait_for 60 "media of $file on M" has_media_of M "$id"
done <"$WORK/ids"
pass "the 4 sample clips and their media reached the mirror"

BASE_URL=http://127.0.0.1:$http_port CLIPMESH=$CLIPMESH \
	CREATOR_HOME=$WORK/A ALICE_NAME="Alice Reviews" SAMPLES=$SAMPLES \
	ARTIFACTS=$BROWSER_DIR/artifacts CHROMIUM=$chromium \
	NODE_PATH=$BROWSER_DIR/node_modules \
	node "$browser_src/feed_test.js" ||
	fail "the browser test failed (its output is above)"
pass "the feed page passed the browser test"

for home in A M; do
	stop "$home"
done
pass "both nodes stopped cleanly on SIGTERM"
finish
