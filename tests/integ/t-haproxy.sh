#!/bin/bash
# Debian's haproxy with Debian's configuration (copied, paths into $T),
# started as its unit starts it (haproxy -Ws -f CFG -p PIDFILE -S
# MASTER.sock: the master binds MASTER.sock.PID.tmp and renames it), in a
# network namespace, in front of an HTTP server in another one; a client
# sends requests over one keep-alive connection.  haproxy (master and
# worker) is dumped with --tcp-established, killed and restored: the
# client's requests go on over the same connection, the kernel's socket
# table shows the master socket's name as before, and the master CLI
# answers through MASTER.sock.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
command -v haproxy > /dev/null || skip_all "needs haproxy"
command -v python3 > /dev/null || skip_all "needs python3"
command -v socat > /dev/null || skip_all "needs socat"
[ -r /etc/haproxy/haproxy.cfg ] || skip_all "no /etc/haproxy/haproxy.cfg"
plan 10
net_setup

# Debian's configuration, its paths in $T; the worker is chrooted to
# /var/lib/haproxy as Debian's configuration says.
sed -e "s|/run/haproxy/admin.sock|$T/admin.sock|" \
	/etc/haproxy/haproxy.cfg > "$T/haproxy.cfg"
cat >> "$T/haproxy.cfg" <<CFG

frontend fe
	bind 10.77.0.1:8080
	default_backend be

backend be
	server s1 10.77.0.2:8000
CFG
mkdir "$T/www" && head -c 3000 /dev/urandom | base64 > "$T/www/page"
srv=$(cd "$T/www" && start_bg "$T/http.out" nsenter --net=/run/netns/"$NSB" python3 -m http.server --bind 10.77.0.2 8000)
wait_for "in_ns $NSB ss -Htln '( sport = :8000 )' | grep -q 8000" 10 || bail "the HTTP server did not start"

hp=$(start_bg "$T/haproxy.out" nsenter --net=/run/netns/"$NSA" haproxy -Ws -f "$T/haproxy.cfg" \
	-p "$T/haproxy.pid" -S "$T/haproxy-master.sock")
wait_for "in_ns $NSA ss -Htln '( sport = :8080 )' | grep -q 8080" 10 || bail "haproxy did not start"
wait_for "[ -S '$T/haproxy-master.sock' ]" 10 || bail "no master socket"
# the names of the master socket in the kernel's table (haproxy's namespace)
master_names() {
	in_ns "$NSA" awk -v t="$T/haproxy-master.sock" 'NR > 1 && index($8, t) == 1 { print $8 }' \
		/proc/net/unix | sort -u
}
# settled: the master CLI answers and lists its worker
wait_for "echo 'show proc' | socat -t 5 - UNIX-CONNECT:'$T/haproxy-master.sock' | grep -q worker" 10 ||
	bail "the master CLI does not answer"
master_name=$(master_names)
[ -n "$master_name" ] || bail "no master socket in the kernel's table"
note "master socket in the kernel's table: $master_name"

cli=$(start_bg "$T/cli" nsenter --net=/run/netns/"$NSB" python3 -c '
import http.client, sys, time
want = open(sys.argv[1], "rb").read()
c = http.client.HTTPConnection("10.77.0.1", 8080, timeout=30)
n = 0
while True:
    c.request("GET", "/page", headers={"Connection": "keep-alive"})
    r = c.getresponse()
    body = r.read()
    if r.status != 200 or body != want:
        print("ERROR", r.status, len(body), flush=True); sys.exit(1)
    n += 1
    print("REQ", n, c.sock.getsockname()[1], flush=True)
    time.sleep(0.1)
' "$T/www/page")
wait_for_line "$T/cli" '^REQ 5 ' || bail "the client gets nothing"

tree=$(tree_pids "$hp")
check "kup dump --tcp-established (master $hp and its worker: $tree)" \
	kup_in "$NSA" "$T/dump.log" dump -t "$hp" -D "$T/img" --tcp-established ||
	note "$(tail -n 20 "$T/dump.log")"
check "haproxy is gone" eval '(for p in $tree; do wait_gone $p || exit 1; done)'
before=$(lines_count "$T/cli" '^REQ ')
check "kup restore --tcp-established" kup_in "$NSA" "$T/restore.log" restore -D "$T/img" -d --tcp-established ||
	note "$(tail -n 20 "$T/restore.log")"
track "$hp"
check "haproxy runs again (pids $tree)" eval '(for p in $tree; do alive $p || exit 1; done)'
check "the client's requests go on: 20 more" wait_for "[ \$(lines_count '$T/cli' '^REQ ') -ge $((before + 20)) ]" 30
check "... over the one connection, every page whole" \
	eval "[ \$(awk '/^REQ/ { print \$3 }' '$T/cli' | sort -u | wc -l) = 1 ] && ! grep -q ERROR '$T/cli'"
check "the master socket's name in the kernel's table is the same ($master_name)" \
	[ "$(master_names)" = "$master_name" ]
check "its file is $T/haproxy-master.sock, no .tmp left" \
	eval "[ -S '$T/haproxy-master.sock' ] && ! ls '$T' | grep -q 'haproxy-master.sock.*tmp'"
check "the master CLI answers through it: show proc lists the worker" \
	eval "echo 'show proc' | socat -t 5 - UNIX-CONNECT:'$T/haproxy-master.sock' | grep -q worker"
check "a new client gets the page" \
	eval "in_ns $NSB python3 -c 'import urllib.request; urllib.request.urlopen(\"http://10.77.0.1:8080/page\", timeout=10).read()'"
