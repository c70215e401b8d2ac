#!/bin/bash
# Usage mistakes: exit status 2, and the message names the command as the
# user typed it ("kup dump: unrecognized option '--bogus'"), for every
# command and sub-command.
. "$(dirname "$0")/../lib.sh"
plan 2

bad=
for c in dump restore switch check hold show recover "kexec load" "kexec status" \
	"ppp status" "ppp ls" "ppp format"; do
	"$KUP" $c --bogus > /dev/null 2> "$T/err"
	rc=$?
	{ [ $rc = 2 ] && grep -q "^kup $c: unrecognized option '--bogus'" "$T/err"; } ||
		bad="$bad [$c: exit $rc, $(head -n 1 "$T/err")]"
done
check "an unknown option: 'kup CMD: unrecognized option', exit 2" [ -z "$bad" ] || note "$bad"
"$KUP" dump -t > /dev/null 2> "$T/err"
check "a missing argument: 'kup dump: option requires an argument -- 't'', exit 2" \
	eval "[ $? = 2 ] && grep -q \"^kup dump: option requires an argument -- 't'\" '$T/err'"
