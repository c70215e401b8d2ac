/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging shared by the engine and the driver.
 *
 * Errors are logged once, where the context (pid, fd, path) is known, and the
 * function returns a negative errno.  log_errno() returns -err so that the
 * idiom "return log_errno(errno, "...")" works everywhere.
 */
#ifndef KUP_LOG_H
#define KUP_LOG_H

#include <errno.h>
#include <stdbool.h>

enum log_level {
	LOG_LVL_ERR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

void log_set_level(int level);
int log_get_level(void);
void log_set_prefix(const char *prefix);
/*
 * Lines start with a syslog priority "<N>" when stderr is journald's stream
 * (JOURNAL_STREAM) or /dev/kmsg (found by the first message); this forces
 * it on (1) or off (0), or makes the next message look again (-1: stderr
 * was redirected).
 */
void log_set_level_prefix(int on);

/* Called with the text of each message logged (without prefix or newline)
 * before its line is written: a caller that reports elsewhere (kup check's
 * lines) keeps what it needs; true: the message is taken, its line not
 * written.  NULL: none.  Gives the hook it replaces. */
typedef bool (*log_hook_fn)(int level, const char *msg);
log_hook_fn log_set_hook(log_hook_fn hook);

void log_msg(int level, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(...)	log_msg(LOG_LVL_ERR, 0, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LVL_WARN, 0, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LVL_INFO, 0, __VA_ARGS__)
#define log_debug(...)	do { if (log_get_level() >= LOG_LVL_DEBUG) \
				log_msg(LOG_LVL_DEBUG, 0, __VA_ARGS__); } while (0)

/* Log with the text of errno value @err appended; returns -abs(err). */
#define log_errno(err, ...) ({ int _e = (err) < 0 ? -(err) : (err); \
	_e = _e ? _e : EIO; \
	log_msg(LOG_LVL_ERR, _e, __VA_ARGS__); \
	-_e; })
#define log_warn_errno(err, ...) ({ int _e = (err) < 0 ? -(err) : (err); \
	log_msg(LOG_LVL_WARN, _e, __VA_ARGS__); -_e; })

/*
 * A progress line for long work (bytes, rate, time left), shown on a
 * terminal only, once the work has lasted a second: begin with the total
 * (an estimate is fine), add as bytes are done, end (prints the last state
 * with a newline if the line was shown).
 */
void log_progress_begin(const char *what, unsigned long long total);
void log_progress_add(unsigned long long bytes);
void log_progress_end(void);

#endif
