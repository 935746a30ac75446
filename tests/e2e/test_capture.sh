#!/bin/bash
# What travels on the wire: a capture of the loopback traffic between a
# creator node and a mirror while a clip, its photo and a profile sync
# contains none of their text in the clear, because every TCP socket uses
# CURVE. The check is tried on the capture of an unencrypted copy of the
# same bytes first, so that it is known to find text when text is there.
# Needs tshark and root (to capture); skipped with a message without.
source "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ] || ! command -v tshark >/dev/null; then
	echo "skipped: capturing loopback traffic needs root and tshark"
	exit 0
fi

title="Plaintext canary title 7f3a9c"
name="Canary Reviewer 5e1d"
new_home A
new_home M
cm A key new alice >/dev/null
port=$(sed -n 's|^listen = tcp://127.0.0.1:||p' "$WORK/M/config" | tail -1)

# Succeeds when the capture FILE contains any of the texts in its bytes.
holds_text() {
	python3 - "$@" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
sys.exit(0 if any(t.encode() in data for t in sys.argv[2:]) else 1)
PY
}

# The check must see text that is there: the same words sent in the clear
# over TCP to the mirror's port before the mirror listens on it.
tshark -q -i lo -f "tcp port $port" -w "$WORK/plain.pcap" 2>"$WORK/tshark.err" &
shark=$!
wait_for 30 "tshark to start capturing" grep -q "Capturing on" "$WORK/tshark.err"
python3 - "$port" "$title" <<'PY'
import socket, sys, time
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(1)
cli = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
conn, _ = srv.accept()
cli.sendall(sys.argv[2].encode())
conn.recv(100)
for s in (cli, conn, srv):
    s.close()
PY
captured() {
	[ "$(tshark -r "$1" 2>/dev/null | wc -l)" -gt 0 ]
}
wait_for 30 "the plain packets in the capture" captured "$WORK/plain.pcap"
kill -INT "$shark"
wait "$shark" || true
holds_text "$WORK/plain.pcap" "$title" ||
	fail "the check does not find text sent in the clear"
pass "the capture check finds text sent in the clear"

tshark -q -i lo -f "tcp port $port" -w "$WORK/sync.pcap" 2>"$WORK/tshark.err" &
shark=$!
wait_for 30 "tshark to start capturing" grep -q "Capturing on" "$WORK/tshark.err"
start M mirror
start A node --peer "$(addr_of M)"
cm A profile set --as alice --name "$name" >/dev/null
clip=$(cm A publish "$SAMPLES/photo-backpack.jpg" --as alice \
	--product gtin:2000000004044 --title "$title" --rating 4)
wait_for 60 "the clip on the mirror" has_clips M 1
wait_for 60 "the photo on the mirror" has_media_of M "$clip"
# The photo crossed the wire, so the capture must grow past its size;
# tshark writes packets to the file with some delay.
capture_has_photo() {
	[ "$(stat -c %s "$WORK/sync.pcap")" -gt "$(stat -c %s "$SAMPLES/photo-backpack.jpg")" ]
}
wait_for 30 "the capture to take in the photo's packets" capture_has_photo
stop A
stop M
kill -INT "$shark"
wait "$shark" || true
packets=$(tshark -r "$WORK/sync.pcap" 2>/dev/null | wc -l)
# A run of the photo's bytes would show the media travels in the clear.
photo_run=$(python3 -c '
import sys
data = open(sys.argv[1], "rb").read()
print(data[4096:4160].hex())' "$SAMPLES/photo-backpack.jpg")
python3 - "$WORK/sync.pcap" "$photo_run" <<'PY' || fail "photo bytes seen in the clear"
import sys
sys.exit(1 if bytes.fromhex(sys.argv[2]) in open(sys.argv[1], "rb").read() else 0)
PY
if holds_text "$WORK/sync.pcap" "$title" "$name" "gtin:2000000004044"; then
	fail "clip text seen in the clear on the wire"
fi
pass "no title, name, product or photo bytes in $packets captured packets"
finish
