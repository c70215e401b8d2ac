#!/bin/bash
# The Debian package: `dpkg-buildpackage -us -uc -b` on a copy of the source
# builds kup_*.deb with dpkg-buildflags' hardening (blhc finds no flag
# missing in the build log, the binary is PIE with immediate binding, read-only
# relocations and fortified functions), lintian reports no error or warning,
# and the package holds the command, the man page, the units (kup-restore
# enabled, not started at install), the generator, the initramfs hook
# (with the update-initramfs trigger) and the dracut module.  Also: `make install` with another
# PREFIX names that prefix's kup in the units and the hook.
. "$(dirname "$0")/../lib.sh"
for c in dpkg-buildpackage dh lintian blhc hardening-check; do
	command -v $c > /dev/null || skip_all "needs $c (tests/install-deps.sh)"
done
command -v git > /dev/null && [ -e "$TOP/.git" ] || skip_all "needs the git checkout"
plan 18

ver=$(dpkg-parsechangelog -l "$TOP/debian/changelog" -S Version)
src=$T/pkg/kup-$ver
mkdir -p "$src"
(cd "$TOP" && git ls-files -z | xargs -0 tar -cf - --) | tar -xf - -C "$src"
check "dpkg-buildpackage -us -uc -b builds the package" \
	eval "(cd '$src' && DEB_BUILD_OPTIONS=parallel=2 dpkg-buildpackage -us -uc -b) > '$T/build.log' 2>&1" ||
	note "$(tail -n 15 "$T/build.log")"
deb=$T/pkg/kup_${ver}_amd64.deb
check "... into kup_${ver}_amd64.deb" [ -f "$deb" ] || exit 1
check "blhc: no hardening flag missing in the build log" blhc "$T/build.log" ||
	note "$(blhc "$T/build.log" | head -n 3)"
check "the compiler ran with dpkg-buildflags' CFLAGS and LDFLAGS" \
	eval "grep -q -- '-fstack-protector-strong.*-o build/kup ' '$T/build.log' &&
	      grep -q -- '-Wl,-z,now.*-o build/kup ' '$T/build.log'"
check "warnings are not errors in a distribution build" \
	eval "! grep -qE -- '-Werror( |$)' '$T/build.log'"
lintian --no-tag-display-limit "$T/pkg/kup_${ver}_amd64.changes" > "$T/lintian" 2>&1
check "lintian: no error and no warning" eval "! grep -E '^(E|W): ' '$T/lintian'" ||
	note "$(grep -E '^(E|W): ' "$T/lintian" | head -n 5)"
dpkg-deb -x "$deb" "$T/root"
dpkg-deb -e "$deb" "$T/ctl"
hardening-check "$T/root/usr/sbin/kup" > "$T/hc" 2>&1
check "the binary is PIE, stack protected, fortified, with RELRO and BIND_NOW" \
	eval "grep -q 'Position Independent Executable: yes' '$T/hc' &&
	      grep -q 'Stack protected: yes' '$T/hc' &&
	      grep -q 'Fortify Source functions: yes' '$T/hc' &&
	      grep -q 'Read-only relocations: yes' '$T/hc' &&
	      grep -q 'Immediate binding: yes' '$T/hc'" || note "$(cat "$T/hc")"
check "the package runs: kup --version" "$T/root/usr/sbin/kup" --version
for f in usr/share/man/man8/kup.8.gz usr/share/man/man8/kup-dump.8.gz \
	usr/share/man/man8/kup-restore.8.gz usr/share/man/man8/kup-switch.8.gz \
	usr/share/man/man8/kup-check.8.gz usr/share/man/man8/kup-show.8.gz \
	usr/share/man/man8/kup-ppp.8.gz usr/share/man/man8/kup-kexec.8.gz \
	usr/share/man/man8/kup-hold.8.gz usr/share/man/man8/kup-status.8.gz \
	usr/share/man/man8/kup-recover.8.gz lib/systemd/system/kup-restore.service \
	lib/systemd/system/kup-cold@.service lib/systemd/system/kup-switch-dump.service \
	lib/systemd/system-generators/kup-generator \
	usr/share/initramfs-tools/hooks/kup usr/share/initramfs-tools/scripts/init-top/kup \
	usr/share/bash-completion/completions/kup \
	usr/lib/dracut/modules.d/90kup/module-setup.sh usr/lib/dracut/modules.d/90kup/kup-hold.sh; do
	[ -e "$T/root/$f" ] || echo "$f" >> "$T/missing"
done
check "it holds the man pages (kup(8) and one per command), the units, the generator, the initramfs hook, the completion, the dracut module" \
	[ ! -s "$T/missing" ] || note "missing: $(cat "$T/missing")"
check "kup-restore.service is enabled at install" \
	grep -q "deb-systemd-helper enable 'kup-restore.service'" "$T/ctl/postinst"
check "... and not started then (it would restore at install time)" \
	eval "! grep -q \"deb-systemd-invoke .*'kup-restore.service'\" '$T/ctl/postinst'"
check "kup-cold@.service is not enabled (a template, started on failure)" \
	eval "! grep -q \"enable 'kup-cold@\" '$T/ctl/postinst'"
check "kup-switch-dump.service is neither enabled nor started (kup switch starts it)" \
	eval "! grep -q \"'kup-switch-dump.service'\" '$T/ctl/postinst'"
check "the initrds are rebuilt when the hook changes (update-initramfs trigger)" \
	grep -qx 'activate-noawait update-initramfs' "$T/ctl/triggers"

# make install with PREFIX=/usr/local: the units and the hook name that kup,
# the init-top script (in the initrd) still /usr/sbin/kup.
make -s -C "$src" install DESTDIR="$T/inst" PREFIX=/usr/local > "$T/inst.log" 2>&1
check "make install PREFIX=/usr/local installs kup there" [ -x "$T/inst/usr/local/sbin/kup" ] ||
	note "$(tail -n 5 "$T/inst.log")"
check "... and its units and generator run /usr/local/sbin/kup" \
	eval "grep -q 'ExecStart=/usr/local/sbin/kup ' '$T/inst/lib/systemd/system/kup-restore.service' &&
	      grep -q '/usr/local/sbin/kup restore' '$T/inst/lib/systemd/system-generators/kup-generator' &&
	      ! grep -rq '/usr/sbin/kup' '$T/inst/lib'"
check "... the initramfs hook copies it into the initrd as /usr/sbin/kup" \
	eval "grep -q 'copy_exec /usr/local/sbin/kup /usr/sbin' '$T/inst/usr/share/initramfs-tools/hooks/kup' &&
	      grep -q '^/usr/sbin/kup hold' '$T/inst/usr/share/initramfs-tools/scripts/init-top/kup'"
check "... the dracut module puts that kup in the initrd and runs it in its pre-udev hook" \
	eval "grep -q 'inst_binary /usr/local/sbin/kup\$' '$T/inst/usr/lib/dracut/modules.d/90kup/module-setup.sh' &&
	      grep -q 'inst_hook pre-udev 00 ' '$T/inst/usr/lib/dracut/modules.d/90kup/module-setup.sh' &&
	      grep -q '^	/usr/local/sbin/kup hold --ppp auto --if-any' '$T/inst/usr/lib/dracut/modules.d/90kup/kup-hold.sh' &&
	      ! grep -rq '/usr/sbin/kup' '$T/inst/usr/lib/dracut'"
