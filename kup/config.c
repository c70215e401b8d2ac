// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The configuration file, /etc/default/kup (KUP_CONFIG in the environment,
 * or --config, names another): shell-style KEY=value lines, so that systemd
 * units can read it with EnvironmentFile= as well (like /etc/default/kexec).
 * What kup reads (docs/kup.8, CONFIGURATION):
 *
 *   KUP_UNITS="a.service b.service"   the units kup switch keeps by default
 *   KUP_STORE=auto                    the store (a device, a file, auto)
 *   KUP_TCP_ESTABLISHED=no            yes: keep established TCP connections
 *   KUP_EXTERNAL_PEERS=close          close or refuse
 *   KUP_HOLD_TIMEOUT=600              kup hold's --timeout (seconds)
 *   KUP_PRE_DUMP=no                   yes or N: kup switch's --pre-dump[=N]
 *   KUP_RESTORE_MEMORY=eager          lazy: kup restore --ppp runs --lazy
 *   KUP_PANIC=10                      kup switch's --panic (seconds)
 *
 * A value may be quoted with '' or "" (no escapes, no expansion).  Blank
 * lines and # comments are skipped; other keys are left to whoever else
 * reads the file.  A line that is not KEY=value, or a value kup cannot use,
 * is an error naming the file and the line: a command that reads the file
 * then refuses to run rather than do something else than what was meant.
 * Command-line options win over the file.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kup.h"

static void config_free_units(struct kup_config *c)
{
	for (int i = 0; i < c->nunits; i++)
		free(c->units[i]);
	c->nunits = 0;
}

void kup_config_free(struct kup_config *c)
{
	config_free_units(c);
	free(c->store);
	c->store = NULL;
}

static int yes_no(const char *v, int *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0") || !*v)
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

/* One KEY=value; -EINVAL with a message naming @where. */
static int config_set(struct kup_config *c, const char *key, const char *val, const char *where)
{
	char *end;

	if (!strcmp(key, "KUP_UNITS")) {
		char *copy = strdup(val), *save = NULL, *w;

		if (!copy)
			return log_errno(ENOMEM, "%s", where);
		config_free_units(c);
		for (w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
			if (!kup_unit_name_ok(w)) {
				log_err("%s: KUP_UNITS: '%s' is not the name of a service unit "
					"(NAME.service)", where, w);
				free(copy);
				return -EINVAL;
			}
			for (int i = 0; i < c->nunits; i++)
				if (!strcmp(c->units[i], w)) {
					log_err("%s: KUP_UNITS: %s is named twice", where, w);
					free(copy);
					return -EINVAL;
				}
			if (c->nunits == KUP_MAX_TREES) {
				log_err("%s: KUP_UNITS: more than %d units", where, KUP_MAX_TREES);
				free(copy);
				return -EINVAL;
			}
			c->units[c->nunits] = strdup(w);
			if (!c->units[c->nunits]) {
				free(copy);
				return log_errno(ENOMEM, "%s", where);
			}
			c->nunits++;
		}
		free(copy);
	} else if (!strcmp(key, "KUP_STORE")) {
		if (!*val || (strcmp(val, "auto") && val[0] != '/')) {
			log_err("%s: KUP_STORE: '%s' is neither 'auto' nor an absolute path", where, val);
			return -EINVAL;
		}
		free(c->store);
		c->store = strdup(val);
		if (!c->store)
			return log_errno(ENOMEM, "%s", where);
	} else if (!strcmp(key, "KUP_TCP_ESTABLISHED")) {
		if (yes_no(val, &c->tcp)) {
			log_err("%s: KUP_TCP_ESTABLISHED: '%s' is neither yes nor no", where, val);
			return -EINVAL;
		}
	} else if (!strcmp(key, "KUP_EXTERNAL_PEERS")) {
		if (!strcmp(val, "close")) {
			c->ext_peers_close = 1;
		} else if (!strcmp(val, "refuse")) {
			c->ext_peers_close = 0;
		} else {
			log_err("%s: KUP_EXTERNAL_PEERS: '%s' is neither 'close' nor 'refuse'", where, val);
			return -EINVAL;
		}
	} else if (!strcmp(key, "KUP_HOLD_TIMEOUT")) {
		errno = 0;
		c->hold_timeout = strtol(val, &end, 10);
		if (errno || !*val || *end || c->hold_timeout < 0 || c->hold_timeout > 86400 * 365) {
			log_err("%s: KUP_HOLD_TIMEOUT: '%s' is not a number of seconds", where, val);
			c->hold_timeout = -1;
			return -EINVAL;
		}
	} else if (!strcmp(key, "KUP_PRE_DUMP")) {
		long n;
		int yes;

		errno = 0;
		n = strtol(val, &end, 10);
		if (*val && !*end && !errno && n >= 0 && n <= 100) {
			c->pre_dump = n;
		} else if (!yes_no(val, &yes)) {
			c->pre_dump = yes ? KUP_PRE_DUMP_ROUNDS : 0;
		} else {
			log_err("%s: KUP_PRE_DUMP: '%s' is neither yes, no nor a number of rounds "
				"from 0 to 100", where, val);
			c->pre_dump = -1;
			return -EINVAL;
		}
	} else if (!strcmp(key, "KUP_RESTORE_MEMORY")) {
		if (!strcmp(val, "lazy")) {
			c->lazy = 1;
		} else if (!strcmp(val, "eager")) {
			c->lazy = 0;
		} else {
			log_err("%s: KUP_RESTORE_MEMORY: '%s' is neither 'lazy' nor 'eager'", where, val);
			c->lazy = -1;
			return -EINVAL;
		}
	} else if (!strcmp(key, "KUP_PANIC")) {
		errno = 0;
		c->panic = strtol(val, &end, 10);
		if (errno || !*val || *end || c->panic < 0 || c->panic > 86400) {
			log_err("%s: KUP_PANIC: '%s' is not a number of seconds (0..86400)", where, val);
			c->panic = -1;
			return -EINVAL;
		}
	} else if (!strncmp(key, "KUP_", 4)) {
		log_warn("%s: %s is not a setting of kup: ignored", where, key);
	}
	return 0;
}

/* Parse one line in place: 0 (also for blank and comment lines), -EINVAL. */
static int config_line(struct kup_config *c, char *l, const char *where)
{
	char *key, *val, *end;
	size_t n;

	while (*l == ' ' || *l == '\t')
		l++;
	n = strlen(l);
	while (n && (l[n - 1] == ' ' || l[n - 1] == '\t' || l[n - 1] == '\r'))
		l[--n] = 0;
	if (!*l || *l == '#')
		return 0;
	if (!strncmp(l, "export ", 7))
		l += 7;
	key = l;
	if (!isalpha((unsigned char)*key) && *key != '_')
		goto bad;
	for (val = key; isalnum((unsigned char)*val) || *val == '_'; val++)
		;
	if (*val != '=')
		goto bad;
	*val++ = 0;
	if (*val == '"' || *val == '\'') {
		end = strchr(val + 1, *val);
		if (!end || end[1])
			goto bad;
		*end = 0;
		val++;
	} else if (strpbrk(val, " \t\"'$`\\;&|<>()")) {
		goto bad;
	}
	return config_set(c, key, val, where);
bad:
	log_err("%s: not KEY=value (quote a value with spaces): %.80s", where, l);
	return -EINVAL;
}

int kup_config_load(const char *path, struct kup_config *c)
{
	const char *env = getenv("KUP_CONFIG");
	bool given = path || (env && *env);
	char line[4096], where[PATH_MAX + 32];
	int nr = 0, ret = 0;
	FILE *f;

	memset(c, 0, sizeof(*c));
	c->tcp = -1;
	c->ext_peers_close = -1;
	c->hold_timeout = -1;
	c->pre_dump = -1;
	c->lazy = -1;
	c->panic = -1;
	if (!path)
		path = env && *env ? env : KUP_CONFIG_FILE;
	snprintf(c->path, sizeof(c->path), "%s", path);
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && !given)
			return 0;
		return log_errno(errno, "cannot read the configuration file %s", path);
	}
	c->loaded = true;
	while (!ret && fgets(line, sizeof(line), f)) {
		nr++;
		if (!strchr(line, '\n') && !feof(f)) {
			log_err("%s:%d: line too long", path, nr);
			ret = -EINVAL;
			break;
		}
		line[strcspn(line, "\n")] = 0;
		snprintf(where, sizeof(where), "%s:%d", path, nr);
		ret = config_line(c, line, where);
	}
	if (!ret && ferror(f))
		ret = log_errno(EIO, "cannot read %s", path);
	fclose(f);
	if (ret)
		kup_config_free(c);
	return ret;
}
