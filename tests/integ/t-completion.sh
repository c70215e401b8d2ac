#!/bin/bash
# Bash completion (completion/kup, installed by make install): the commands,
# the sub-commands of ppp and kexec, every option a command's --help lists,
# the values of --external-peers, pids for -t, directories for -D.
. "$(dirname "$0")/../lib.sh"
BC=/usr/share/bash-completion/bash_completion
[ -r "$BC" ] || skip_all "needs bash-completion (tests/install-deps.sh)"
plan 9

mkdir -p "$T/bin" "$T/imgdir"
ln -s "$KUP" "$T/bin/kup"
# comp WORDS...: what completing the last word offers, one per line
comp() {
	PATH=$T/bin:$PATH bash -c '. "$1"; . "$2"; shift 2
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_kup kup; printf "%s\n" "${COMPREPLY[@]}"' comp "$BC" "$TOP/completion/kup" "$@"
}
check "kup <TAB>: the commands" \
	eval '[ "$(comp kup "" | xargs)" = "check dump hold kexec ppp recover restore show status switch" ]'
check "kup ppp <TAB>: its sub-commands" eval 'comp kup ppp "" | grep -qx scrub && comp kup ppp "" | grep -qx format'
check "kup kexec <TAB>: its sub-commands" eval '[ "$(comp kup kexec "" | xargs)" = "load exec unload status" ]'
missing=
for c in dump restore switch check hold show recover status; do
	for o in $("$KUP" $c --help 2>&1 | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
		comp kup $c -- | grep -qx -- "$o" || missing="$missing $c$o"
	done
done
check "every long option of every command's --help is offered" [ -z "$missing" ] ||
	note "not offered:$missing"
check "kup switch --tc<TAB> -> --tcp-established" eval '[ "$(comp kup switch --tc)" = --tcp-established ]'
check "kup ppp status --<TAB> -> --json" eval 'comp kup ppp status -- | grep -qx -- --json'
check "kup dump --external-peers <TAB>: close refuse" \
	eval '[ "$(comp kup dump --external-peers "" | xargs)" = "close refuse" ]'
sleep 60 & sp=$!
check "kup dump -t <TAB> offers a running pid" eval "comp kup dump -t '' | grep -qx $sp"
kill $sp
check "kup restore -D <TAB> offers directories" eval "comp kup restore -D '$T/im' | grep -qx '$T/imgdir'"
