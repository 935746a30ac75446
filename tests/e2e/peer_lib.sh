# peer_lib.sh - helpers for the end-to-end tests of known peers, peer
# exchange and reconnect backoff. Source it after lib.sh.

# Prints the short key (8 hex digits) of home NAME's node key.
short_key_of() {
	addr_of "$1" | sed 's|^clipmesh://\(........\).*|\1|'
}

# Prints the TCP port where home NAME's node listens.
port_of() {
	addr_of "$1" | sed 's/.*://'
}

# Starts a listener on 127.0.0.1 that accepts TCP connections and never
# sends a byte, so that a dial to it ends only at the dial timeout, and
# sets SILENT_PORT to its port. Not run in $(...), so that the cleanup
# stops it.
start_silent_listener() {
	python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
conns = []
while True:
    conns.append(s.accept()[0])' >"$WORK/silent.port" &
	NODE_PID[silent]=$!
	wait_for 30 "the silent listener to start" test -s "$WORK/silent.port"
	SILENT_PORT=$(cat "$WORK/silent.port")
}

# Prints field FIELD of home NAME's known peer PEER (a short key), or
# "absent" when the node does not know it.
known_field() {
	cm "$1" status --json | python3 -c '
import json, sys
for p in json.load(sys.stdin)["node"]["known_peers"]:
    if p["peer"] == sys.argv[1]:
        print(p[sys.argv[2]])
        break
else:
    print("absent")' "$2" "$3"
}

# Publishes sample clip N (1: the first data line of clips.tsv) on home
# NAME as identity AS with TITLE, and prints the clip id.
publish_sample_as() {
	local name=$1 as=$2 n=$3 title=$4 file
	file=$(sed -n "$((n + 1))p" "$SAMPLES/clips.tsv" | cut -f1)
	cm "$name" publish "$SAMPLES/$file" --as "$as" \
		--product gtin:2000000001012 --title "$title"
}

# Succeeds when home NAME's known peer PEER has FIELD equal to VALUE.
known_is() {
	[ "$(known_field "$1" "$2" "$3")" = "$4" ]
}
