#!/bin/bash
# The man pages (docs/kup.8, docs/kup-COMMAND.8): each renders without a
# warning (groff -ww, as man -l and lintian's manpage checks do), has NAME,
# SYNOPSIS, DESCRIPTION, OPTIONS, EXAMPLES, EXIT STATUS and SEE ALSO, and
# says what --help says: the long options of a command's --help are those
# of its page's OPTIONS, those of its usage lines those of the page's
# SYNOPSIS and of kup(8)'s.  kup(8) points to every page.
. "$(dirname "$0")/../lib.sh"
command -v groff > /dev/null || skip_all "needs groff"
D=$TOP/docs
PAGES="dump restore switch check show ppp kexec hold status recover"
plan 33

# section PAGE NAME: the roff source of section NAME of PAGE
section() { awk -v s="$2" '/^\.SH / { on = ($0 == ".SH " s || $0 == ".SH \"" s "\"") ; next } on' "$1"; }
# longopts: the --options in a roff source or a --help text, sorted, unique
longopts() { sed 's/\\-/-/g; s/\\f[BIRP]//g' | grep -oE -- '--[a-z][a-z-]*' | sort -u | xargs; }
# optlines: the option lines of a --help text ("  -t, --tree PID  ..."), their options only
optlines() { grep -E '^ {2,6}-' | sed -E 's/^ +//; s/ {2,}.*//'; }
# tags: the tags of the .TP paragraphs of a roff source
tags() { awk 'tp { print; tp = 0 } /^\.TP/ { tp = 1 }'; }
# usage: the usage lines of a --help text
usage() { awk '/^Usage: / { on = 1 } on && /^$/ { exit } on'; }

for p in kup $(printf 'kup-%s ' $PAGES); do
	f=$D/$p.8
	LC_ALL=C.UTF-8 groff -ww -man -Tutf8 -z "$f" > "$T/warn" 2>&1
	missing=
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS EXAMPLES "EXIT STATUS" "SEE ALSO"; do
		grep -qE "^\.SH \"?$s\"?$" "$f" || missing="$missing $s"
	done
	check "$p(8): renders without warnings, all sections" eval '[ ! -s "$T/warn" ] && [ -z "$missing" ]' ||
		note "$(head -n 3 "$T/warn")" "missing:$missing"
done

for c in dump restore switch check show hold status recover; do
	"$KUP" $c --help > "$T/help"
	h=$(optlines < "$T/help" | longopts)
	o=$(section "$D/kup-$c.8" OPTIONS | tags | longopts)
	check "kup-$c(8) OPTIONS: the options of kup $c --help" [ "$h" = "$o" ] ||
		note "--help: $h" "page:   $o"
	h=$(usage < "$T/help" | longopts)
	s=$(section "$D/kup-$c.8" SYNOPSIS | longopts)
	check "kup-$c(8) SYNOPSIS: those of its usage lines" [ "$h" = "$s" ] ||
		note "--help: $h" "page:   $s"
done
for c in format status verify scrub ls put get rm; do
	"$KUP" ppp $c --help
done > "$T/help"
check "kup-ppp(8) OPTIONS: the options of every kup ppp COMMAND --help" \
	[ "$(optlines < "$T/help" | longopts)" = "$(section "$D/kup-ppp.8" OPTIONS | tags | longopts)" ] ||
	note "--help: $(optlines < "$T/help" | longopts)" "page:   $(section "$D/kup-ppp.8" OPTIONS | tags | longopts)"
check "kup-kexec(8) OPTIONS: the options of kup kexec --help" \
	[ "$("$KUP" kexec --help | longopts)" = "$(section "$D/kup-kexec.8" OPTIONS | longopts)" ] ||
	note "--help: $("$KUP" kexec --help | longopts)" "page:   $(section "$D/kup-kexec.8" OPTIONS | longopts)"
for c in dump restore switch check show hold status recover; do
	"$KUP" $c --help | usage
done > "$T/usages"
for c in format status verify scrub ls put get rm; do
	"$KUP" ppp $c --help | usage
done >> "$T/usages"
check "kup(8) SYNOPSIS: the options of every command's usage lines" \
	[ "$(longopts < "$T/usages")" = "$(section "$D/kup.8" SYNOPSIS | grep -v 'kup\\-kexec\|kexec' | longopts)" ] ||
	note "--help: $(longopts < "$T/usages")" "kup(8): $(section "$D/kup.8" SYNOPSIS | grep -v kexec | longopts)"
missing=
for c in $PAGES; do
	section "$D/kup.8" "SEE ALSO" | grep -q "^\.BR kup\\\\-$c (8)" || missing="$missing $c"
done
check "kup(8) SEE ALSO: every command's page" [ -z "$missing" ] || note "missing:$missing"
missing=
for c in $PAGES; do
	grep -q "^\.TH KUP\\\\-${c^^} 8 " "$D/kup-$c.8" && section "$D/kup-$c.8" NAME | grep -q "^kup\\\\-$c \\\\- " ||
		missing="$missing $c"
done
check "each page is KUP-CMD(8), NAME \"kup-CMD - ...\"" [ -z "$missing" ] || note "wrong:$missing"
check "make install installs every page" eval 'make -s -C "$TOP" -n install DESTDIR="$T/inst" 2>/dev/null |
	grep -q "install -m 0644 docs/kup.8 docs/kup-\*.8 .*/man8/"'
