#!/bin/bash
# The mirror's HTTP API: every route and filter, paging, media ranges,
# errors, raw record signatures, the per-client request limit, and the
# event stream read by a client that is killed and resumed while 1,000
# clips arrive and the mirror restarts. Every JSON response is checked
# against docs/openapi.json at the end.
source "$(dirname "$0")/lib.sh"
: "${GEN:?set GEN to the bench_gen binary}"

API="python3 $(dirname "$0")/http_api.py"
OPENAPI_CHECK="python3 $(dirname "$0")/../../tools/check_openapi.py"
OPENAPI_DOC="$(dirname "$0")/../../docs/openapi.json"
RESPONSES="$WORK/responses.jsonl"

# Prints the value of KEY in the JSON object on stdin.
json_get() {
	python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

http_up() {
	curl -sf "$1/healthz" >/dev/null
}

# --- A mirror with samples, a profile, a retraction and generated clips -
new_home M
alice=$(cm M key new alice)
bob=$(cm M key new bob)
profile=$(cm M profile set --as alice --name "Alice Reviews" \
	--bio "Kitchen gear, honestly")
publish_samples M alice >"$WORK/published"
xss=$(cm M publish "$SAMPLES/photo-backpack.jpg" --as alice \
	--product gtin:2000000004044 --title '<img src=x onerror=alert(1)>')
doomed=$(cm M publish "$SAMPLES/photo-backpack.jpg" --as bob \
	--product gtin:2000000004044 --title "Withdrawn soon")
retraction=$(cm M retract "$doomed" --as bob)
"$GEN" 40 "$WORK/gen.export" >/dev/null
cm M import "$WORK/gen.export" >/dev/null
ambiguous=$($API ambiguous "$WORK/ambiguous.export")
cm M import "$WORK/ambiguous.export" >/dev/null
incomplete=$(cm M feed --json --limit 1 --tag bench 2>/dev/null |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["media"][0]["hash"])')
pass "mirror home prepared"

port=$(free_port)
base="http://127.0.0.1:$port"
start M mirror --http "$port" --http-rate 100000
wait_for 30 "HTTP API on port $port" http_up "$base"
pass "mirror serves HTTP on 127.0.0.1:$port"

python3 - "$WORK" "$base" "$alice" "$bob" "$profile" "$xss" "$doomed" \
	"$retraction" "$ambiguous" "$incomplete" <<'PY'
import json, sys
work, base, alice, bob, profile, xss, doomed, retraction, amb, inc = sys.argv[1:]
published = dict(line.split() for line in open(work + "/published"))
json.dump({"base": base, "alice": alice, "bob": bob, "profile": profile,
           "xss": xss, "retracted": doomed, "retraction": retraction,
           "ambiguous": amb, "incomplete_url": "/api/v1/media/" + inc,
           "published": published, "alice_clips": 5, "clips": 5 + 40 + 2},
          open(work + "/facts.json", "w"))
PY
$API checks "$WORK/facts.json" "$RESPONSES" || fail "route checks failed"
pass "route checks"

# --- Access log ---------------------------------------------------------
grep -q "info http: GET /api/v1/clips 200 [0-9]* [0-9]*ms client=127.0.0.1" \
	"$WORK/M.log" || fail "no access log line for GET /api/v1/clips"
! grep -q "cursor=" "$WORK/M.log" || fail "the access log shows a query"
grep -q "GET /api/v1/nothing?injected line 404" "$WORK/M.log" ||
	fail "a newline in a path was not replaced in the access log"
! grep -q "^injected" "$WORK/M.log" || fail "a path split a log line"
LC_ALL=C grep -q $'\xff' "$WORK/M.log" &&
	fail "the access log contains a raw byte 0xff of a request"
pass "access log: one line per request without the query, valid UTF-8"

# --- Per-client request limit ------------------------------------------
# M listens on [::] here: a dual-stack socket that takes IPv4 clients
# too, each with its own IPv4 address in the limiter.
stop M
start M mirror --http "[::]:$port"
wait_for 30 "HTTP API after restart" http_up "$base"
if grep -q ' lo$' /proc/net/if_inet6 2>/dev/null; then
	curl -sf "http://[::1]:$port/healthz" >/dev/null ||
		fail "[::] does not answer on ::1"
	pass "[::] answers on 127.0.0.1 and ::1"
fi
limited=$($API burst "$base" 300) || fail "request limit: $limited"
wait_for 10 "the bucket to refill" curl -sf "$base/healthz"
pass "429 with Retry-After past the burst of 100 ($limited), then served again"

# --- Connection slots ----------------------------------------------------
# Slow clients on 15 addresses keep 16 connections each open, the most
# per address: 240 of the 256 slots. A client on another address is
# served.
slow=$($API slots "$base" 15 16) || fail "connection slots: $slow"
pass "connection slots: $slow"

# --- Request deadline ----------------------------------------------------
# Requests sent a byte every 2 s never leave the connection silent for
# the 15 s idle timeout, so only CM_HTTP_REQUEST_TIMEOUT_S closes them.
# An event stream and other clients must not be affected.
slow=$($API slow "$base") || fail "request deadline: $slow"
# M listens on [::], so IPv4 clients show as ::ffff:127.0.0.30.
grep -q "debug http: closed a connection that sent no whole request in [0-9]* s client=[:f]*127.0.0.30$" \
	"$WORK/M.log" || fail "no log line for the closed slow connection"
timeouts=$(curl -sf "$base/metrics" |
	awk '$1 == "clipmesh_http_request_timeouts_total" { print $2 }')
[ "${timeouts:-0}" -ge 2 ] ||
	fail "clipmesh_http_request_timeouts_total is '$timeouts', expected 2 or more"
pass "request deadline: $slow; $timeouts counted"
stop M

# A client past its rate must not flood the log: its 429 lines are
# printed a few times per window and the rest counted on one line.
rejected_lines=$(grep -c "http: GET /healthz 429 " "$WORK/M.log" || true)
[ "$rejected_lines" -ge 1 ] || fail "no log line for the 429 answers"
[ "$rejected_lines" -le 25 ] ||
	fail "$rejected_lines log lines for 429 answers, expected at most 25"
grep -q 'more lines like ".* 429 rate limited.*" suppressed' "$WORK/M.log" ||
	fail "the suppressed 429 lines were not counted in the log"
pass "429 answers logged $rejected_lines times, the rest counted"

# --- Stream: 1,000 clips while a client is killed and resumed -----------
new_home S
sport=$(free_port)
sbase="http://127.0.0.1:$sport"
start S mirror --http "$sport" --http-rate 100000
wait_for 30 "HTTP API of S" http_up "$sbase"
"$GEN" 1000 "$WORK/stream.export" >/dev/null
python3 - "$WORK/stream.export" "$WORK/part" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
records, pos = [], 16
while pos < len(data):
    n = int.from_bytes(data[pos:pos + 4], "big")
    records.append(data[pos:pos + 4 + n])
    pos += 4 + n
assert len(records) == 1000, len(records)
for part in range(5):
    with open("%s%d" % (sys.argv[2], part), "wb") as f:
        f.write(data[:16] + b"".join(records[part * 200:(part + 1) * 200]))
PY
events="$WORK/events"
: >"$events"
client_pid=
start_client() {
	$API stream "$sbase" "$events" --timeout 120 >/dev/null 2>>"$WORK/client.log" &
	client_pid=$!
}
lines() { wc -l <"$events"; }
more_lines_than() { [ "$(lines)" -gt "$1" ]; }
for part in 0 1 2 3 4; do
	start_client
	before=$(lines)
	cm S import "$WORK/part$part" >/dev/null
	wait_for 60 "client to read events of part $part" \
		more_lines_than "$before"
	if [ "$part" -eq 2 ]; then
		# The restart ends the client's stream under it.
		stop S
		start S mirror --http "$sport" --http-rate 100000
		wait_for 30 "HTTP API of S after restart" http_up "$sbase"
	fi
	kill -KILL "$client_pid" 2>/dev/null || true
	wait "$client_pid" 2>/dev/null || true
done
pass "client killed and resumed 5 times, mirror restarted once"

head=$(curl -sf "$sbase/healthz" | json_get log_head)
[ "$head" -eq 1000 ] || fail "log head is $head, expected 1000"
$API stream "$sbase" "$events" --head "$head" --timeout 120 >/dev/null ||
	fail "final client run failed: $(cat "$WORK/client.log")"
curl -sf "$sbase/api/v1/clips?limit=1000" >"$WORK/all.json"
python3 - "$events" "$WORK/all.json" <<'PY' || fail "stream lost or repeated records"
import json, sys
lines = [l.split() for l in open(sys.argv[1]) if l.strip()]
seqs = [int(s) for s, _ in lines]
ids = [i for _, i in lines]
stored = {c["id"] for c in json.load(open(sys.argv[2]))["clips"]}
assert seqs == list(range(1, 1001)), "seqs: %d events, first repeats %r" % (
    len(seqs), [s for s in seqs if seqs.count(s) > 1][:5])
assert len(set(ids)) == 1000, "%d distinct ids" % len(set(ids))
assert set(ids) == stored, "ids differ from the stored clips"
PY
pass "stream delivered all 1000 records exactly once, in order"
stop S

# --- Every JSON response matches docs/openapi.json ----------------------
$OPENAPI_CHECK "$OPENAPI_DOC" "$RESPONSES" ||
	fail "responses do not match docs/openapi.json"
pass "$(wc -l <"$RESPONSES") JSON responses match docs/openapi.json"
finish
