#!/bin/bash
# The main job: builds clipmesh, starts a creator node and a mirror on
# 127.0.0.1 in temporary homes, publishes the four sample clips on the
# creator node, waits until they reach the mirror, checks every clip's
# media on the mirror byte for byte against the original, and prints the
# mirror's feed. Exits 0 only if all of that held.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" --target clipmesh >/dev/null
bin=$root/build/cli/clipmesh
samples=$root/samples

work=$(mktemp -d /tmp/clipmesh-demo.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# Waits up to SECONDS for a command to succeed.
wait_for() {
	local seconds=$1 what=$2 deadline
	shift 2
	deadline=$((SECONDS + seconds))
	until "$@" >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "demo: timed out waiting for $what" >&2
			tail -n 20 "$work"/*.log >&2
			exit 1
		fi
		sleep 0.1
	done
}
running() { "$bin" --home "$1" status --json | grep -q '"node": *{'; }

creator=$work/creator
mirror=$work/mirror
say "Creating a creator home and a mirror home"
for home in "$creator" "$mirror"; do
	"$bin" --home "$home" init
	printf 'listen = tcp://127.0.0.1:%s\n' "$(free_port)" >>"$home/config"
done
key=$("$bin" --home "$creator" key new demo-creator)
echo "creator identity: $key"
"$bin" --home "$creator" profile set --as demo-creator \
	--name "Demo Creator" --bio "Reviews whatever the courier brings." \
	>/dev/null

say "Starting the creator node and the mirror"
"$bin" --home "$creator" node >"$work/creator.log" 2>&1 &
pids+=($!)
wait_for 20 "the creator node" running "$creator"
creator_addr=$("$bin" --home "$creator" id)
echo "creator node address: $creator_addr"
"$bin" --home "$mirror" mirror --peer "$creator_addr" >"$work/mirror.log" 2>&1 &
pids+=($!)
wait_for 20 "the mirror" running "$mirror"

say "Publishing the sample clips on the creator node"
declare -A clip_of=()
while IFS=$'\t' read -r file product title rating lang; do
	[ "$file" = file ] && continue
	id=$("$bin" --home "$creator" publish "$samples/$file" \
		--as demo-creator --product "$product" --title "$title" \
		--rating "$rating" --lang "$lang" --tag review)
	clip_of[$file]=$id
	printf '%-24s %s\n' "$file" "$id"
done <"$samples/clips.tsv"

say "Waiting for the clips and their media on the mirror"
has_media() {
	"$bin" --home "$mirror" show "$1" --json |
		python3 -c 'import json,sys; c=json.load(sys.stdin); sys.exit(0 if all(m["present"] for m in c["media"]) else 1)'
}
for file in "${!clip_of[@]}"; do
	wait_for 60 "$file on the mirror" has_media "${clip_of[$file]}"
	"$bin" --home "$mirror" media get "${clip_of[$file]}" -o "$work/$file"
	if cmp -s "$samples/$file" "$work/$file"; then
		printf '%-24s media identical to the original (%s bytes)\n' \
			"$file" "$(stat -c %s "$work/$file")"
	else
		echo "demo: media of $file on the mirror differs" >&2
		exit 1
	fi
done

say "The mirror's feed"
"$bin" --home "$mirror" feed
count=$("$bin" --home "$mirror" feed --json | wc -l)
if [ "$count" -ne 4 ]; then
	echo "demo: the mirror holds $count clips, expected 4" >&2
	exit 1
fi

say "Stopping both nodes"
for pid in "${pids[@]}"; do kill -TERM "$pid"; wait "$pid"; done
pids=()
echo "demo passed: 4 clips published, gossiped, verified and stored once"
