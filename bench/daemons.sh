#!/bin/bash
# Benchmark: kup dump and kup restore of Debian's own daemons, with data in
# them, beside a memcpy of the images' size measured in the same run.
# Figures, never assertions.  Each daemon runs in a network namespace of its
# own (loopback), its files in a temporary directory; after the restore a
# client checks the data is there (a figure that says "lost" is a bug).
#
#   redis-server   BENCH_KEYS keys (default 100000) of 100 bytes
#   memcached      BENCH_KEYS keys of 100 bytes
#   postgresql 15  a table of BENCH_KEYS rows, the whole postmaster tree
#   mariadb        a table of BENCH_KEYS rows (--innodb-use-native-aio=0)
#   sshd           the listener (Debian's sshd -D, its own host key)
#   openvpn        a TLS server over UDP with one client in another network
#                  namespace (veth); checked by a ping through the tunnel
#
#   KUP=build/kup PROGS=build/progs bench/daemons.sh [NAME...]
set -u
cd "$(dirname "$0")/.."
KUP=$(readlink -f "${KUP:-build/kup}")
PROGS=$(readlink -f "${PROGS:-build/progs}")
BENCHBIN=$(readlink -f "${BENCHBIN:-build/bench}")
KEYS=${BENCH_KEYS:-100000}

if [ -z "${KUP_BENCH_REAPED:-}" ]; then
	[ -x "$PROGS/reaper" ] || { echo "bench: $PROGS/reaper missing (make progs)"; exit 1; }
	KUP_BENCH_REAPED=1 exec "$PROGS/reaper" bash "$0" "$@"
fi
for fd in $(ls /proc/$$/fd); do
	[ "$fd" -gt 2 ] && [ "$fd" -ne 255 ] && eval "exec $fd>&-" 2> /dev/null
done

dir=$(mktemp -d /dev/shm/kup-bench-d.XXXXXX)
work=$(mktemp -d /tmp/kup-bench-d.XXXXXX)
chmod 755 "$work"
ns=kup-bench-d-$$
ip netns add "$ns" || { echo "bench: cannot create a network namespace"; exit 1; }
ip -n "$ns" link set lo up
cleanup() {
	for p in $(ip netns pids "$ns" 2> /dev/null); do kill -9 "$p" 2> /dev/null; done
	ip netns del "$ns" 2> /dev/null
	for p in $(ip netns pids "$ns-c" 2> /dev/null); do kill -9 "$p" 2> /dev/null; done
	ip netns del "$ns-c" 2> /dev/null
	rm -rf "$dir" "$work"
}
trap cleanup EXIT
in_ns() { nsenter --net=/run/netns/"$ns" "$@"; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
wait_for() {	# wait_for CMD SECONDS
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		eval "$1" > /dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
wait_gone() { while [ -d /proc/$1 ] && ! grep -q '^State:.*Z' /proc/$1/status 2> /dev/null; do sleep 0.01; done; }
row() { printf '%-20s %10s %10s %10s %12s  %s\n' "$@"; }
failed=0

# measure NAME PID CHECK-CMD: dump (kill), restore -d, check; one row
measure() {
	local name=$1 pid=$2 checkcmd=$3 t0 t1 t2 t3 mb cp procs
	rm -rf "$dir/img"
	procs=$(ps -e -o pid= -o ppid= | awk -v r="$pid" '
		{ pp[$1] = $2 } END { n = 0; for (p in pp) { q = p; while (q && q != r) q = pp[q]; if (q == r) n++ } print n }')
	t0=$(now_ms)
	if ! in_ns "$KUP" -q dump -t "$pid" -D "$dir/img" > "$dir/dump.log" 2>&1; then
		row "$name" failed "" "" "" "$(tail -n 1 "$dir/dump.log")"
		failed=1
		return
	fi
	t1=$(now_ms)
	wait_gone "$pid"
	t2=$(now_ms)
	if ! in_ns "$KUP" -q restore -D "$dir/img" -d > "$dir/restore.log" 2>&1; then
		row "$name" "$((t1 - t0)) ms" failed "" "" "$(tail -n 1 "$dir/restore.log")"
		failed=1
		return
	fi
	t3=$(now_ms)
	mb=$(du -sm "$dir/img" | cut -f1)
	cp=n/a
	[ -x "$BENCHBIN/memcpy" ] && cp="$("$BENCHBIN/memcpy" "$((mb > 0 ? mb : 1))" | awk '/fresh/ { print $2 }') ms"
	if wait_for "$checkcmd" 30; then
		row "$name" "$((t1 - t0)) ms" "$((t3 - t2)) ms" "$mb MiB" "$cp" "$procs processes, data checked"
	else
		row "$name" "$((t1 - t0)) ms" "$((t3 - t2)) ms" "$mb MiB" "$cp" "$procs processes, DATA LOST"
		failed=1
	fi
}

want() { [ $# -eq 0 ] || [[ " $* " == *" $name "* ]]; }

echo "== kup and Debian's daemons: $(uname -r), $(nproc) cpus, $KEYS keys or rows, images on tmpfs"
row "daemon" "dump" "restore" "images" "memcpy(size)" "notes"

name=redis
if want "$@" && command -v redis-server > /dev/null; then
	setsid nsenter --net=/run/netns/"$ns" redis-server --port 6390 --bind 127.0.0.1 --save '' \
		--appendonly no --daemonize no --dir "$work" --enable-debug-command local \
		> "$work/redis.log" 2>&1 < /dev/null &
	pid=$!
	disown $pid
	if wait_for "in_ns redis-cli -p 6390 ping | grep -q PONG" 20; then
		in_ns redis-cli -p 6390 DEBUG POPULATE "$KEYS" key 100 > /dev/null
		measure redis "$pid" "[ \"\$(in_ns redis-cli -p 6390 DBSIZE)\" = $KEYS ]"
		kill -9 "$pid" 2> /dev/null
	else
		row redis "did not start" "" "" "" ""
	fi
fi

name=memcached
if want "$@" && command -v memcached > /dev/null; then
	setsid nsenter --net=/run/netns/"$ns" memcached -u nobody -l 127.0.0.1 -p 11290 -m 512 \
		> "$work/mc.log" 2>&1 < /dev/null &
	pid=$!
	disown $pid
	mc() {
		in_ns python3 - "$1" "$KEYS" <<'PY'
import socket, sys
op, n = sys.argv[1], int(sys.argv[2])
s = socket.create_connection(('127.0.0.1', 11290), timeout=30)
f = s.makefile('rwb')
v = b'v' * 100
got = 0
for i in range(n):
    if op == 'set':
        f.write(b'set key%d 0 0 100 noreply\r\n%s\r\n' % (i, v))
    else:
        f.write(b'get key%d\r\n' % i); f.flush()
        if f.readline().startswith(b'VALUE'):
            f.readline(); f.readline(); got += 1
f.flush()
if op == 'set':
    f.write(b'version\r\n'); f.flush(); f.readline()
print(got)
PY
	}
	if wait_for "mc get > /dev/null" 20; then
		mc set > /dev/null
		measure memcached "$pid" "[ \"\$(mc get)\" = $KEYS ]"
		kill -9 "$pid" 2> /dev/null
	else
		row memcached "did not start" "" "" "" ""
	fi
fi

name=postgresql
PGBIN=/usr/lib/postgresql/15/bin
if want "$@" && [ -x "$PGBIN/postgres" ] && id postgres > /dev/null 2>&1; then
	as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
	mkdir -p "$work/pg" && chown postgres:postgres "$work/pg"
	as_pg "$PGBIN/initdb" -D "$work/pg/data" -U postgres -A trust --locale=C > "$work/initdb.log" 2>&1
	setsid nsenter --net=/run/netns/"$ns" setpriv --reuid=postgres --regid=postgres --init-groups \
		"$PGBIN/postgres" -D "$work/pg/data" -p 5490 -c listen_addresses=127.0.0.1 \
		-c unix_socket_directories="$work/pg" -c shared_buffers=64MB -c huge_pages=off \
		-c logging_collector=off > "$work/pg.log" 2>&1 < /dev/null &
	pid=$!
	disown $pid
	psql_() { in_ns setpriv --reuid=postgres --regid=postgres --init-groups \
		psql -X -A -t -q -h 127.0.0.1 -p 5490 -U postgres -d postgres -c "$1"; }
	if wait_for "psql_ 'SELECT 1'" 60; then
		psql_ "CREATE TABLE b(x int, t text); INSERT INTO b SELECT g, repeat('x', 100) FROM generate_series(1, $KEYS) g; CHECKPOINT;"
		psql_ "SELECT count(*) FROM b" > /dev/null
		measure postgresql "$pid" "[ \"\$(psql_ 'SELECT count(*) FROM b')\" = $KEYS ]"
		kill -9 "$pid" 2> /dev/null
		shm=$(sed -n 7p "$work/pg/data/postmaster.pid" 2> /dev/null | awk '{ print $2 }')
		[ -n "$shm" ] && ipcrm -m "$shm" 2> /dev/null
	else
		row postgresql "did not start" "" "" "" "$(tail -n 1 "$work/pg.log")"
	fi
fi

name=mariadb
if want "$@" && [ -x /usr/sbin/mariadbd ] && id mysql > /dev/null 2>&1; then
	chmod 0711 "$work"
	mkdir -p "$work/db" && chown mysql "$work/db"
	mariadb-install-db --no-defaults --datadir="$work/db" --user=mysql \
		--auth-root-authentication-method=normal > "$work/dbinit.log" 2>&1
	setsid nsenter --net=/run/netns/"$ns" /usr/sbin/mariadbd --no-defaults --datadir="$work/db" \
		--socket="$work/db/sock" --pid-file="$work/db/mariadbd.pid" --port=3390 \
		--bind-address=127.0.0.1 --user=mysql --skip-name-resolve \
		--innodb-use-native-aio=0 --innodb-buffer-pool-size=64M \
		> "$work/db.log" 2>&1 < /dev/null &
	pid=$!
	disown $pid
	sql() { mariadb --socket="$work/db/sock" -uroot -N -B -e "$1"; }
	if wait_for "sql 'SELECT 1'" 60; then
		sql "CREATE DATABASE b; USE b; CREATE TABLE t(x int primary key, t text);
		     INSERT INTO t SELECT seq, repeat('x', 100) FROM seq_1_to_$KEYS;"
		measure mariadb "$pid" "[ \"\$(sql 'SELECT count(*) FROM b.t')\" = $KEYS ]"
		kill -9 "$pid" 2> /dev/null
	else
		row mariadb "did not start" "" "" "" "$(tail -n 1 "$work/db.log")"
	fi
fi

name=sshd
if want "$@" && [ -x /usr/sbin/sshd ]; then
	mkdir -p -m 0755 /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f "$work/hostkey"
	printf 'Port 2290\nListenAddress 127.0.0.1\nHostKey %s\nUsePAM no\nPidFile none\n' \
		"$work/hostkey" > "$work/sshd_config"
	setsid nsenter --net=/run/netns/"$ns" /usr/sbin/sshd -D -f "$work/sshd_config" \
		> "$work/sshd.log" 2>&1 < /dev/null &
	pid=$!
	disown $pid
	banner() { in_ns timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2290; head -c 7 <&3' | grep -q SSH-2.0; }
	if wait_for banner 20; then
		measure sshd "$pid" banner
		kill -9 "$pid" 2> /dev/null
	else
		row sshd "did not start" "" "" "" ""
	fi
fi
name=openvpn
if want "$@" && [ -x /usr/sbin/openvpn ] && [ -c /dev/net/tun ] && command -v openssl > /dev/null; then
	ip netns add "$ns-c" && ip -n "$ns-c" link set lo up
	ip link add kupbv$$ type veth peer name kupbw$$
	ip link set kupbv$$ netns "$ns" && ip link set kupbw$$ netns "$ns-c"
	ip -n "$ns" addr add 10.78.0.1/24 dev kupbv$$ && ip -n "$ns" link set kupbv$$ up
	ip -n "$ns-c" addr add 10.78.0.2/24 dev kupbw$$ && ip -n "$ns-c" link set kupbw$$ up
	. tests/lib-pki.sh
	make_pki "$work" > "$work/pki.log" 2>&1
	in_ns /usr/sbin/openvpn --daemon kup-bench-ovpn-s --writepid "$work/ovpn-s.pid" \
		--log "$work/ovpn-s.log" --cd "$work" --dev tun0 --topology subnet \
		--server 10.8.0.0 255.255.255.0 --proto udp --port 1194 --ca ca.crt \
		--cert server.crt --key server.key --dh none --keepalive 10 60 \
		--persist-key --persist-tun --verb 3
	nsenter --net=/run/netns/"$ns-c" /usr/sbin/openvpn --daemon kup-bench-ovpn-c \
		--writepid "$work/ovpn-c.pid" --log "$work/ovpn-c.log" --cd "$work" --client \
		--dev tun0 --proto udp --remote 10.78.0.1 1194 --ca ca.crt --cert client.crt \
		--key client.key --remote-cert-tls server --nobind --persist-key --persist-tun --verb 3
	tping() { nsenter --net=/run/netns/"$ns-c" ping -n -c 1 -W 1 10.8.0.1; }
	if wait_for "grep -q 'Initialization Sequence Completed' '$work/ovpn-c.log'" 60 &&
		wait_for tping 20; then
		pid=$(cat "$work/ovpn-s.pid")
		measure openvpn "$pid" tping
		kill -9 "$pid" 2> /dev/null
	else
		row openvpn "did not start" "" "" "" "$(tail -n 1 "$work/ovpn-s.log" 2> /dev/null)"
	fi
	kill -9 "$(cat "$work/ovpn-c.pid" 2> /dev/null)" 2> /dev/null
fi
exit $failed
