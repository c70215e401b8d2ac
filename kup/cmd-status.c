// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kup status: what the last kernel switch did to each kept service (the
 * record kup/switch-shutdown.c keeps in /var/lib/kup/last-switch): frozen
 * when, running again when, the outage between; or why it was not kept.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "kup.h"

static void status_usage(FILE *f)
{
	fprintf(f,
		"Usage: kup status [--json]\n\n"
		"The last kernel switch (kup switch): the kernels, when it began, and for\n"
		"each kept service when it was frozen, when it ran again on the new boot and\n"
		"the outage between (or why it was not kept: it started cold).  Exit 1 when\n"
		"no switch is recorded (" KUP_LAST_SWITCH_FILE ").\n\n"
		"      --json    one JSON object: {\"last_switch\": {..., \"services\": [...]}}\n"
		"                (nanoseconds as strings, as 64-bit integers are in kup's JSON)\n");
}

static const char *state_of(const struct switch_item *it)
{
	if (it->restored)
		return "restored";
	if (it->failed)
		return "not-kept";
	return it->dumped ? "dumped" : "unknown";
}

static int print_json(const struct switch_record *r)
{
	json_t *top = json_object(), *sw = json_object(), *list = json_array();

	kup_json_set(sw, "kernel", kup_json_str(r->kernel));
	kup_json_set(sw, "from", kup_json_str(r->from));
	kup_json_set(sw, "begun_ns", kup_json_u64(r->begun_ns));
	if (r->booted_release[0])
		kup_json_set(sw, "booted_release", kup_json_str(r->booted_release));
	kup_json_set(sw, "rolled_back", json_boolean(switch_record_rolled_back(r)));
	if (r->dump_done_ns)
		kup_json_set(sw, "dump_done_ns", kup_json_u64(r->dump_done_ns));
	if (r->pre_dump_begun_ns) {
		kup_json_set(sw, "pre_dump_begun_ns", kup_json_u64(r->pre_dump_begun_ns));
		kup_json_set(sw, "pre_dump_done_ns", kup_json_u64(r->pre_dump_done_ns));
	}
	if (r->pre_dump_rounds) {
		kup_json_set(sw, "pre_dump_rounds", json_integer(r->pre_dump_rounds));
		kup_json_set(sw, "pre_dump_pages_copied", kup_json_u64(r->pre_dump_pages));
		kup_json_set(sw, "dump_pages", kup_json_u64(r->dump_pages));
		kup_json_set(sw, "frozen_pages_read", kup_json_u64(r->frozen_pages_read));
	}
	if (r->hold_ns) {
		kup_json_set(sw, "hold_ns", kup_json_u64(r->hold_ns));
		kup_json_set(sw, "hold_since_boot_ns", kup_json_u64(r->hold_since_boot_ns));
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct switch_item *it = &r->items[i];
		json_t *o = json_object();

		kup_json_set(o, "name", kup_json_str(it->name));
		kup_json_set(o, "state", kup_json_str(state_of(it)));
		if (it->freeze_ns)
			kup_json_set(o, "freeze_ns", kup_json_u64(it->freeze_ns));
		if (it->restored) {
			kup_json_set(o, "running_ns", kup_json_u64(it->running_ns));
			/* milliseconds: a number (never near 2^53) */
			kup_json_set(o, "outage_ms",
				     json_integer((json_int_t)((it->running_ns - it->freeze_ns) / 1000000ULL)));
			if (it->restore_begun_ns) {
				kup_json_set(o, "kernel_start_ns", kup_json_u64(it->kernel_start_ns));
				kup_json_set(o, "restore_begun_ns", kup_json_u64(it->restore_begun_ns));
			}
			if (it->memory_complete_ns)
				kup_json_set(o, "memory_complete_ns", kup_json_u64(it->memory_complete_ns));
		}
		if (it->failed)
			kup_json_set(o, "error", kup_json_str(it->error));
		json_array_append_new(list, o);
	}
	kup_json_set(sw, "services", list);
	kup_json_set(top, "last_switch", sw);
	return kup_json_print(stdout, top);
}

/* milliseconds from @a to @b, both CLOCK_REALTIME of the two boots (a
 * negative span, if the clocks disagree, shows as such) */
static long long span_ms(unsigned long long a, unsigned long long b)
{
	/* in unsigned arithmetic: any two times of the record, no overflow */
	return b >= a ? (long long)((b - a) / 1000000ULL) : -(long long)((a - b) / 1000000ULL);
}

/* Where a restored service's outage went: its freeze to the end of the
 * dumps (after the pre-dump rounds while it ran), then the shutdown and the
 * kexec up to the new kernel's start, the boot up to the PID holder of the
 * initramfs and on to its restore, the restore; then, restored lazily, its
 * memory complete.  A moment out of order leaves its phases out. */
static void print_phases(const struct switch_record *r, const struct switch_item *it)
{
	unsigned long long hold;

	if (!it->restore_begun_ns) {
		if (it->memory_complete_ns)
			printf("    memory complete %lld ms after running\n",
			       span_ms(it->running_ns, it->memory_complete_ns));
		return;
	}
	printf("    ");
	if (r->pre_dump_begun_ns && r->pre_dump_done_ns <= it->freeze_ns)
		printf("pre-dump %lld ms while it ran, ",
		       span_ms(r->pre_dump_begun_ns, r->pre_dump_done_ns));
	if (r->dump_done_ns && r->dump_done_ns >= it->freeze_ns &&
	    r->dump_done_ns <= it->kernel_start_ns)
		printf("freeze+dump %lld ms, shutdown+kexec %lld ms, ",
		       span_ms(it->freeze_ns, r->dump_done_ns),
		       span_ms(r->dump_done_ns, it->kernel_start_ns));
	else
		printf("freeze to the new kernel %lld ms, ",
		       span_ms(it->freeze_ns, it->kernel_start_ns));
	/* the hold, on this restore's clock: the kernel's start plus the
	 * time from it (the wall clock may have been set in between) */
	hold = it->kernel_start_ns + r->hold_since_boot_ns;
	if (r->hold_since_boot_ns && hold > it->kernel_start_ns && hold <= it->restore_begun_ns)
		printf("boot to the hold %lld ms, hold to its restore %lld ms, ",
		       span_ms(it->kernel_start_ns, hold), span_ms(hold, it->restore_begun_ns));
	else
		printf("boot to its restore %lld ms, ",
		       span_ms(it->kernel_start_ns, it->restore_begun_ns));
	printf("restore %lld ms", span_ms(it->restore_begun_ns, it->running_ns));
	if (it->memory_complete_ns)
		printf(", memory complete %lld ms after running",
		       span_ms(it->running_ns, it->memory_complete_ns));
	printf("\n");
}

static void print_text(const struct switch_record *r)
{
	char a[64], b[64];

	printf("last switch: %s -> %s, begun %s\n", r->from[0] ? r->from : "?",
	       r->kernel[0] ? r->kernel : "?", kup_fmt_time(r->begun_ns, a, sizeof(a)));
	if (switch_record_rolled_back(r))
		printf("  came back on %s: %s did not come up (its panic= rebooted the machine "
		       "into the default boot entry)\n", r->from, r->kernel);
	else if (r->booted_release[0])
		printf("  came up on %s\n", r->booted_release);
	if (r->pre_dump_begun_ns && r->pre_dump_rounds)
		printf("  pre-dump %u round%s, %llu pages copied (%.1f MiB), %lld ms while the "
		       "services ran (from %s to %s)\n", r->pre_dump_rounds,
		       r->pre_dump_rounds == 1 ? "" : "s", r->pre_dump_pages,
		       r->pre_dump_pages * (double)sysconf(_SC_PAGESIZE) / 1048576,
		       span_ms(r->pre_dump_begun_ns, r->pre_dump_done_ns),
		       kup_fmt_time(r->pre_dump_begun_ns, a, sizeof(a)),
		       kup_fmt_time(r->pre_dump_done_ns, b, sizeof(b)));
	else if (r->pre_dump_begun_ns)
		printf("  pre-dump %lld ms while the services ran (from %s to %s)\n",
		       span_ms(r->pre_dump_begun_ns, r->pre_dump_done_ns),
		       kup_fmt_time(r->pre_dump_begun_ns, a, sizeof(a)),
		       kup_fmt_time(r->pre_dump_done_ns, b, sizeof(b)));
	if (r->pre_dump_rounds)
		printf("  the frozen pass read %llu of %llu pages (%llu from the pre-dump)\n",
		       r->frozen_pages_read, r->dump_pages, r->dump_pages - r->frozen_pages_read);
	if (r->hold_ns)
		printf("  the PIDs held from %s, %llu ms after the kernel's start\n",
		       kup_fmt_time(r->hold_ns, a, sizeof(a)), r->hold_since_boot_ns / 1000000ULL);
	if (!r->n)
		printf("  no service recorded\n");
	for (size_t i = 0; i < r->n; i++) {
		const struct switch_item *it = &r->items[i];

		if (it->restored) {
			printf("  %s: outage %llu ms (frozen at %s, running again at %s)\n", it->name,
			       (it->running_ns - it->freeze_ns) / 1000000ULL,
			       kup_fmt_time(it->freeze_ns, a, sizeof(a)),
			       kup_fmt_time(it->running_ns, b, sizeof(b)));
			print_phases(r, it);
		} else if (it->failed)
			printf("  %s: not kept: %s\n", it->name, it->error);
		else
			printf("  %s: dumped, not restored (yet)\n", it->name);
	}
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, 0, 'J' },
		{ "help", no_argument, 0, 'h' },
		{}
	};
	struct switch_record r;
	bool json = false;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'J': json = true; break;
		case 'h': status_usage(stdout); return 0;
		default: return kup_usage_error(NULL);
		}
	}
	if (optind != argc)
		return kup_usage_error("unexpected argument '%s'", argv[optind]);
	ret = switch_record_read(&r);
	if (ret == -ENOENT) {
		if (json)
			printf("{\"last_switch\": null}\n");
		else
			printf("no switch recorded\n");
		return KUP_EXIT_FAIL;
	}
	if (ret)
		return KUP_EXIT_FAIL;
	if (json)
		ret = print_json(&r);
	else
		print_text(&r);
	switch_record_free(&r);
	return ret ? KUP_EXIT_FAIL : 0;
}

