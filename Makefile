# kup — top-level build.
#   make            build build/kup (optimised; warnings are errors, WERROR= to not)
#   make progs      the test programs (tests/progs) the tests and benchmarks run
#   make check      build the ASan/UBSan variant and run every test
#   make install    install into $(DESTDIR)$(PREFIX)
#   make bench      run the benchmarks (prints figures; Debian's daemons too)
#   make lab-bench  the persistent page store's figures in the QEMU lab, and kup's
#                   switch beside criu's
#   make fuzz       build the libFuzzer targets (clang)
#   make fuzz-run   and run each for FUZZ_SECS seconds (default 30): execs, cov, ft
#
# CPPFLAGS, CFLAGS and LDFLAGS are honoured (dpkg-buildflags' hardening);
# libraries and systemd's directories come from pkg-config.

CC       ?= gcc
PKG_CONFIG ?= pkg-config
PROTOC_C ?= protoc-c
PREFIX   ?= /usr
SBINDIR  ?= $(PREFIX)/sbin
MANDIR   ?= $(PREFIX)/share/man
DATADIR  ?= $(PREFIX)/share
UNITDIR  ?= $(or $(shell $(PKG_CONFIG) --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)
GENDIR   ?= $(or $(shell $(PKG_CONFIG) --variable=systemdsystemgeneratordir systemd 2>/dev/null),/lib/systemd/system-generators)
BASHCOMPDIR ?= $(or $(shell $(PKG_CONFIG) --variable=completionsdir bash-completion 2>/dev/null),$(DATADIR)/bash-completion/completions)
# initramfs-tools reads its hooks from /usr/share only, whatever PREFIX is;
# dracut its modules from its own directory.
ITDIR    ?= /usr/share/initramfs-tools
DRACUTDIR ?= $(or $(shell $(PKG_CONFIG) --variable=dracutmodulesdir dracut 2>/dev/null),/usr/lib/dracut/modules.d)

ARCH     ?= x86_64
O        ?= build

# Warnings are errors for developers and CI; a distribution build says WERROR=.
WERROR   ?= -Werror
WARN     := -Wall -Wextra $(WERROR) -Wno-unused-parameter -Wno-missing-field-initializers \
            -Wshadow -Wformat=2 -Wno-format-nonliteral
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE -g $(WARN) -fno-strict-aliasing \
            -I$(O)/proto -Ickpt-core/include -Ickpt-core -Iarch/$(ARCH)/include -Iarch/include \
            -Ippp/include -Ikup
OPT      ?= -O2
CPPFLAGS ?=
CFLAGS   ?=
LDFLAGS  ?=
SAN      :=
PKGS     := libprotobuf-c libcap libkmod blkid libisal libxxhash libnftables libmnl jansson
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
LIBS     := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
# The goals that install the dependencies first (make deps) and build in a
# make of their own run on a machine that has none of them yet.
SETUP_GOALS := deps check demo demo-counter demo-local lab-check bench lab-bench clean
ifeq ($(LIBS),)
ifneq ($(filter-out $(SETUP_GOALS),$(or $(MAKECMDGOALS),all)),)
$(error pkg-config finds none of $(PKGS): run tests/install-deps.sh (make deps))
endif
endif

PROTOS     := $(wildcard ckpt-core/proto/*.proto)
PROTO_C    := $(patsubst ckpt-core/proto/%.proto,$(O)/proto/%.pb-c.c,$(PROTOS))
PROTO_H    := $(PROTO_C:.c=.h)

CKPT_SRC := $(wildcard ckpt-core/*.c)
ARCH_SRC := $(wildcard arch/$(ARCH)/*.c)
PPP_SRC  := $(wildcard ppp/*.c)
KUP_SRC  := $(wildcard kup/*.c)
LIB_SRC  := $(CKPT_SRC) $(ARCH_SRC) $(PPP_SRC)

ALL_CFLAGS = $(BASE_CFLAGS) $(PKG_CFLAGS) $(OPT) $(SAN) $(CPPFLAGS) $(CFLAGS)

obj = $(patsubst %.c,$(O)/obj/%.o,$(1))

LIB_OBJ   := $(call obj,$(LIB_SRC)) $(patsubst %.c,%.o,$(subst $(O)/proto,$(O)/obj/proto,$(PROTO_C)))
KUP_OBJ   := $(call obj,$(KUP_SRC))
TEST_SRC  := $(wildcard tests/unit/test-*.c)
TEST_BIN  := $(patsubst tests/unit/%.c,$(O)/tests/%,$(TEST_SRC))
PROG_SRC  := $(wildcard tests/progs/*.c)
PROG_BIN  := $(patsubst tests/progs/%.c,$(O)/progs/%,$(PROG_SRC))
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(patsubst bench/%.c,$(O)/bench/%,$(BENCH_SRC))

.PHONY: bench-bin deb lab-bench fuzz-run demo demo-counter demo-local all check unit integ install clean bench fuzz deps lab-check progs tests
.SECONDARY:

all: $(O)/kup

$(O)/proto/%.pb-c.c $(O)/proto/%.pb-c.h: ckpt-core/proto/%.proto
	@mkdir -p $(O)/proto
	$(PROTOC_C) --proto_path=ckpt-core/proto --c_out=$(O)/proto $<

$(O)/obj/proto/%.o: $(O)/proto/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(PKG_CFLAGS) $(OPT) $(SAN) $(CPPFLAGS) $(CFLAGS) -Wno-error -c -o $@ $<

$(O)/obj/%.o: %.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(O)/libkup.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(O)/kup: $(KUP_OBJ) $(O)/libkup.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(KUP_OBJ) $(O)/libkup.a $(LIBS)

$(O)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(O)/libkup.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(O)/libkup.a $(LIBS) -lcmocka

$(O)/progs/%: tests/progs/%.c tests/progs/say.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE -O1 -g -Wall -Werror -pthread -o $@ $< -lrt

$(O)/bench/%: bench/%.c $(O)/libkup.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(O)/libkup.a $(LIBS)

progs: $(PROG_BIN)
bench-bin: $(BENCH_BIN)
tests: $(O)/kup $(TEST_BIN) $(PROG_BIN)

# Dependencies from Debian, installed by the project itself.
deps:
	@tests/install-deps.sh

# The test build: ASan + UBSan.
check: deps
	$(MAKE) O=build/asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" tests
	$(MAKE) progs
	$(MAKE) all
	KUP=build/asan/kup PROGS=build/progs TESTBIN=build/asan/tests tests/check.sh

lab-check: deps
	$(MAKE) all progs
	tests/vm/run-lab-tests.sh

bench: deps
	$(MAKE) all progs bench-bin
	bench/run.sh
	bench/daemons.sh

lab-bench: deps
	$(MAKE) all progs bench-bin
	bench/lab-bench.sh

fuzz:
	tests/fuzz/build.sh

FUZZ_SECS ?= 30
fuzz-run:
	tests/fuzz/build.sh run $(FUZZ_SECS)


# The units, the generator, the initramfs hook and the dracut module name kup
# by its path: the installed one ($(SBINDIR)/kup), substituted as they are
# installed.  The init-top script runs in the initramfs, where the hook puts
# kup in /usr/sbin; the dracut module puts it where it is installed.
SUBST = sed -e 's|/usr/sbin/kup|$(SBINDIR)/kup|g'
install: all
	install -D -m 0755 $(O)/kup $(DESTDIR)$(SBINDIR)/kup
	install -d $(DESTDIR)$(MANDIR)/man8
	install -m 0644 docs/kup.8 docs/kup-*.8 $(DESTDIR)$(MANDIR)/man8/
	install -D -m 0644 completion/kup $(DESTDIR)$(BASHCOMPDIR)/kup
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(GENDIR) $(DESTDIR)$(ITDIR)/hooks $(DESTDIR)$(ITDIR)/scripts/init-top
	for f in systemd-units/*.service; do \
		$(SUBST) $$f > $(DESTDIR)$(UNITDIR)/$${f##*/} && chmod 0644 $(DESTDIR)$(UNITDIR)/$${f##*/} || exit 1; \
	done
	$(SUBST) systemd-units/kup-generator > $(DESTDIR)$(GENDIR)/kup-generator
	chmod 0755 $(DESTDIR)$(GENDIR)/kup-generator
	$(SUBST) initramfs/initramfs-tools/hooks/kup > $(DESTDIR)$(ITDIR)/hooks/kup
	cp initramfs/initramfs-tools/scripts/init-top/kup $(DESTDIR)$(ITDIR)/scripts/init-top/kup
	chmod 0755 $(DESTDIR)$(ITDIR)/hooks/kup $(DESTDIR)$(ITDIR)/scripts/init-top/kup
	install -d $(DESTDIR)$(DRACUTDIR)/90kup
	for f in initramfs/dracut/90kup/*.sh; do \
		$(SUBST) $$f > $(DESTDIR)$(DRACUTDIR)/90kup/$${f##*/} && chmod 0755 $(DESTDIR)$(DRACUTDIR)/90kup/$${f##*/} || exit 1; \
	done
	[ -e $(DESTDIR)/etc/default/kup ] || install -D -m 0644 docs/kup.default $(DESTDIR)/etc/default/kup

# The Debian package, built from a copy of the tracked files (debian/).
deb:
	rm -rf $(O)/deb && mkdir -p $(O)/deb/src
	git ls-files -z | xargs -0 tar -cf - -- | tar -xf - -C $(O)/deb/src
	cd $(O)/deb/src && dpkg-buildpackage -us -uc -b
	rm -rf $(O)/deb/src
	@ls $(O)/deb/*.deb

clean:
	rm -rf build

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)

# The main job, for real, in the QEMU lab (builds the guest on first use):
# Debian's openvpn server, sshd with an interactive session and redis, each
# by its own unit, kept by one `kup switch` from 6.1 to 6.12 while their
# clients outside the guest stay connected (tests/vm/t-demo.sh).
# demo-counter: a counter service kept across 6.1.0-47 -> 6.1.0-56
# (tests/vm/t-switch.sh).  demo-local: dump, kill and restore a counter on
# this machine.
demo: deps
	$(MAKE) all progs
	tests/vm/run-lab-tests.sh t-demo.sh

demo-counter: deps
	$(MAKE) all progs
	tests/vm/run-lab-tests.sh t-switch.sh

demo-local: deps
	$(MAKE) all progs
	tests/demo.sh
