# Network helpers for the socket tests (sourced after lib.sh).
#
# net_setup: two network namespaces joined by a veth pair, removed at exit:
#   $NSA (10.77.0.1, fd77::1) and $NSB (10.77.0.2, fd77::2); names carry the
#   test's pid.  Programs run there with in_ns NAME CMD... (nsenter --net,
#   which keeps our mount namespace; "ip netns exec" would make a new one).
# kup_tables NS: the kup network lock tables left in namespace NS.

net_setup() {
	command -v ip > /dev/null || skip_all "needs iproute2"
	NSA=kup-a-$$ NSB=kup-b-$$
	ip netns add "$NSA" || skip_all "cannot create network namespaces"
	at_exit "ip netns del $NSA 2>/dev/null"
	ip netns add "$NSB" || bail "cannot create a second network namespace"
	at_exit "ip netns del $NSB 2>/dev/null"
	ip -n "$NSA" link add va type veth peer name vb netns "$NSB" || bail "cannot create a veth pair"
	ip -n "$NSA" link set lo up && ip -n "$NSB" link set lo up &&
	ip -n "$NSA" addr add 10.77.0.1/24 dev va && ip -n "$NSB" addr add 10.77.0.2/24 dev vb &&
	ip -n "$NSA" addr add fd77::1/64 dev va nodad && ip -n "$NSB" addr add fd77::2/64 dev vb nodad &&
	ip -n "$NSA" link set va up && ip -n "$NSB" link set vb up || bail "cannot configure the veth pair"
}

in_ns() {
	local ns=$1
	shift
	nsenter --net=/run/netns/"$ns" "$@"
}

kup_tables() { in_ns "$1" nft list tables 2>/dev/null | grep -c 'kup-lock' || true; }

# tcp_established_count NS PORT: connections to or from PORT in NS.
tcp_conns() { in_ns "$1" ss -Htn state established "( sport = :$2 or dport = :$2 )" | wc -l; }

# kup_in NS LOG ARGS...: run kup ARGS inside namespace NS (time-limited),
# output to LOG.
kup_in() {
	local ns=$1 log=$2
	shift 2
	nsenter --net=/run/netns/"$ns" timeout -k 5 "${KUP_TIMEOUT:-240}" "$KUP" "$@" > "$log" 2>&1
}
