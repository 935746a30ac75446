#!/bin/bash
# Reconciliation over a slow, lossy, delayed link. Mirrors a and b run in
# two network namespaces that the test creates, joined by a veth pair.
# Each end has an 8 Mbit/s tbf rate limit, and an nftables rule on each
# side drops 2% of the packets it receives at random. The
# kernel has no netem, so delay_relay.py in a's namespace adds 100 ms in
# each direction: a dials the relay, which forwards over the veth to b.
# The loss hits the relay's leg to b, whose own round trip is short.
# b holds 9,000 clips that a lacks and a 1,000 that b lacks, on top of a
# shared base: the 10,000 differences must reconcile. Prints the round
# trips and the wall time. Needs root; without it the test is skipped
# (exit status 77). The namespaces are deleted on exit, also on failure.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sync_lib.sh"
: "${GEN:?set GEN to the bench_gen binary}"

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: creating network namespaces needs root"
	exit 77
fi
for tool in ip nft tc; do
	command -v "$tool" >/dev/null ||
		fail "$tool is missing; scripts/install-deps.sh installs it"
done

base=2000
b_only=9000
a_only=1000
delay_ms=100
loss_percent=2
rate=8mbit
ns_a=cmloss-a-$$
ns_b=cmloss-b-$$
veth_a=cmla$$
veth_b=cmlb$$
ip_a=10.231.7.1
ip_b=10.231.7.2

delete_namespaces() {
	ip netns del "$ns_a" 2>/dev/null || true
	ip netns del "$ns_b" 2>/dev/null || true
}
# lib.sh's cleanup stops the processes first, which leaves the
# namespaces empty.
trap 'cleanup; delete_namespaces' EXIT

ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "$veth_a" netns "$ns_a" type veth peer name "$veth_b" \
	netns "$ns_b"
for side in a b; do
	ns=ns_$side veth=veth_$side address=ip_$side
	ip -n "${!ns}" link set lo up
	ip -n "${!ns}" addr add "${!address}/24" dev "${!veth}"
	ip -n "${!ns}" link set "${!veth}" up
	tc -n "${!ns}" qdisc add dev "${!veth}" root tbf rate "$rate" \
		burst 32kbit latency 400ms
	ip netns exec "${!ns}" nft -f - <<EOF
table inet cmloss {
	chain input {
		type filter hook input priority 0;
		iifname "${!veth}" numgen random mod 100 < $loss_percent \
			counter drop
	}
}
EOF
done
pass "namespaces joined by a veth pair with $rate, $loss_percent% loss"

"$GEN" "$base" "$WORK/base.export" >/dev/null
"$GEN" "$b_only" "$WORK/b.export" >/dev/null
"$GEN" "$a_only" "$WORK/a.export" >/dev/null
new_home a
new_home b
cm a import "$WORK/base.export" >/dev/null
cp "$WORK/a/store/data.mdb" "$WORK/b/store/data.mdb"
cm a import "$WORK/a.export" >/dev/null
cm b import "$WORK/b.export" >/dev/null
total=$((base + a_only + b_only))

# Starts home NAME as a mirror inside namespace NS.
start_in() {
	local ns=$1 name=$2
	shift 2
	ip netns exec "$ns" "$CLIPMESH" --home "$WORK/$name" mirror \
		--log-level debug "$@" >>"$WORK/$name.log" 2>&1 &
	NODE_PID[$name]=$!
	wait_for 30 "$name to start" node_running "$name"
}

b_port=$(free_port)
relay_port=$(free_port)
start_in "$ns_b" b --listen "tcp://$ip_b:$b_port"
b_key=$(cm b id | sed 's|clipmesh://\([0-9a-f]*\)@.*|\1|')
ip netns exec "$ns_a" python3 "$(dirname "$0")/delay_relay.py" \
	"$relay_port" "$ip_b" "$b_port" "$delay_ms" >"$WORK/relay.log" 2>&1 &
NODE_PID[relay]=$!
wait_for 10 "the relay to listen" grep -q listening "$WORK/relay.log"

started=$(date +%s.%N)
start_in "$ns_a" a --peer "clipmesh://$b_key@127.0.0.1:$relay_port"
wait_for 60 "a to connect to b through the relay" links_up a 1
for name in a b; do
	wait_for 85 "$name to hold all $total clips" holds_clips "$name" "$total"
done
seconds=$(python3 -c "print(round($(date +%s.%N) - $started, 1))")
[ "$(set_fingerprint a)" = "$(set_fingerprint b)" ] ||
	fail "a and b hold different sets of $total clips"
pass "a and b reconciled $((a_only + b_only)) differences in ${seconds}s"

# Prints the packets that the loss rule dropped in namespace NS.
dropped_in() {
	ip netns exec "$1" nft list table inet cmloss |
		sed -n 's/.*counter packets \([0-9]*\).*/\1/p'
}
dropped=$(($(dropped_in "$ns_a") + $(dropped_in "$ns_b")))
echo "the loss rules dropped $dropped packets"
[ "$dropped" -gt 0 ] || fail "the loss rules dropped no packet"

for name in a b; do
	cm "$name" status --json | python3 -c '
import json, sys
peers = json.load(sys.stdin)["node"]["peers"]
r = [p["reconciliation"] for p in peers]
print("%s: %d sessions finished (both roles), %d rounds (%d round trips), "
      "%d bytes in, %d out" % (sys.argv[1], sum(x["sessions"] for x in r),
                  sum(x["rounds"] for x in r), sum(x["rounds"] for x in r) // 2,
                  sum(x["bytes_in"] for x in r), sum(x["bytes_out"] for x in r)))' \
		"$name"
done
for name in a b; do
	wait_for 30 "$name's initiator session to finish" python3 -c '
import json, subprocess, sys
out = subprocess.run(sys.argv[1:], capture_output=True, check=True).stdout
peers = json.loads(out)["node"]["peers"]
sys.exit(0 if any(p["reconciliation"]["sessions"] > 0 for p in peers) else 1)' \
		"$CLIPMESH" --home "$WORK/$name" status --json
done
pass "reconciliation sessions finished on both sides"

for name in a b; do
	stop "$name"
done
pass "both nodes stopped cleanly on SIGTERM"
finish
