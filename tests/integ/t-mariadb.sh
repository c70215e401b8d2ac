#!/bin/bash
# Debian's MariaDB server, which reserves terabytes of address space, with a
# client session over TCP from another network namespace: a session
# variable set and a transaction open (a row inserted, not committed).
# mariadbd (--innodb-use-native-aio=0) is dumped with --tcp-established,
# killed and restored: the same session reads its variable, COMMITs, the
# row is there, and a new connection works.  With its default asynchronous
# I/O (io_uring) the dump is refused before anything is frozen, naming
# io_uring, and that server keeps answering.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
[ -x /usr/sbin/mariadbd ] || skip_all "no /usr/sbin/mariadbd (mariadb-server)"
command -v mariadb > /dev/null || skip_all "no mariadb client"
id mysql > /dev/null 2>&1 || skip_all "no mysql user"
net_setup

chmod 0711 "$T"		# mysql must reach its data directory
mkdir "$T/db" && chown mysql "$T/db"
mariadb-install-db --no-defaults --datadir="$T/db" --user=mysql \
	--auth-root-authentication-method=normal --skip-test-db > "$T/install.log" 2>&1 ||
	bail "mariadb-install-db failed: $(tail -n 5 "$T/install.log")"
cp -a "$T/db" "$T/db-uring"

# start_mariadb LOG DATADIR SOCKET PORT [OPTIONS...]: mariadbd in $NSA
start_mariadb() {
	local log=$1 dir=$2 sock=$3 port=$4
	shift 4
	start_bg "$log" nsenter --net=/run/netns/"$NSA" /usr/sbin/mariadbd --no-defaults \
		--datadir="$dir" --socket="$sock" --port="$port" --bind-address=10.77.0.1 \
		--pid-file="$dir/mariadbd.pid" --user=mysql --skip-name-resolve "$@"
}
ready() { mariadb --socket="$1" -uroot -N -e 'SELECT 1' > /dev/null 2>&1; }
client() { in_ns "$NSB" mariadb -h 10.77.0.1 -P "$1" -ukup -pkup -N "${@:2}"; }

# 1. the default asynchronous I/O (io_uring): refused, the server runs on
srv=$(start_mariadb "$T/uring.log" "$T/db-uring" "$T/db-uring/sock" 3307)
wait_for "ready '$T/db-uring/sock'" 60 || bail "mariadbd (io_uring) did not start: $(tail -n 5 "$T/uring.log")"
if grep -q 'anon_inode:\[io_uring\]' <<< "$(ls -l /proc/$srv/fd 2> /dev/null)"; then
	KUP_TIMEOUT=60 check_fails "kup dump of mariadbd with io_uring is refused" \
		kup_in "$NSA" /dev/stderr dump -t "$srv" -D "$T/img-uring" --tcp-established
	check "naming the pid and io_uring" grep -q "pid $srv: uses io_uring (fd [0-9]* anon_inode:\[io_uring\]" "$T/err"
	check "nothing was frozen" grep -q "nothing was frozen or changed" "$T/err"
	check "no image was left" eval '[ ! -e "$T/img-uring/inventory.img" ]'
	check "mariadbd is neither stopped nor traced" not_frozen "$srv"
	check "and answers a new query" eval 'mariadb --socket="$T/db-uring/sock" -uroot -N -e "SELECT 6 * 7" | grep -qx 42'
else
	note "this mariadbd uses no io_uring here: the refusal is not tested"
fi
kill_tree "$srv"
wait_gone "$srv" 30 || true

# 2. without io_uring: a live session across dump, kill and restore
srv=$(start_mariadb "$T/mariadbd.log" "$T/db" "$T/db/sock" 3306 --innodb-use-native-aio=0)
wait_for "ready '$T/db/sock'" 60 || bail "mariadbd did not start: $(tail -n 5 "$T/mariadbd.log")"
mariadb --socket="$T/db/sock" -uroot -e "CREATE USER kup@'%' IDENTIFIED BY 'kup';
	GRANT ALL ON *.* TO kup@'%'; CREATE DATABASE kupdb;
	CREATE TABLE kupdb.t (id INT PRIMARY KEY, what VARCHAR(64)) ENGINE=InnoDB;
	INSERT INTO kupdb.t VALUES (1, 'before')" || bail "cannot set up the database"
reserved=$(awk '/^[0-9a-f]+-/ { split($1, r, "-"); s += strtonum("0x" r[2]) - strtonum("0x" r[1]) }
	END { printf "%d", s / 2^30 }' /proc/$srv/maps 2> /dev/null || echo "?")
note "mariadbd $srv maps ${reserved} GiB of address space"

# the session: one mariadb client fed through a FIFO, kept open
mkfifo "$T/in"
start_bg "$T/session" bash -c "exec nsenter --net=/run/netns/$NSB mariadb -h 10.77.0.1 -P 3306 \
	-ukup -pkup -N -n kupdb < '$T/in'" > /dev/null
exec 7> "$T/in"
at_exit "exec 7>&-"
echo "SET @kup := 41; START TRANSACTION; INSERT INTO t VALUES (2, 'in the transaction');
	SELECT 'OPEN', CONNECTION_ID(), @kup;" >&7
wait_for_line "$T/session" '^OPEN' 30 || bail "the session did not start: $(cat "$T/session")"
conn=$(awk '$1 == "OPEN" { print $2 }' "$T/session")
check "another session does not see the uncommitted row" \
	eval '[ "$(client 3306 -e "SELECT COUNT(*) FROM kupdb.t")" = 1 ]'

t0=$(_now_ms)
check "kup dump --tcp-established of mariadbd" \
	kup_in "$NSA" "$T/dump.log" dump -t "$srv" -D "$T/img" --tcp-established ||
	note "$(tail -n 20 "$T/dump.log")"
t1=$(_now_ms)
check "mariadbd is gone" wait_gone "$srv"
t2=$(_now_ms)
check "kup restore --tcp-established" \
	kup_in "$NSA" "$T/restore.log" restore -D "$T/img" -d --tcp-established ||
	note "$(tail -n 20 "$T/restore.log")"
t3=$(_now_ms)
track "$srv"
# figures, not assertions
note "dump $((t1 - t0)) ms, restore $((t3 - t2)) ms, images $(du -sm "$T/img" | cut -f1) MiB"
check "mariadbd $srv is back and running" alive "$srv"

echo "SELECT 'VAR', @kup + 1, CONNECTION_ID(); COMMIT; SELECT 'COMMITTED', COUNT(*) FROM t;" >&7
check "the same session reads its variable (42) on the same connection ($conn)" \
	wait_for_line "$T/session" "^VAR	42	$conn\$" 30
check "and COMMITs: both rows are there" wait_for_line "$T/session" '^COMMITTED	2$' 30
check "a new connection sees the committed row" \
	eval '[ "$(client 3306 -e "SELECT what FROM kupdb.t WHERE id = 2")" = "in the transaction" ]'
check "a new connection writes" client 3306 -e "INSERT INTO kupdb.t VALUES (3, 'after')"
echo "SELECT 'AFTER', COUNT(*) FROM t;" >&7
check "the old session sees it" wait_for_line "$T/session" '^AFTER	3$' 30
check "the session saw no error" eval '! grep -q "^ERROR" "$T/session"'
check "mariadbd logged no crash" eval '! grep -qiE "mysqld got signal|Assertion|corrupt" "$T/mariadbd.log"'
