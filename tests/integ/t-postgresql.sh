#!/bin/bash
# Debian's PostgreSQL 15, its whole postmaster tree (checkpointer, background
# writer, walwriter, autovacuum launcher, logical replication launcher and
# the backend of a client), in one network namespace, with psql connected
# over TCP from another.  psql holds a transaction open with a temporary
# table and a new table, rows inserted.  The tree is dumped with
# --tcp-established, killed and restored: the SAME psql session inserts more
# rows, commits, and sees them all, its temporary table still there; a new
# connection sees the committed table.  The System V segment comes back with
# the id postmaster.pid records, and postgres's anonymous and /dev/shm
# shared memory with it.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
PGBIN=/usr/lib/postgresql/15/bin
[ -x "$PGBIN/postgres" ] || skip_all "needs Debian's postgresql-15"
id postgres > /dev/null 2>&1 || skip_all "needs the postgres user"
command -v psql > /dev/null || skip_all "needs psql"
net_setup

port=$(( 15432 + $$ % 1000 ))
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
chmod 755 "$T"
mkdir -p "$T/pg" "$T/sock"
chown postgres:postgres "$T/pg" "$T/sock"
as_pg "$PGBIN/initdb" -D "$T/pg/data" -U postgres -A trust -E UTF8 --locale=C > "$T/initdb.log" 2>&1 ||
	bail "initdb failed: $(tail -n 3 "$T/initdb.log")"
echo "host all all 10.77.0.0/24 trust" >> "$T/pg/data/pg_hba.conf"
pg=$(start_bg "$T/pg.log" nsenter --net=/run/netns/"$NSA" setpriv --reuid=postgres --regid=postgres \
	--init-groups "$PGBIN/postgres" -D "$T/pg/data" -p "$port" -c listen_addresses=10.77.0.1 \
	-c unix_socket_directories="$T/sock" -c shared_buffers=16MB -c huge_pages=off \
	-c dynamic_shared_memory_type=posix -c logging_collector=off -c max_connections=20)
at_exit "kill -9 \$(cat $T/pg/data/postmaster.pid 2>/dev/null | head -n 1) 2>/dev/null"
wait_for "in_ns $NSB $PGBIN/pg_isready -q -U postgres -h 10.77.0.1 -p $port" 60 || bail "postgres did not start: $(tail -n 5 "$T/pg.log")"
shmkey=$(sed -n 7p "$T/pg/data/postmaster.pid" | awk '{ print $1 }')
shmid=$(sed -n 7p "$T/pg/data/postmaster.pid" | awk '{ print $2 }')
note "postmaster $pg, System V segment key $shmkey id $shmid"
at_exit "ipcrm -M $shmkey 2>/dev/null"	# postgres leaves it when killed
check "postmaster.pid records a System V segment that exists" \
	eval "awk -v i=$shmid '\$2 == i' /proc/sysvipc/shm | grep -q ."

# psql over TCP from the other namespace, fed through a fifo
mkfifo "$T/in"
start_bg "$T/psql.out" nsenter --net=/run/netns/"$NSB" setpriv --reuid=postgres --regid=postgres \
	--init-groups psql -X -A -t -q -h 10.77.0.1 -p "$port" -U postgres -d postgres -f "$T/in" > /dev/null
exec 7> "$T/in"
at_exit "exec 7>&-"
sql() { echo "$*" >&7; }
sql "SELECT 'PID', pg_backend_pid();"
sql "BEGIN; CREATE TEMP TABLE tt(x int); CREATE TABLE kept(x int);"
sql "INSERT INTO tt SELECT generate_series(1, 1000); INSERT INTO kept SELECT generate_series(1, 10);"
sql "SELECT 'BEFORE', count(*), sum(x) FROM tt;"
wait_for_line "$T/psql.out" '^BEFORE\|1000\|500500' 30 || bail "psql did not insert the rows: $(tail -n 3 "$T/psql.out")"
backend=$(awk -F'|' '$1 == "PID" { print $2 }' "$T/psql.out")
check "psql's backend $backend is a child of the postmaster" [ "$(ps -o ppid= -p "$backend" | tr -d ' ')" = "$pg" ]
tree=$(tree_pids "$pg")
note "postgres tree: $tree"
check "the tree attaches its segment $shmid (nattch $(awk -v i=$shmid '$2 == i { print $7 }' /proc/sysvipc/shm))" \
	eval "[ \$(awk -v i=$shmid '\$2 == i { print \$7 }' /proc/sysvipc/shm) -ge 5 ]"

check "kup dump --tcp-established of the postmaster tree" \
	kup_in "$NSA" "$T/dump.log" dump -t "$pg" -D "$T/img" --tcp-established || note "$(tail -n 5 "$T/dump.log")"
check "the tree is gone" eval "(for p in $tree; do wait_gone \$p || exit 1; done)"
check "kup restore --tcp-established" kup_in "$NSA" "$T/restore.log" restore -D "$T/img" -d --tcp-established ||
	note "$(tail -n 5 "$T/restore.log")"
track "$pg"
check "the postmaster tree is back: $tree" eval "(for p in $tree; do alive \$p || exit 1; done)"
check "its System V segment has the id postmaster.pid records ($shmid), key $shmkey, attached" \
	eval "[ \"\$(awk -v i=$shmid '\$2 == i && \$7 >= 5 { print \$1 }' /proc/sysvipc/shm)\" = $shmkey ]"

sql "INSERT INTO tt SELECT generate_series(1001, 1500); INSERT INTO kept SELECT generate_series(11, 15);"
sql "SELECT 'DURING', count(*), sum(x), pg_backend_pid() FROM tt;"
sql "COMMIT;"
sql "SELECT 'AFTER', count(*), sum(x) FROM tt;"
sql "SELECT 'KEPT', count(*), sum(x) FROM kept;"
check "the same session inserts into its open transaction (1500 rows, same backend)" \
	wait_for_line "$T/psql.out" "^DURING\\|1500\\|1125750\\|$backend\$" 60
check "it commits, and its temporary table survives the commit" wait_for_line "$T/psql.out" '^AFTER\|1500\|1125750$' 30
check "the committed table holds the rows of both sides of the restore" wait_for_line "$T/psql.out" '^KEPT\|15\|120$' 30
check "no error in the psql session" [ "$(lines_count "$T/psql.out" 'ERROR|FATAL|server closed')" = 0 ] ||
	note "$(tail -n 5 "$T/psql.out")"
check "a new connection sees the committed rows" \
	eval "[ \"\$(in_ns $NSB setpriv --reuid=postgres --regid=postgres --init-groups psql -X -A -t -h 10.77.0.1 -p $port -U postgres -d postgres -c 'SELECT sum(x) FROM kept')\" = 120 ]"
in_ns "$NSB" setpriv --reuid=postgres --regid=postgres --init-groups psql -X -A -t -h 10.77.0.1 -p "$port" \
	-U postgres -d postgres -c 'SET max_parallel_workers_per_gather=2; SET parallel_setup_cost=0;
		SET parallel_tuple_cost=0; SET min_parallel_table_scan_size=0;' \
	-c 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT count(*) FROM kept, generate_series(1, 20000)' \
	> "$T/parallel.out" 2>&1
check "a new connection runs a parallel query: workers forked by the restored postmaster, dynamic shared memory (posix)" \
	grep -qE 'Workers Launched: [12]' "$T/parallel.out" || note "$(cat "$T/parallel.out")"
check "no server error in its log" \
	[ "$(grep -E 'PANIC|FATAL|terminated by signal' "$T/pg.log" | grep -vc 'starting up')" = 0 ] ||
	note "$(tail -n 8 "$T/pg.log")"
sql "\\q"
