#!/bin/bash
# Usage mistakes: exit status 2, one line "kup CMD: error: WHAT IS WRONG"
# naming the command as the user typed it (getopt's own messages too: "kup
# dump: unrecognized option '--bogus'"), then "Try 'kup CMD --help' ...",
# never the whole help; for every command and sub-command.
. "$(dirname "$0")/../lib.sh"
require_root

# mistake CMD MESSAGE ARGS...: `kup ARGS` exits 2 with these two lines only
mistake() {
	local cmd=$1 msg=$2 status good=0
	shift 2
	"$KUP" "$@" > "$T/m.out" 2> "$T/m.err" < /dev/null
	status=$?
	printf '%s\nTry '\''%s --help'\'' for more information.\n' "$msg" "$cmd" > "$T/m.want"
	[ $status = 2 ] && [ ! -s "$T/m.out" ] && cmp -s "$T/m.want" "$T/m.err" && good=1
	check "kup $*: '$msg'" [ $good = 1 ] || note "exit $status; stderr:" "$(head -n 5 "$T/m.err")"
}

plan 47

bad=
for c in dump restore switch check hold show recover status "kexec load" "kexec status" \
	"ppp status" "ppp ls" "ppp format" "ppp put" "ppp get" "ppp rm"; do
	"$KUP" $c --bogus > /dev/null 2> "$T/err"
	rc=$?
	{ [ $rc = 2 ] && [ "$(sed -n 1p "$T/err")" = "kup $c: unrecognized option '--bogus'" ] &&
	  [ "$(sed -n 2p "$T/err")" = "Try 'kup $c --help' for more information." ] &&
	  [ "$(wc -l < "$T/err")" = 2 ]; } ||
		bad="$bad [$c: exit $rc, $(head -n 1 "$T/err")]"
done
check "an unknown option: 'kup CMD: unrecognized option', the hint, exit 2" [ -z "$bad" ] || note "$bad"
"$KUP" dump -t > /dev/null 2> "$T/err"
check "a missing argument: 'kup dump: option requires an argument -- 't'', exit 2" \
	eval "[ $? = 2 ] && grep -q \"^kup dump: option requires an argument -- 't'\" '$T/err'"

# the commands
mistake kup "kup: error: a command is needed"
mistake kup "kup: error: 'frobnicate' is not a kup command" frobnicate
mistake kup "kup: error: unknown option --bogus" --bogus dump
mistake "kup ppp" "kup ppp: error: a command is needed" ppp
mistake "kup ppp" "kup ppp: error: 'frob' is not a ppp command" ppp frob
mistake "kup kexec" "kup kexec: error: 'frob' is not a kexec command" kexec frob

# kup dump
mistake "kup dump" "kup dump: error: -t PID or --unit UNIT is needed" dump -D "$T/x"
mistake "kup dump" "kup dump: error: -D DIR or --ppp STORE is needed" dump -t $$
mistake "kup dump" "kup dump: error: -D and --ppp exclude each other" dump -t $$ -D "$T/x" --ppp "$T/s"
mistake "kup dump" "kup dump: error: unexpected argument 'extra'" dump -t $$ -D "$T/x" extra
mistake "kup dump" "kup dump: error: -t abc: not a pid" dump -t abc -D "$T/x"
mistake "kup dump" "kup dump: error: several trees go into a store (--ppp), not an image directory" \
	dump -t $$ -t $PPID -D "$T/x"
mistake "kup dump" "kup dump: error: --external-peers: 'maybe' is neither 'close' nor 'refuse'" \
	dump -t $$ -D "$T/x" --external-peers=maybe

# kup restore
mistake "kup restore" "kup restore: error: -D DIR or --ppp STORE is needed" restore -d
mistake "kup restore" "kup restore: error: -D and --ppp exclude each other" restore -D "$T/x" --ppp "$T/s"
mistake "kup restore" "kup restore: error: --keep goes with --ppp" restore -D "$T/x" --keep
mistake "kup restore" "kup restore: error: --pidfile needs -d (without it kup waits for the tree to exit)" \
	restore -D "$T/x" --pidfile "$T/p"
mistake "kup restore" "kup restore: error: --unit, --no-unit and -t exclude each other" \
	restore --ppp "$T/s" --unit a.service --no-unit
mistake "kup restore" "kup restore: error: 'nginx' is not the name of a service unit (NAME.service)" \
	restore --ppp "$T/s" --unit nginx
mistake "kup restore" "kup restore: error: unexpected argument 'extra'" restore -D "$T/x" extra

# kup switch, kup check
mistake "kup switch" "kup switch: error: KERNEL is needed (a path, or a version: /boot/vmlinuz-VERSION)" \
	switch -t $$
mistake "kup switch" "kup switch: error: unexpected argument 'b'" switch a b
mistake "kup switch" "kup switch: error: --initrd and --no-initrd exclude each other" \
	switch k --initrd "$T/i" --no-initrd
mistake "kup check" "kup check: error: unexpected argument 'b' (one KERNEL at most)" check a b

# kup hold
mistake "kup hold" "kup hold: error: --status, --release and --unit-done exclude each other" \
	hold --status --release
mistake "kup hold" "kup hold: error: --json goes with --status" hold --json
mistake "kup hold" "kup hold: error: --ppp and --if-any go with starting a holder, not with --status" \
	hold --status --ppp "$T/s"
mistake "kup hold" "kup hold: error: --timeout soon: not a number of seconds" hold --timeout soon

# kup show
mistake "kup show" "kup show: error: DIR, IMAGE or STORE is needed (or --ppp STORE)" show
mistake "kup show" "kup show: error: --ps, --fds and --mappings exclude each other" show --ps --fds "$T"
mistake "kup show" "kup show: error: unexpected argument 'b'" show a b

# kup kexec
mistake "kup kexec load" "kup kexec load: error: KERNEL is needed (a path, or a version)" kexec load
mistake "kup kexec load" "kup kexec load: error: unexpected argument 'b'" kexec load a b
mistake "kup kexec load" "kup kexec load: error: --initrd and --no-initrd exclude each other" \
	kexec load k --initrd "$T/i" --no-initrd
mistake "kup kexec status" "kup kexec status: error: unexpected argument 'x'" kexec status x
mistake "kup kexec unload" "kup kexec unload: error: unexpected argument 'x'" kexec unload x

# kup ppp
mistake "kup ppp format" "kup ppp format: error: DEV|FILE is needed: the device or file to format" ppp format
mistake "kup ppp format" "kup ppp format: error: bad size 'lots'" ppp format "$T/s" --size lots
mistake "kup ppp get" "kup ppp get: error: NAME is needed: the blob to write out" ppp get
mistake "kup ppp rm" "kup ppp rm: error: NAME is needed: the blob to remove" ppp rm
mistake "kup ppp put" "kup ppp put: error: FILE and NAME are needed" ppp put "$T/f"
mistake "kup ppp status" "kup ppp status: error: unexpected argument 'b'" ppp status a b

# kup status, kup recover
mistake "kup status" "kup status: error: unexpected argument 'x'" status x
mistake "kup recover" "kup recover: error: unexpected argument 'x'" recover x

check "nothing was created by the mistakes" eval '[ ! -e "$T/x" ] && [ ! -e "$T/s" ] && [ ! -e "$T/p" ]'
